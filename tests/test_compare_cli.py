"""``sedbench compare``: count files, run folders, MLflow run ids and a sweep's overrides, text and JSON."""

import csv
import json

import numpy as np
import pytest

from sedbench.commands.cli import main
from sedbench.metrics.segment import FILE_COUNTS
from sedbench.stats import compare

HIT, MISS = (1, 1, 1, 0, 0, 0), (0, 1, 1, 1, 0, 0)


def write_counts(path, counts, names=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "resolution", *FILE_COUNTS])
        for i, c in enumerate(counts):
            w.writerow([(names or [f"f{j}.wav" for j in range(len(counts))])[i], "frm", *c])
            w.writerow([(names or [f"f{j}.wav" for j in range(len(counts))])[i], "1sec", *c])
    return str(path)


def sides(tmp_path, hits_a=(16, 17, 15), hits_b=(10, 11, 9)):
    a = [write_counts(tmp_path / f"a{i}.csv", [HIT] * h + [MISS] * (20 - h)) for i, h in enumerate(hits_a)]
    b = [write_counts(tmp_path / f"b{i}.csv", [HIT] * h + [MISS] * (20 - h)) for i, h in enumerate(hits_b)]
    return a, b


def test_counts_files_text_and_json(tmp_path, capsys):
    a, b = sides(tmp_path)
    assert main(["compare", "--counts", *a, "--vs", *b]) == 0
    text = capsys.readouterr().out
    assert "difference A - B: +30.0 points, 95 % interval [+" in text and "conclusion: A is better on F1" in text
    assert "F1 80.0 ± 5.0 %   n = 3" in text and "20 test files" in text
    assert main(["compare", "--counts", *a, "--vs", *b, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    expected = compare([[HIT] * h + [MISS] * (20 - h) for h in (16, 17, 15)],
                       [[HIT] * h + [MISS] * (20 - h) for h in (10, 11, 9)])
    assert (got["difference"], got["low"], got["high"]) == pytest.approx((expected.difference, expected.low,
                                                                          expected.high))
    assert got["a"]["n"] == got["b"]["n"] == 3 and got["n_files"] == 20 and got["method"] == "welch_files"
    # swapped sides: the interval negated
    assert main(["compare", "--counts", *b, "--vs", *a, "--json"]) == 0
    back = json.loads(capsys.readouterr().out)
    assert (back["low"], back["high"]) == pytest.approx((-got["high"], -got["low"]))
    # the error rate (lower is better) and the 1-s resolution
    assert main(["compare", "--counts", *a, "--vs", *b, "--statistic", "er", "--resolution", "1sec"]) == 0
    assert "conclusion: A is better on ER" in capsys.readouterr().out


def test_files_that_share_sources_are_passed_on_without_being_asked(tmp_path, capsys):
    """Every run's file_counts.csv records its test files' sources (as training writes them): compare reads them and
    widens the interval for files that share sources; runs without that column are compared as before."""
    from sedbench.training.artifacts import write_file_counts

    hits_a, hits_b = (16, 17, 15), (10, 11, 9)
    names = [f"f{j}.wav" for j in range(20)]
    shared = [[f"dog/{j // 5}", f"rain/{j // 5}"] for j in range(20)]
    folders = []
    for side, hits in (("a", hits_a), ("b", hits_b)):
        for i, h in enumerate(hits):
            (tmp_path / f"{side}{i}").mkdir()
            rows = [list(HIT)] * h + [list(MISS)] * (20 - h)
            folders.append(str(write_file_counts(tmp_path / f"{side}{i}", names, {"frm": rows}, sources=shared)))
    assert main(["compare", "--counts", *folders[:3], "--vs", *folders[3:], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    a, b = sides(tmp_path, hits_a, hits_b)
    assert main(["compare", "--counts", *a, "--vs", *b, "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert got["shared_sources"] and not plain["shared_sources"] and got["difference"] == plain["difference"]
    assert got["high"] - got["low"] > plain["high"] - plain["low"]
    assert main(["compare", "--counts", *folders[:3], "--vs", *folders[3:]]) == 0
    assert "20 test files, which share source instances" in capsys.readouterr().out


def test_one_seed_and_no_difference(tmp_path, capsys):
    a, b = sides(tmp_path, hits_a=(12, 13, 11), hits_b=(12, 11, 13))
    assert main(["compare", "--counts", a[0], "--vs", *b]) == 0
    out = capsys.readouterr().out
    assert "no interval" in out and "conclusion: no verdict: one seed on a side" in out
    assert "(one run: no spread)" in out
    assert main(["compare", "--counts", *a, "--vs", *b]) == 0
    assert "conclusion: inconclusive" in capsys.readouterr().out


def test_bad_inputs_name_the_problem(tmp_path, capsys):
    a, b = sides(tmp_path)
    short = write_counts(tmp_path / "short.csv", [HIT] * 19)
    renamed = write_counts(tmp_path / "renamed.csv", [HIT] * 20, names=[f"g{j}.wav" for j in range(20)])
    bad = tmp_path / "bad.csv"
    bad.write_text("file,onset\nx,1\n")
    cases = [(["--counts", *a, "--vs", short], "different test sets (19, 20 files)"),
             (["--counts", *a, "--vs", renamed], "list different test files"),
             (["--counts", str(tmp_path / "nope.csv"), "--vs", *b], "nope.csv: no such file"),
             (["--counts", str(bad), "--vs", *b], "bad.csv: not a file_counts.csv"),
             (["--counts", *a, "--vs", *b, "--level", "95"], "--level 95.0: an interval level is between 0 and 1"),
             (["--vs", *b], "no runs for side A"),
             ([str(tmp_path), "--vs", *b], f"run folder {tmp_path} has no file_counts.csv"),
             (["--sweep", "x", "--vs", "model=cnn"], "--sweep NAME needs side A's overrides")]
    for args, message in cases:
        assert main(["compare", *args]) == 2, args
        assert message in capsys.readouterr().err, (args, message)


def cost_runs(tmp_path, side, energies, method="cpu time estimate", **extra):
    """Run folders holding only what a run records of its costs (metrics.json)."""
    folders = []
    for i, kwh in enumerate(energies):
        folder = tmp_path / f"{side}{i}"
        folder.mkdir()
        record = {"energy_train_kwh": kwh, "energy_test_kwh": kwh / 10, "energy_method": method, "n_params": 1000,
                  "macs_per_10s": 2.0e6, "peak_rss_gb": 0.5 + 0.01 * i, **extra}
        (folder / "metrics.json").write_text(json.dumps(record))
        folders.append(str(folder))
    return folders


def test_costs_compare_as_ratios(tmp_path, capsys):
    """--statistic energy_train: A's training energy over B's, the ratio of geometric means with its interval over
    the seeds, lower is better; parameters and MACs exactly; energies obtained in different ways, one seed, or a
    cost not recorded: no verdict or one clear error."""
    from sedbench.stats import cost_ratio

    a = cost_runs(tmp_path, "a", [0.010, 0.011, 0.012])
    b = cost_runs(tmp_path, "b", [0.020, 0.021, 0.022, 0.019], n_params=4000, macs_per_10s=5.0e6)
    assert main(["compare", *a, "--vs", *b, "--statistic", "energy_train", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    expected = cost_ratio([0.010, 0.011, 0.012], [0.020, 0.021, 0.022, 0.019])
    assert (got["ratio"], got["low"], got["high"]) == pytest.approx((expected.ratio, expected.low, expected.high))
    assert got["high"] < 1 and got["a"]["n"] == 3 and got["b"]["n"] == 4 and got["method"] == "welch_log"
    assert main(["compare", *a, "--vs", *b, "--statistic", "energy_train"]) == 0
    text = capsys.readouterr().out
    assert "conclusion: A costs less training energy: the 95 % interval of A / B lies below 1" in text
    assert "ratio A / B: 0.5" in text and "energy obtained by: cpu time estimate" in text
    assert main(["compare", *a, "--vs", *b, "--statistic", "params"]) == 0
    assert "conclusion: A has fewer parameters: 0.25x (the architecture's" in capsys.readouterr().out
    assert main(["compare", *a, "--vs", *b, "--statistic", "peak_rss"]) == 0
    assert "conclusion: inconclusive" in capsys.readouterr().out
    other = cost_runs(tmp_path, "c", [0.020, 0.021], method="rapl x process share")
    assert main(["compare", *a, "--vs", *other, "--statistic", "energy_train"]) == 0
    assert "no verdict: the energies were obtained in different ways" in capsys.readouterr().out
    assert main(["compare", a[0], "--vs", *b, "--statistic", "energy_test"]) == 0
    assert "no verdict: one seed on a side" in capsys.readouterr().out
    # seeds trained together share one measurement of their group's training energy: one measurement, no verdict
    fused = cost_runs(tmp_path, "f", [0.010, 0.010, 0.010], fused_group="g1")
    assert main(["compare", *fused, "--vs", *b, "--statistic", "energy_train", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["a"]["n"] == 3 and got["a"]["measurements"] == 1 and got["low"] is None
    assert got["conclusion"].startswith("no verdict: a side's seeds were trained together")
    assert main(["compare", *fused, "--vs", *b, "--statistic", "energy_test", "--json"]) == 0  # each seed's own
    assert json.loads(capsys.readouterr().out)["a"]["measurements"] == 3
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.json").write_text(json.dumps({"n_params": 5}))
    assert main(["compare", str(bare), "--vs", *b, "--statistic", "energy_train"]) == 2
    assert f"run {bare} recorded no energy_train_kwh (training energy). Fix:" in capsys.readouterr().err


def test_run_folders_run_ids_and_a_sweeps_overrides(tiny_sweep, tmp_path, capsys):
    """The tiny sweep trained one CRNN, CNN and RNN (one seed each): every way of naming them gives the same
    numbers, and no verdict, since each side has one seed."""
    import optuna

    trials = {t.params["model"]: t for t in optuna.load_study(study_name=tiny_sweep.name,
                                                               storage=tiny_sweep.storage).trials}
    folders = [trials[f].user_attrs["output_dir"] for f in ("crnn", "cnn")]
    ids = [trials[f].user_attrs["mlflow_run_id"] for f in ("crnn", "cnn")]
    results = []
    for args in ([folders[0], "--vs", folders[1]], [ids[0], "--vs", ids[1], "--tracking", tiny_sweep.tracking],
                 ["--sweep", tiny_sweep.name, "model=crnn", "--vs", "model=cnn", "--storage", tiny_sweep.storage,
                  "--tracking", tiny_sweep.tracking]):
        assert main(["compare", *args, "--json"]) == 0, args
        results.append(json.loads(capsys.readouterr().out))
    assert len({r["difference"] for r in results}) == 1 and all(r["low"] is None for r in results)
    assert all(r["conclusion"].startswith("no verdict") for r in results)
    assert np.isclose(results[0]["a"]["mean"], trials["crnn"].user_attrs["test/f1_frm"])
    # overrides matching several configurations, or none, or an unknown key: the fix is named
    base = ["--storage", tiny_sweep.storage, "--tracking", tiny_sweep.tracking]
    for overrides, message in (("model.maps=8", "matches 3 configurations"), ("model=gmm", "no completed trial"),
                               ("maps=8", "has no parameter 'maps'")):
        assert main(["compare", "--sweep", tiny_sweep.name, overrides, "--vs", "model=cnn", *base]) == 2
        assert message in capsys.readouterr().err
    # a cost of the trained runs, named each way: what the runs recorded
    for args in ([ids[0], "--vs", ids[1], "--tracking", tiny_sweep.tracking],
                 ["--sweep", tiny_sweep.name, "model=crnn", "--vs", "model=cnn", *base]):
        assert main(["compare", *args, "--statistic", "macs", "--json"]) == 0, args
        got = json.loads(capsys.readouterr().out)
        assert got["a"]["mean"] == trials["crnn"].user_attrs["macs_per_10s"] and got["method"] == "exact"
        assert main(["compare", *args, "--statistic", "energy_train", "--json"]) == 0, args
        got = json.loads(capsys.readouterr().out)
        assert got["conclusion"].startswith("no verdict") and got["energy_methods"]  # one seed a side
    assert main(["compare", "nonexistent-run-id", "--vs", ids[1], "--tracking", tiny_sweep.tracking]) == 2
    assert "no MLflow run 'nonexistent-run-id'" in capsys.readouterr().err
