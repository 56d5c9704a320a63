"""The metric registry (sedbench.metrics.registry): one entry per score, read by every stage.

A metric added by one ``register`` call alone is computed, logged after each validation, recorded in
metrics.json and MLflow, and shown in trials.csv and scores.md; an error-rate objective is minimized by the
checkpoint, early stopping, the learning-rate plateau, the study and the report.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from sedbench.errors import ConfigError
from sedbench.metrics import registry
from sedbench.metrics.registry import Metric


def _active_share(outputs: registry.SplitOutputs):
    """The share of frames the output marks active, overall and per class: a toy score."""
    active = np.concatenate([p > outputs.threshold for p in outputs.probabilities])
    return float(active.mean()), dict(zip(outputs.classes, active.mean(axis=0).tolist(), strict=True))


@pytest.fixture
def toy_metric(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))  # the toy is gone after the test
    return registry.register(Metric("active_share", "active share", percent=True, class_wise=True, validation=True,
                                    section="paper", compute=_active_share))


def _sweep(synth_dir: Path, tmp_path: Path, *extra: str) -> int:
    from sedbench.commands.cli import main

    return main(["train", "-m", "data=folder", f"data.root={synth_dir}", "data.seq_len=32", "trainer.max_epochs=3",
                 "trainer.max_time=null", "trainer.num_threads=1", "sweep.n_jobs=1", "sweep.name=toy",
                 f"sweep.storage=sqlite:///{tmp_path}/optuna.db", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                 f"tracking.artifacts={tmp_path}/artifacts", f"features.cache_dir={tmp_path}/cache",
                 "evaluation.psds=false", "tracking.log_model=false", f"hydra.sweep.dir={tmp_path}/runs", *extra])


def _report(tmp_path: Path) -> Path:
    from sedbench.commands.cli import main

    out = tmp_path / "report"
    assert main(["report", "toy", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(out)]) == 0
    return out


def _runs(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").rglob("metrics.json"))]


def test_a_metric_registered_alone_is_computed_logged_recorded_and_reported(toy_metric, synth_dir, tmp_path):
    import mlflow

    assert _sweep(synth_dir, tmp_path, "model.maps=2,3") == 0
    runs = _runs(tmp_path)
    assert len(runs) == 2
    for m in runs:  # metrics.json: the overall value and the class-wise dict under the registry's names
        assert 0.0 <= m["test/active_share"] <= 1.0
        assert set(m["class_wise_test_active_share"]) == set(m["class_wise_test_f1"])
        assert m["test/active_share"] == pytest.approx(np.average(list(m["class_wise_test_active_share"].values())))
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(runs[0]["mlflow_run_id"]).data.metrics
    assert run["test/active_share"] == runs[0]["test/active_share"]
    assert any(k.startswith("test/active_share/") for k in run)  # one MLflow metric per class
    assert len(client.get_metric_history(runs[0]["mlflow_run_id"], "val/active_share")) == 3  # after each validation

    out = _report(tmp_path)
    assert "test/active_share" in (out / "trials.csv").read_text().splitlines()[0].split(",")
    scores = (out / "scores.md").read_text().splitlines()
    header = next(line for line in scores if line.startswith("| method |"))
    assert "| active share |" in header  # a column of the paper's table, as its section says


def test_an_error_rate_objective_is_minimized_by_every_stage(synth_dir, tmp_path):
    import optuna

    from sedbench.training.train import watchers

    er = registry.objective("val/er_frm", weak=False)
    checkpoint, stopper, _ = watchers(OmegaConf.create({"warmup_epochs": 0, "patience": 3}), er, tmp_path)
    assert (checkpoint.mode, stopper.mode, checkpoint.monitor, stopper.monitor) == ("min", "min", "val/er_frm",
                                                                                    "val/er_frm")
    assert _sweep(synth_dir, tmp_path, "model.maps=2,3", "optimized_metric=val/er_frm") == 0
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert study.direction.name == "MINIMIZE" and study.metric_names == ["val/er_frm"]
    for m in _runs(tmp_path):  # the checkpoint kept the lowest error rate of the curve, and the study got it
        curve = [v for _, v in m["val_curve"]]
        assert len(curve) == 3 and len(set(curve)) > 1
        assert m["val/er_frm"] == pytest.approx(min(curve), abs=1e-6)
        trial = next(t for t in study.trials if t.user_attrs.get("mlflow_run_id") == m["mlflow_run_id"])
        assert trial.value == pytest.approx(min(curve), abs=1e-6)
    best = min(study.trials, key=lambda t: t.value)
    out = _report(tmp_path)
    assert f"| {best.number} |" in (out / "best.md").read_text()  # the report ranks by the smaller error rate
    assert "validation ER_frm" in (out / "best.md").read_text()
    # the same study resumed with the opposite objective would mix directions: refused
    assert _sweep(synth_dir, tmp_path, "model.maps=2,3") == 2


def test_objective_auto_by_labels_and_refusals():
    assert registry.objective("auto", weak=False).name == "f1_frm"
    assert registry.objective("auto", weak=True).name == "f1_clip"
    assert registry.objective("val/eer", weak=True).direction == "minimize"
    with pytest.raises(ConfigError, match=r"needs frame \(event\) labels, and this dataset has clip labels"):
        registry.objective("val/f1_frm", weak=True)
    with pytest.raises(ConfigError, match="validation does not log it"):
        registry.objective("test/f1_frm")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Metric("f1_frm", "F1", source="x"))
    with pytest.raises(ValueError, match="direction"):
        Metric("x", "x", "larger", source="x")


def test_the_record_names_come_from_the_registry():
    scores = {"f1_frm": 0.5, "class_wise": {"a": 0.4}, "class_precision": {"a": 0.3}, "class_f1_event": {"a": 0.2},
              "median_filter_s": {"a": 0.1}, "detection_seconds": 2.0}
    record = registry.as_record(scores, ("median_filter_s", "detection_seconds"))
    assert record == {"test/f1_frm": 0.5, "class_wise_test_f1": {"a": 0.4}, "class_wise_test_precision": {"a": 0.3},
                      "class_wise_test_f1_event": {"a": 0.2}, "median_filter_s": {"a": 0.1},
                      "detection_seconds": 2.0}
    from sedbench.tracking import as_mlflow_metrics

    assert as_mlflow_metrics(record)["test/f1_event/a"] == 0.2
    with pytest.raises(ValueError, match="no registered class-wise metric"):
        as_mlflow_metrics({"class_wise_test_unknown": {"a": 1.0}})


class ToyNet(__import__("torch").nn.Module):
    """A toy network family: one linear layer per frame."""

    def __init__(self, n_in: int, n_classes: int, hidden: int = 3):
        import torch

        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                                          torch.nn.Linear(hidden, n_classes))

    def forward(self, x, mask=None):
        return self.layers(x)


def test_a_model_family_registered_alone_trains_in_a_sweep_and_is_drawn_in_the_report(synth_dir, tmp_path,
                                                                                         monkeypatch):
    from sedbench.models import families

    monkeypatch.setattr(families, "ARCHITECTURES", dict(families.ARCHITECTURES))
    monkeypatch.setattr(families, "FAMILIES", dict(families.FAMILIES))
    families.register_architecture(families.Architecture("toy", ToyNet))
    families.register_family(families.Family("toy", "#123456", "p"))
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "toy.yaml").write_text("# @package _global_\nmodel:\n  name: toy\n  family: toy\n  arch: toy\n"
                                   "  hidden: 3\n")
    assert _sweep(synth_dir, tmp_path, "model=toy", "model.hidden=2,3", f"hydra.searchpath=[file://{tmp_path}/conf]",
                  "tracking.log_model=true") == 0
    runs = _runs(tmp_path)
    assert {m["family"] for m in runs} == {"toy"} and {m["n_params"] for m in runs} == {
        sum(p.numel() for p in ToyNet(40, 16, h).parameters()) for h in (2, 3)}
    assert all(m["run_name"].startswith("toy-hidden") for m in runs)
    out = _report(tmp_path)
    assert "toy" in (out / "params_vs_f1.csv").read_text() and (out / "params_vs_f1.png").is_file()
    assert "#123456" in (out / "index.html").read_text()  # the family's colour, from the registry alone
    assert "| TOY |" in (out / "scores.md").read_text()
