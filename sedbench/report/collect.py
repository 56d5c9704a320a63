"""Collect a sweep's trials: Optuna trials joined with their MLflow runs' metrics."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
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
    objective: str = "val/f1_frm"                                 # the metric its study optimized
    sign: int = 1                                                # +1: maximized, -1: minimized
    class_f1: dict[str, float] = field(default_factory=dict)     # test/f1_frm/<class>
    pitch_shift: dict[int, float] = field(default_factory=dict)  # test F1_frm per pitch shift (quarter tones)
    hop_seconds: float | None = None                             # the run's feature frame hop

    def get(self, key: str, default=float("nan")):
        value = self.metrics.get(key, self.attrs.get(key, default))
        return default if value is None else value

    @property
    def score(self) -> float:
        """Its objective's value, signed so that larger is better: what the report ranks configurations by."""
        return self.sign * self.get(self.objective)

    @property
    def truncated(self) -> bool:
        """The wall-clock guard ended its training: its scores depend on the machine's speed."""
        return self.attrs.get("budget") == "truncated"

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", self.attrs.get("seed", 0)) or 0)

    def config_key(self) -> str:
        """The configuration without its seed or cross-validation fold: trials that differ only by those
        are repeats of one configuration."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.params.items()) if k not in REPEATS)


def collect(study_name: str, storage: str, tracking_uri: str | None = None) -> tuple[list[TrialRow], object]:
    """All non-duplicate trials of ``study_name`` with their MLflow metrics; returns (rows, study)."""
    from sedbench.studies import load_for_reading

    study = load_for_reading(storage, study_name)  # nothing is created; a missing or bad store is one clear error
    return rows_from_study(study, tracking_uri), study


def rows_from_study(study, tracking_uri: str | None = None) -> list[TrialRow]:
    """The study's trials (without the duplicates of concurrent workers), with their MLflow runs' metrics
    when ``tracking_uri`` is given."""
    from sedbench.studies import objective_of

    store = None
    if tracking_uri:
        from sedbench.tracking import RunStore

        store = RunStore(tracking_uri)
    objective, sign = objective_of(study)
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = dict(t.user_attrs)
        if a.get("duplicate") or a.get("empty"):
            continue
        row = TrialRow(t.number, t.state.name, str(a.get("family", "?")), {k: str(v) for k, v in t.params.items()}, a,
                       hop_seconds=a.get("hop_seconds"), objective=objective, sign=sign)
        if t.state.name == "COMPLETE":
            row.metrics[objective] = float(t.value)
        run_id = a.get("mlflow_run_id")
        if store is not None and run_id:
            _add_run(row, store, run_id)
        rows.append(row)
    return rows


def _add_run(row: TrialRow, store, run_id: str) -> None:
    recorded = store.read(run_id)
    if recorded is None:  # a run deleted from the store: keep what the study has
        return
    metrics, params = recorded
    if "pitch_shift/f1_frm" in metrics:  # from `sedbench evaluate --pitch-shift`; latest per step
        row.pitch_shift = store.history(run_id, "pitch_shift/f1_frm")
    if row.hop_seconds is None and params.get("features.hop_seconds"):  # a run recorded before metrics.json had it
        row.hop_seconds = float(params["features.hop_seconds"])
    for key, value in metrics.items():
        if key.startswith(("pitch_shift/", "test/precision_frm/", "test/recall_frm/")):
            continue  # the pitch-shift history is read above; class-wise P/R stay in MLflow
        if key.startswith("test/f1_frm/"):
            row.class_f1[key[len("test/f1_frm/"):]] = value
        elif key.count("/") > 1 or key.startswith("postprocess/"):
            continue  # other class-wise scores (event-based, AUC, post-processed) and filter lengths stay in MLflow
        elif math.isfinite(value):
            row.metrics.setdefault(key, value)


def file_counts(row: TrialRow, fetch) -> dict[str, list[list[int]]]:
    """A run's ``file_counts.csv`` artifact as ``{resolution tag: per-file counts}``; empty when it has none."""
    from sedbench.training.artifacts import FILE_COUNTS_PATH, read_file_counts

    path = fetch(row.attrs.get("mlflow_run_id", ""), FILE_COUNTS_PATH) if fetch else None
    return read_file_counts(path) if path is not None else {}


def file_sources(row: TrialRow, fetch) -> list[list[str]] | None:
    """The source instances of each test file of a run, in the order of its per-file counts (the ``sources``
    column of ``file_counts.csv``); None when it recorded none."""
    from sedbench.training.artifacts import FILE_COUNTS_PATH, read_file_sources

    path = fetch(row.attrs.get("mlflow_run_id", ""), FILE_COUNTS_PATH) if fetch else None
    return read_file_sources(path) if path is not None else None


def shift_counts(row: TrialRow, fetch) -> dict[int, list[list[int]]]:
    """A run's per-file frame counts under pitch shift (``sedbench evaluate --pitch-shift``) as
    ``{quarter tones: per-file counts}``, shift 0 included; empty when it has none."""
    from sedbench.training.artifacts import PITCH_SHIFT_COUNTS_PATH, read_file_counts, shifted

    path = fetch(row.attrs.get("mlflow_run_id", ""), PITCH_SHIFT_COUNTS_PATH) if fetch else None
    return shifted(read_file_counts(path)) if path is not None else {}


def completed(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.state == "COMPLETE"]


def configurations(rows: list[TrialRow]) -> dict[tuple[str, str], list[TrialRow]]:
    """(family, configuration without seed and fold) -> its completed trials."""
    out: dict[tuple[str, str], list[TrialRow]] = defaultdict(list)
    for r in completed(rows):
        out[(r.family, r.config_key())].append(r)
    return out


def mean_of(trials: list[TrialRow], key: str) -> float:
    return statistics.fmean(t.get(key) for t in trials)


def mean_score(trials: list[TrialRow]) -> float:
    """The trials' mean objective, signed so that larger is better (:attr:`TrialRow.score`)."""
    return statistics.fmean(t.score for t in trials)


def best_group(rows: list[TrialRow], family: str, where=lambda r: True) -> list[TrialRow] | None:
    """The configuration of ``family`` (among trials passing ``where``) with the best mean validation score."""
    cands = [trials for (fam, _), trials in configurations([r for r in rows if where(r)]).items() if fam == family]
    return max(cands, key=mean_score) if cands else None


def primary_group(rows: list[TrialRow], family: str) -> list[TrialRow] | None:
    """The family's configuration with the most completed trials (a study's many-seed cells), ties broken by the
    best mean validation score: the configuration ``claims.md`` compares families at."""
    cands = [trials for (fam, _), trials in configurations(rows).items() if fam == family]
    return max(cands, key=lambda ts: (len(ts), mean_score(ts))) if cands else None


def matched_groups(rows: list[TrialRow], family: str, key: str, needed=lambda values: True) -> dict[str, list]:
    """``{value of key: trials}`` for configurations of ``family`` that differ only in ``key`` (every other
    setting equal; seeds and folds are the repeats): a study's filter shapes or sequence lengths compared
    all else equal, as in the paper's Tables I and IV. Of several such contexts (e.g. two model sizes), the
    one whose values pass ``needed`` with the most values, then the best mean validation score."""
    contexts: dict[str, dict[str, list[TrialRow]]] = {}
    for r in completed(rows):
        if r.family != family or key not in r.params:
            continue
        context = " ".join(f"{k}={v}" for k, v in sorted(r.params.items()) if k not in (*REPEATS, key))
        contexts.setdefault(context, {}).setdefault(r.params[key].replace(" ", ""), []).append(r)
    usable = [c for c in contexts.values() if len(c) >= 2 and needed(c)]
    if not usable:
        return {}
    return max(usable, key=lambda c: (len(c), max(mean_score(ts) for ts in c.values())))


def best_groups(rows: list[TrialRow]) -> dict[str, list[TrialRow]]:
    """Each family's best configuration (mean validation score) with all its trials (seeds, folds)."""
    return {fam: best_group(rows, fam) for fam in sorted({r.family for r in completed(rows)})}


def best_per_family(rows: list[TrialRow]) -> dict[str, TrialRow]:
    """Each family's completed trial with the best validation score, best family first."""
    best: dict[str, TrialRow] = {}
    for r in completed(rows):
        if r.family not in best or r.score > best[r.family].score:
            best[r.family] = r
    return dict(sorted(best.items(), key=lambda kv: -kv[1].score))


MATCHED_PARAMS = 0.05   # Table IV's capacity control: a shape at the maps whose parameters are within 5 % of (5,5)'s


def matched_controls(rows: list[TrialRow], family: str, shapes: dict[str, list[TrialRow]]
                     ) -> dict[str, list[TrialRow]]:
    """Table IV's capacity control (sedbench's extension): for each filter shape, the trials of ``family`` with that
    shape at another number of maps whose parameter count is within :data:`MATCHED_PARAMS` of the (5,5) model's in
    ``shapes`` (the compared shapes, ``{kernel: trials}``, all else equal), every other setting the same."""
    reference = shapes.get("[5,5]")
    if not reference:
        return {}
    n_ref, first = float(reference[0].attrs.get("n_params") or 0), reference[0]
    if not n_ref:
        return {}
    leave = (*REPEATS, "model.kernel", "model.maps")

    def context(r: TrialRow) -> dict:
        return {k: v for k, v in r.params.items() if k not in leave}

    out: dict[str, list[TrialRow]] = {}
    for r in completed(rows):
        if (r.family != family or "model.kernel" not in r.params or context(r) != context(first)
                or r.params.get("model.maps") == first.params.get("model.maps")):
            continue
        n = float(r.attrs.get("n_params") or 0)
        if n and abs(n - n_ref) <= MATCHED_PARAMS * n_ref:
            out.setdefault(r.params["model.kernel"].replace(" ", ""), []).append(r)
    return out
