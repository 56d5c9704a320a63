"""`sedbench report` on a sweep still in progress: files, links, CSVs and PNGs."""

import csv

from helpers import run_app
from PIL import Image

from sedbench.cli import main


def test_report_of_a_sweep_in_progress(tmp_path, capsys):
    grid = ["model.maps=1,2,3", "model.kernel=[1,5],[5,5]", "data.seq_len=32,64", "sweep.n_trials=8"]
    assert run_app(tmp_path, *grid, name="rep").returncode == 0  # 8 of 12 cells: 4 still waiting
    out = tmp_path / "report"
    assert main(["report", "rep", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(out)]) == 0
    index = (out / "index.md").read_text()
    assert "8 complete" in index and "4 waiting" in index
    for item in ("trials.csv", "params_vs_f1.png", "best.md", "scores.md", "filter_shape.md", "filter_shape.png",
                 "seq_len.png", "importance.png"):
        assert f"]({item})" in index and (out / item).is_file(), item
    assert "](per_class.md)" not in index and "per_class.md: needs runs with class-wise" in index  # toy trials
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {r["state"] for r in rows} == {"COMPLETE", "WAITING"}
    for png in ("params_vs_f1", "filter_shape", "seq_len", "importance"):
        with Image.open(out / f"{png}.png") as im:
            assert im.size[0] > 600 and im.size[1] > 400
        assert (out / f"{png}.csv").read_text().count("\n") >= 2  # its data beside it
    scores = (out / "scores.md").read_text()
    assert "| TOY | 1 |" in scores and "F1_frm" in scores


def test_report_of_an_unknown_sweep(tmp_path, capsys):
    assert main(["report", "nope", "--storage", f"sqlite:///{tmp_path}/o.db", "--out", str(tmp_path / "r")]) == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err
