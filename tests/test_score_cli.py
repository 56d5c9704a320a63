import json
import logging

import numpy as np

from sedbench.commands.cli import main
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
    assert "bad.tsv:2: offset 1.0 s is before onset 3.0 s" in capsys.readouterr().err


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
    from sedbench.commands.score import score_event_files

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


def test_score_reads_zero_length_events_with_one_warning_line(tmp_path, capsys, caplog):
    """A TUT Sound Events 2016 line such as 224.691453 224.691453: scored, as sed_eval scores it, and reported once."""
    ref = tmp_path / "street.txt"
    ref.write_text("a.wav\t220.000000\t226.500000\tcar\na.wav\t224.691453\t224.691453\tbrakes squeaking\n"
                   "a.wav\t221.000000\t221.000000\tbrakes squeaking\n")
    est = tmp_path / "system.txt"
    est.write_text("a.wav\t219.900000\t226.400000\tcar\na.wav\t224.600000\t224.800000\tbrakes squeaking\n")
    with caplog.at_level(logging.WARNING):
        assert main(["score", str(ref), str(est), "--json"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "street.txt: 2 zero-length event(s)" in warnings[0]
    out = json.loads(capsys.readouterr().out)
    # 1-s segments: the instant 224.691453 marks segment 224 (found), 221.0 is on a boundary and marks none
    assert out["1"]["class_wise"]["brakes squeaking"]["Nref"] == 1
    assert out["1"]["class_wise"]["brakes squeaking"]["recall"] == 1.0
    # events: 224.6-224.8 s matches 224.691453 (onset within 200 ms, offset within the minimum collar of 200 ms)
    assert out["event"]["class_wise"]["brakes squeaking"]["Nref"] == 2
    assert out["event"]["class_wise"]["brakes squeaking"]["recall"] == 0.5


def test_intervals_over_files_include_zero_length_events(tmp_path, capsys):
    ref, est = tmp_path / "ref.txt", tmp_path / "est.txt"
    ref.write_text("".join(f"f{i}.wav\t{i}.5\t{i}.5\tbrakes\nf{i}.wav\t0.2\t3.0\tcar\n" for i in range(6)))
    est.write_text("".join(f"f{i}.wav\t{i}.45\t{i}.55\tbrakes\nf{i}.wav\t0.1\t2.5\tcar\n" for i in range(0, 6, 2)))
    assert main(["score", str(ref), str(est), "--bootstrap", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["event"]["class_wise"]["brakes"]["Nref"] == 6 and out["event"]["class_wise"]["brakes"]["recall"] == 0.5
    low, high = out["event"]["interval95"]["recall"]
    assert low < 0.5 < high  # files with and without the found zero-length event are drawn
    assert out["1"]["class_wise"]["brakes"]["Nref"] == 6  # each instant i.5 s marks segment i


def test_a_class_without_reference_shows_no_error_rate_in_text(tmp_path, capsys):
    write_event_table(tmp_path / "r.tsv", [("x.wav", Event(0, 2, "dog"))])
    write_event_table(tmp_path / "e.tsv", [("x.wav", Event(0, 1, "dog")), ("x.wav", Event(1, 2, "cat"))])
    assert main(["score", str(tmp_path / "r.tsv"), str(tmp_path / "e.tsv"), "--resolution", "1.0"]) == 0
    out = capsys.readouterr().out
    cat = next(line for line in out.splitlines() if line.strip().startswith("cat"))
    assert cat.split()[4] == "–" and "has no error rate" in out
    assert main(["score", str(tmp_path / "r.tsv"), str(tmp_path / "e.tsv"), "--resolution", "1.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["1"]["class_wise"]["cat"]["error_rate"] > 1e10  # sed_eval's value
