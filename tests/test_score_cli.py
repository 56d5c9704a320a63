import json

import numpy as np

from sedbench.cli import main
from sedbench.data.annotations import Event, write_event_table


def _write(path, rng, files=4):
    rows = []
    for f in range(files):
        for _ in range(10):
            on = round(float(rng.uniform(0, 50)), 3)
            off = round(on + float(rng.uniform(0.1, 6)), 3)
            rows.append((f"f{f}.wav", Event(on, off, str(rng.choice(["a", "b", "c"])))))
    rows.append(("silent.wav", None))
    write_event_table(path, rows)


def test_score_fast_equals_sed_eval_engine(tmp_path, capsys):
    rng = np.random.default_rng(0)
    _write(tmp_path / "ref.tsv", rng)
    _write(tmp_path / "est.tsv", rng)
    out = {}
    for engine in ("fast", "sed_eval"):
        assert main(["score", str(tmp_path / "ref.tsv"), str(tmp_path / "est.tsv"), "--engine", engine, "--json"]) == 0
        out[engine] = json.loads(capsys.readouterr().out)
    for res in ("0.02", "1", "event"):  # segment and event-based: both engines, every value
        for part in ("overall", "class_average"):
            assert out["fast"][res][part] == out["sed_eval"][res][part]
        for label, cw in out["fast"][res]["class_wise"].items():
            for key in ("f_measure", "precision", "recall", "error_rate"):
                assert cw[key] == out["sed_eval"][res]["class_wise"][label][key]
    assert 0 < out["fast"]["1"]["overall"]["f_measure"] < 1


def test_score_table_and_bad_input(tmp_path, capsys):
    write_event_table(tmp_path / "r.tsv", [("x.wav", Event(0, 2, "dog"))])
    write_event_table(tmp_path / "e.tsv", [("x.wav", Event(0, 1, "dog"))])
    assert main(["score", str(tmp_path / "r.tsv"), str(tmp_path / "e.tsv"), "--resolution", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "1-s segments" in out and "F1 66.7 %" in out and "dog" in out
    (tmp_path / "bad.tsv").write_text("filename\tonset\toffset\tevent_label\nx.wav\t3\t1\tdog\n")
    assert main(["score", str(tmp_path / "r.tsv"), str(tmp_path / "bad.tsv")]) == 2
    assert "bad.tsv:2: onset 3.0 s is not before offset 1.0 s" in capsys.readouterr().err


def test_bootstrap_intervals_over_files_for_every_overall_score(tmp_path, capsys):
    from sedbench.stats import bootstrap_files

    rng = np.random.default_rng(1)
    _write(tmp_path / "ref.tsv", rng, files=8)
    _write(tmp_path / "est.tsv", rng, files=8)
    args = ["score", str(tmp_path / "ref.tsv"), str(tmp_path / "est.tsv"), "--bootstrap", "500"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("0.02", "1", "event"):
        o, bounds = out[key]["overall"], out[key]["interval95"]
        for score in ("f_measure", "precision", "recall", "error_rate"):
            low, high = bounds[score]
            assert low <= o[score] <= high and (low < high or key == "event"), (key, score)  # random: no event hits
    # the same statistic and draws as the study's per-run intervals (sedbench.stats)
    from sedbench.metrics.files import score_event_files

    counts = score_event_files(tmp_path / "ref.tsv", tmp_path / "est.tsv")[1.0][0].file_counts
    interval = bootstrap_files(counts, "f1", 500)
    assert out["1"]["interval95"]["f_measure"] == [interval.low, interval.high]
    assert main(args) == 0
    assert "95 % intervals over files (bootstrap, 500 draws): F1 [" in capsys.readouterr().out


def test_score_needs_something_to_score(tmp_path, capsys):
    write_event_table(tmp_path / "r.tsv", [("x.wav", Event(0, 2, "dog"))])
    assert main(["score", str(tmp_path / "r.tsv")]) == 2
    assert "nothing to score" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "r.tsv"), str(tmp_path / "r.tsv"), "--bootstrap", "-1"]) == 2
