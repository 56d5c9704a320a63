"""Every score sedbench records, in one place: its name, its direction, whether it has class-wise values,
how it is shown, and what computes it.

Everything downstream reads this table, never a list of its own: the names of the MLflow metrics
(``val/<name>``, ``test/<name>``, ``test/<name>/<class>``), the keys of ``metrics.json``, the columns of
``trials.csv`` (the recorded MLflow metrics), the sections of the report's ``scores.md``, what validation
logs after every epoch (and so what ``optimized_metric`` may name), and which way checkpoints, early
stopping, the learning-rate plateau, the study and the report rank a trial (:func:`objective`).

A metric is added with one :func:`register` call. Built-in metrics come out of sedbench's scorers
(``source``: the segment scorer equal to sed_eval, the event-based scorer, sed_scores_eval's PSDS, the clip
scorer), which compute many of them in one pass; an added metric brings its own ``compute``, called with the
:class:`SplitOutputs` of each scored split (validation and test), the same inputs the built-in scorers see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

STRONG, WEAK = "frames", "clips"  # the labels a metric needs: events (frame targets) or clip tags
SECTIONS = ("paper", "clips", "detection")  # scores.md's tables: the paper's, clip scores, detection (with _pp)


@dataclass(frozen=True)
class SplitOutputs:
    """What a split's scoring sees: per-file ``probabilities`` (``(frames, K)``; clips: one ``(clips, K)``
    array), the ``references`` (per-file event lists; clips: the ``(clips, K)`` targets), the ``classes``,
    the frame ``hop`` in seconds and the activity ``threshold``."""

    references: object
    probabilities: Sequence[np.ndarray] | np.ndarray
    classes: Sequence[str]
    hop: float
    threshold: float


@dataclass(frozen=True)
class Metric:
    """One score. ``compute(outputs: SplitOutputs)`` returns its value, or ``(value, {class: value})`` for a
    class-wise metric; None for the built-ins, whose values the scorer named in ``source`` produces."""

    name: str                          # test/<name>, val/<name> in MLflow and metrics.json
    display: str                       # in tables, figures and the console
    direction: str = "maximize"        # or "minimize" (error rates)
    labels: str = STRONG               # STRONG (event references) or WEAK (clip tags)
    percent: bool = False              # shown as a percentage
    class_wise: bool = False           # also one value per class: MLflow test/<name>/<class>
    validation: bool = False           # logged after every validation as val/<name>: what optimized_metric may name
    section: str | None = None         # the scores.md table it is a column of (SECTIONS), None: none
    summary: bool = False              # in a run's printed summary and the dashboard's columns
    per_file: tuple[str, str] | None = None  # (file_counts.csv tag, sedbench.stats statistic): its bootstrap over files
    compute: Callable[[SplitOutputs], object] | None = None
    source: str = ""                   # the built-in scorer that produces it
    class_record: str | None = None    # metrics.json key of its class-wise values (default class_wise_test_<name>)
    class_score: str | None = None     # the scorer's key of its class-wise values (default class_<name>)

    def __post_init__(self):
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"metric {self.name}: direction must be maximize or minimize, not {self.direction!r}")
        if self.labels not in (STRONG, WEAK):
            raise ValueError(f"metric {self.name}: labels must be {STRONG!r} or {WEAK!r}, not {self.labels!r}")
        if self.section is not None and self.section not in SECTIONS:
            raise ValueError(f"metric {self.name}: section must be one of {SECTIONS} or None")
        if self.compute is None and not self.source:
            raise ValueError(f"metric {self.name}: give compute (a function of SplitOutputs) or the scorer (source)")

    @property
    def sign(self) -> int:
        """+1 when a larger value is better, -1 when a smaller one is."""
        return 1 if self.direction == "maximize" else -1

    @property
    def mode(self) -> str:
        """Lightning's ``mode`` for checkpoints, early stopping and the learning-rate plateau."""
        return "max" if self.direction == "maximize" else "min"

    @property
    def record_key(self) -> str:
        """metrics.json's key of its class-wise values."""
        return self.class_record or f"class_wise_test_{self.name}"

    @property
    def score_key(self) -> str:
        return self.class_score or f"class_{self.name}"


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric, replace: bool = False) -> Metric:
    """Add ``metric``; a name already taken is an error unless ``replace``."""
    if metric.name in REGISTRY and not replace:
        raise ValueError(f"a metric named {metric.name!r} is already registered")
    REGISTRY[metric.name] = metric
    return metric


def _builtin(name, display, direction="maximize", **kw) -> None:
    register(Metric(name, display, direction, **kw))


# ------------------------------------------------------------------------------------------- the built-ins
_SEG = "sedbench.metrics.segment.score_activity (sed_eval's segment-based metrics)"
_builtin("f1_frm", "F1_frm", percent=True, class_wise=True, validation=True, section="paper", source=_SEG,
         class_record="class_wise_test_f1", class_score="class_wise", summary=True, per_file=("frm", "f1"))
_builtin("er_frm", "ER_frm", "minimize", validation=True, section="paper", source=_SEG, summary=True,
         per_file=("frm", "er"))
_builtin("precision_frm", "precision_frm", percent=True, class_wise=True, source=_SEG,
         class_record="class_wise_test_precision", class_score="class_precision")
_builtin("recall_frm", "recall_frm", percent=True, class_wise=True, source=_SEG,
         class_record="class_wise_test_recall", class_score="class_recall")
_builtin("f1_1sec", "F1_1sec", percent=True, section="paper", source=_SEG, summary=True, per_file=("1sec", "f1"))
_builtin("er_1sec", "ER_1sec", "minimize", section="paper", source=_SEG, summary=True, per_file=("1sec", "er"))
_CLIP = "sedbench.training.scoring.SplitScorer (clip labels)"
_builtin("accuracy", "accuracy", labels=WEAK, percent=True, section="clips", source=_CLIP, summary=True)
_builtin("f1_clip", "F1_clip", labels=WEAK, percent=True, validation=True, section="clips", source=_CLIP,
         summary=True)
_builtin("eer", "EER", "minimize", labels=WEAK, class_wise=True, validation=True, section="clips", source=_CLIP,
         summary=True)
_EVENT = "sedbench.metrics.event.event_based (sed_eval's event-based metrics, collars 200 ms / 20 %)"
_PSDS = "sedbench.metrics.psds (sed_scores_eval)"
_PP = "sedbench.training.scoring.detection_metrics (median filters tuned on validation)"
for _pp in ("", "_pp"):  # every detection score raw and post-processed (<name>_pp)
    _section = None if _pp else "detection"  # the detection table shows <name> and <name>_pp side by side
    _builtin(f"f1_event{_pp}", f"F1_event{_pp}", percent=True, class_wise=True, section=_section,
             source=_PP if _pp else _EVENT, summary=True)
    _builtin(f"er_event{_pp}", f"ER_event{_pp}", "minimize", class_wise=True, section=_section,
             source=_PP if _pp else _EVENT, summary=not _pp)
    _builtin(f"psds1{_pp}", f"PSDS1{_pp}", section=_section, source=_PP if _pp else _PSDS, summary=True)
    _builtin(f"psds2{_pp}", f"PSDS2{_pp}", section=_section, source=_PP if _pp else _PSDS, summary=True)
    _builtin(f"auroc_1sec{_pp}", f"AUC_1sec{_pp}", class_wise=True, section=_section,
             source=_PP if _pp else _PSDS)
for _name, _display, _dir in (("f1_frm", "F1_frm", "maximize"), ("er_frm", "ER_frm", "minimize"),
                              ("f1_1sec", "F1_1sec", "maximize"), ("er_1sec", "ER_1sec", "minimize")):
    _builtin(f"{_name}_pp", f"{_display}_pp", _dir, percent=_dir == "maximize", source=_PP)


# ------------------------------------------------------------------------------------------- lookups
def get(key: str) -> Metric | None:
    """The metric of a name or a recorded key: ``f1_frm``, ``val/f1_frm``, ``val/f1_frm_best``, ``test/f1_frm``,
    ``test/f1_frm/<class>``; None when no metric has that name."""
    name = str(key)
    for prefix in ("val/", "test/"):
        if name.startswith(prefix):
            name = name[len(prefix):].split("/")[0]
            if prefix == "val/" and name.endswith("_best") and name not in REGISTRY:
                name = name[:-len("_best")]
    return REGISTRY.get(name)


def metrics(labels: str | None = None, section: str | None = None, validation: bool | None = None,
            summary: bool | None = None) -> list[Metric]:
    """Registered metrics, in registration order, filtered by labels, scores.md section, validation logging and
    whether the run's summary shows them."""
    return [m for m in REGISTRY.values() if (labels is None or m.labels == labels)
            and (section is None or m.section == section) and (validation is None or m.validation == validation)
            and (summary is None or m.summary == summary)]


def postprocessed() -> list[Metric]:
    """The segment scores computed again after the tuned median filters, as ``<name>_pp``."""
    return [m for m in REGISTRY.values() if m.source == _SEG and f"{m.name}_pp" in REGISTRY]


def table(section: str) -> tuple[tuple[str, str], ...]:
    """``(test key, display name)`` of the columns of one scores.md table."""
    return tuple((f"test/{m.name}", m.display) for m in metrics(section=section))


def is_percent(key: str) -> bool:
    m = get(key)
    return bool(m and m.percent)


def display(key: str) -> str:
    m = get(key)
    return m.display if m else str(key)


AUTO = "auto"


def objective(key: str, weak: bool | None = None) -> Metric:
    """The metric ``optimized_metric`` names, refused with one line and its fix when validation does not log it
    or (``weak`` known) the dataset's labels cannot produce it. ``auto``: F1_frm for frame (event) labels, F1 on
    clips for clip labels."""
    from sedbench.errors import ConfigError

    key = str(key)
    if key == AUTO:
        return REGISTRY["f1_clip" if weak else "f1_frm"]
    logged = [f"val/{m.name}" for m in metrics(validation=True)]
    m = get(key) if key.startswith("val/") and not key.endswith("_best") else None
    if m is None or not m.validation:
        raise ConfigError(f"optimized_metric={key}: validation does not log it. Fix: auto, or one of "
                          f"{', '.join(logged)}")
    if weak is not None and (m.labels == WEAK) != bool(weak):
        kind, needed = ("clip", "frame (event)") if weak else ("frame (event)", "clip")
        fits = ", ".join(f"val/{x.name}" for x in metrics(labels=WEAK if weak else STRONG, validation=True))
        raise ConfigError(f"optimized_metric={key} needs {needed} labels, and this dataset has {kind} labels. "
                          f"Fix: optimized_metric=auto, or one of {fits}")
    return m


# ------------------------------------------------------------------------------------------- scoring, recording
def compute(outputs: SplitOutputs, weak: bool) -> dict:
    """The values of every registered metric that brings its own ``compute`` and fits the labels: ``{name:
    value}`` and, for a class-wise one, ``{class_<name>: {class: value}}``, as the built-in scorers name theirs."""
    out: dict = {}
    for m in metrics(labels=WEAK if weak else STRONG):
        if m.compute is None:
            continue
        value = m.compute(outputs)
        if m.class_wise:
            value, per_class = value
            out[m.score_key] = {str(c): float(v) for c, v in per_class.items()}
        out[m.name] = float(value)
    return out


def as_record(scores: dict, figures: Sequence[str] = ()) -> dict:
    """A split's test scores as metrics.json keys: each overall value as ``test/<name>``, each class-wise dict
    under its metric's record key; ``figures`` (keys that describe the evaluation, not score it) as they are."""
    out = {f"test/{k}": v for k, v in scores.items() if not isinstance(v, dict) and k not in figures}
    out.update({k: scores[k] for k in figures if k in scores})
    for m in REGISTRY.values():
        if m.class_wise and isinstance(scores.get(m.score_key), dict):
            out[m.record_key] = scores[m.score_key]
    return out


def class_wise_records() -> dict[str, str]:
    """metrics.json key of each class-wise metric -> its MLflow prefix (``test/<name>``, one metric per class)."""
    return {m.record_key: f"test/{m.name}" for m in REGISTRY.values() if m.class_wise}
