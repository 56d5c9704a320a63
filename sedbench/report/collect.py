"""Collect a sweep's trials: Optuna trials joined with their MLflow runs' metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

REPEATS = ("seed", "data.fold")  # parameters whose values repeat a configuration (mean ± std over them)


@dataclass
class TrialRow:
    number: int
    state: str
    family: str
    params: dict[str, str]
    attrs: dict
    metrics: dict[str, float] = field(default_factory=dict)      # final MLflow metrics of the run
    class_f1: dict[str, float] = field(default_factory=dict)     # test/f1_frm/<class>
    pitch_shift: dict[int, float] = field(default_factory=dict)  # test F1_frm per pitch shift (quarter tones)

    def get(self, key: str, default=float("nan")):
        value = self.metrics.get(key, self.attrs.get(key, default))
        return default if value is None else value

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", self.attrs.get("seed", 0)) or 0)

    def config_key(self) -> str:
        """The configuration without its seed or cross-validation fold: trials that differ only by those
        are repeats of one configuration."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.params.items()) if k not in REPEATS)


def collect(study_name: str, storage: str, tracking_uri: str | None = None) -> tuple[list[TrialRow], object]:
    """All non-duplicate trials of ``study_name`` with their MLflow metrics; returns (rows, study)."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    client = None
    if tracking_uri:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = dict(t.user_attrs)
        if a.get("duplicate") or a.get("empty"):
            continue
        row = TrialRow(t.number, t.state.name, str(a.get("family", "?")), {k: str(v) for k, v in t.params.items()}, a)
        if t.state.name == "COMPLETE":
            row.metrics["val/f1_frm"] = float(t.value)
        run_id = a.get("mlflow_run_id")
        if client is not None and run_id:
            try:
                data = client.get_run(run_id).data
            except Exception:  # a run deleted from the store: keep what the study has
                data = None
            if data is not None:
                if "pitch_shift/f1_frm" in data.metrics:  # from `sedbench evaluate --pitch-shift`; latest per step
                    history = sorted(client.get_metric_history(run_id, "pitch_shift/f1_frm"), key=lambda m: m.timestamp)
                    row.pitch_shift = {int(m.step): m.value for m in history}
                for key, value in data.metrics.items():
                    if key.startswith(("pitch_shift/", "test/precision_frm/", "test/recall_frm/")):
                        continue  # the pitch-shift history is read above; class-wise P/R stay in MLflow
                    if key.startswith("test/f1_frm/"):
                        row.class_f1[key[len("test/f1_frm/"):]] = value
                    elif math.isfinite(value):
                        row.metrics.setdefault(key, value)
        rows.append(row)
    return rows, study
