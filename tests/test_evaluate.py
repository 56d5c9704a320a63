"""`sedbench evaluate`: a recorded run's bundle re-scored, pitch shift logged to the same run; the report's
activity, filter and pitch-shift figures."""

import csv

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image

from sedbench.commands.cli import main
from sedbench.commands.evaluate import data_config, evaluate_run, parse_shifts
from sedbench.errors import SedbenchError
from sedbench.models.crnn import CRNN
from sedbench.models.visualize import maximize_units, receptive_field
from sedbench.training.artifacts import read_file_counts, shifted


def runs(sw):
    client = MlflowClient(sw.tracking)
    exp = client.get_experiment_by_name("sedbench").experiment_id
    return client, [r for r in client.search_runs([exp]) if "trial" in r.data.tags]


def test_parse_shifts():
    assert parse_shifts("-2,-1,1,2") == [-2, -1, 1, 2] and parse_shifts("0,1,1") == [1] and parse_shifts("") == []
    with pytest.raises(SedbenchError, match="whole quarter tones"):
        parse_shifts("0.5")


def test_data_overrides():
    stored = {"name": "folder", "root": "/a", "seq_len": 64}
    assert data_config(stored, ["data.root=/b", "data.seq_len=32"]) == {"name": "folder", "root": "/b", "seq_len": 32}
    assert data_config(stored, ["data=synth"])["name"] == "synth"
    with pytest.raises(SedbenchError, match="data overrides only"):
        data_config(stored, ["model.maps=3"])


def test_unshifted_evaluation_reproduces_the_recorded_test_scores(tiny_sweep, tmp_path):
    client, found = runs(tiny_sweep)
    assert len(found) == 3
    for run in found:
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model", "activity.npz"} <= artifacts
    run = next(r for r in found if r.data.tags["family"] == "crnn")
    results = evaluate_run(run.info.run_id, tiny_sweep.tracking, [-1, 1], progress=False)
    assert sorted(results) == [-1, 0, 1]
    for key in ("f1_frm", "er_frm", "f1_1sec", "er_1sec"):
        assert results[0][key] == pytest.approx(run.data.metrics[f"test/{key}"], abs=1e-6), key
    history = client.get_metric_history(run.info.run_id, "pitch_shift/f1_frm")
    assert {m.step: m.value for m in history} == pytest.approx({q: r["f1_frm"] for q, r in results.items()})
    # every shift's per-file counts, for the interval of the change; shift 0 equals the training run's counts
    folder = tmp_path / "dl"
    recorded = read_file_counts(client.download_artifacts(run.info.run_id, "file_counts.csv", str(folder)))
    by_shift = shifted(read_file_counts(client.download_artifacts(run.info.run_id, "pitch_shift_counts.csv",
                                                                  str(folder))))
    assert sorted(by_shift) == [-1, 0, 1] and by_shift[0] == recorded["frm"]
    assert by_shift[1] == [list(c) for c in results[1]["file_counts"]["frm"]]


def test_evaluate_errors(tiny_sweep, tmp_path, capsys):
    assert main(["evaluate", "0123abcd", "--tracking", tiny_sweep.tracking]) == 2
    assert "no MLflow run '0123abcd'" in capsys.readouterr().err
    assert main(["evaluate", "--tracking", tiny_sweep.tracking]) == 2
    assert "give MLflow run ids or --sweep NAME" in capsys.readouterr().err
    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    bare = client.create_run(client.create_experiment("x", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    assert main(["evaluate", bare, "--tracking", f"sqlite:///{tmp_path}/m.db"]) == 2
    assert "has no model/model.pt artifact" in capsys.readouterr().err


def test_gradient_ascent_drives_the_unit_up():
    torch.manual_seed(0)
    net = CRNN(40, 4, maps=6, pool=(5, 4, 2), kernel=(5, 5)).eval()
    assert receptive_field(net, 1) == 5 and receptive_field(net, 3) == 13
    for layer in (1, 3):
        before = maximize_units(net, layer, [0, 3], 40, frames=31, steps=0)
        after = maximize_units(net, layer, [0, 3], 40, frames=31, steps=100)
        for b, a in zip(before, after, strict=True):
            assert a.activation > b.activation + 1.0
            assert a.pattern.shape == (31, 40) and np.abs(a.pattern).max() <= 3.0 + 1e-6


def test_report_draws_activity_filters_and_pitch_shift(tiny_sweep, tmp_path):
    sw = tiny_sweep
    assert main(["evaluate", "--sweep", sw.name, "--storage", sw.storage, "--tracking", sw.tracking,
                 "--pitch-shift=-2,2"]) == 0
    out = tmp_path / "report"
    assert main(["report", sw.name, "--storage", sw.storage, "--tracking", sw.tracking, "--out", str(out)]) == 0
    index = (out / "index.md").read_text()
    for item in ("activity.png", "filters.png", "pitch_shift.png", "per_class.md", "best.md"):
        assert f"]({item})" in index, item
    for png in ("activity", "filters", "pitch_shift"):
        with Image.open(out / f"{png}.png") as im:
            assert im.size[0] > 600 and im.size[1] > 400
    with open(out / "pitch_shift.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["family"] for r in rows} == {"crnn", "cnn", "rnn"}
    assert {int(r["quarter_tones"]) for r in rows} >= {-2, 0, 2}
    assert "CRNN (n = 1) |" in (out / "per_class.md").read_text()
    with open(out / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert all(int(t["epochs"]) >= 1 and int(t["steps"]) >= 1 and t["budget"] == "complete" for t in trials)
    # the demo's evaluation.psds=report: the trials kept their test scores, the report computed PSDS for the
    # configurations its tables show (here every trial) and recorded it in their runs
    assert all(t["test/psds1"] != "" and t["test/psds2_pp"] != "" for t in trials)
    assert "| CRNN | raw | 1 |" in (out / "scores.md").read_text()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sw.tracking)
    assert all("test/psds2" in client.get_run(t["mlflow_run_id"]).data.metrics for t in trials)
    # one seed per family: the pitch-shift claims are computed (an interval over files only), not "not tested"
    claims = (out / "claims.md").read_text()
    assert "| CRNN loses less F1 under pitch shift than RNN | Cakir et al. 2017, Fig. 5 | **not tested**" not in claims
    assert all(float(r["change_f1_frm"]) == 0 for r in rows if r["quarter_tones"] == "0")
    with open(out / "activity.csv") as f:
        header = next(csv.reader(f))
    assert header[0] == "time_s" and any(h.startswith("truth/") for h in header)
    assert {h.split("/")[0] for h in header[1:]} == {"truth", "crnn", "cnn", "rnn"}
    with open(out / "filters.csv") as f:
        assert {r["layer"] for r in csv.DictReader(f)} == {"1", "2", "3"}
