"""Scores of a split from a model's outputs, in the order the split's loader gave the batches.

The LightningModule only collects outputs batch by batch; what turns them into sed_eval-exact
scores lives here: stitching sequences back into per-file activity (strong labels) or pooling
segments into clips (weak labels), then scoring against the split's reference events or tags.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sedbench.metrics import registry
from sedbench.metrics.registry import SplitOutputs
from sedbench.metrics.segment import score_activity


class SplitScorer:
    """``scorer(split, outputs)`` -> scores; ``scorer.files(split, outputs)`` -> per-file probabilities.

    Built from a set-up data module (:meth:`for_datamodule`) or from its parts: ``sets`` (the
    EvalSequences / ClipSequences of each split), the reference events of each split (strong labels)
    or its clip targets (weak labels), the classes, the frame hop in seconds and the threshold C.
    """

    def __init__(self, sets: dict, classes: Sequence[str], hop: float, threshold: float = 0.5,
                 references: dict | None = None, clip_targets: dict | None = None):
        self.sets, self.classes, self.hop, self.threshold = sets, list(classes), hop, threshold
        self.references, self.clip_targets = references or {}, clip_targets or {}
        self.weak = bool(clip_targets)

    @classmethod
    def for_datamodule(cls, dm, threshold: float) -> SplitScorer:
        splits = [s for s in dm.sets if s != "train"]
        if dm.ds.weak:
            return cls(dm.sets, dm.classes, dm.params.hop_seconds, threshold,
                       clip_targets={s: np.stack(dm.sets[s].tags) for s in splits})
        return cls(dm.sets, dm.classes, dm.params.hop_seconds, threshold,
                   references={s: [rec.events for rec in dm.ds.recordings(s)] for s in splits})

    def files(self, split: str, outputs: np.ndarray) -> list[np.ndarray]:
        """Per-sequence ``(N, T, K)`` probabilities -> per-file ``(frames, K)`` (strong labels)."""
        return self.sets[split].stitch(list(outputs))

    def __call__(self, split: str, outputs: np.ndarray, resolutions: Sequence[float] = ()) -> dict:
        """F1/ER on frames and at each extra resolution (strong), or clip F1, EER and accuracy (weak); and every
        metric of :mod:`sedbench.metrics.registry` that brings its own function."""
        if self.weak:
            probs = self.sets[split].per_clip(outputs)
            scores = self._score_clips(probs, self.clip_targets[split])
            outputs = SplitOutputs(self.clip_targets[split], probs, self.classes, self.hop, self.threshold)
            return {**scores, **registry.compute(outputs, weak=True)}
        return self.score_files(split, self.files(split, outputs), resolutions)

    def detection(self, test_outputs: np.ndarray, val_outputs: np.ndarray | None, psds: bool = True) -> dict:
        """:func:`detection_metrics` of the test outputs, post-processing tuned on the validation outputs
        (none without them)."""
        val = self.files("validation", val_outputs) if val_outputs is not None else []
        return detection_metrics(self.references["validation"], val, self.references["test"],
                                 self.files("test", test_outputs), self.classes, self.hop, self.threshold, psds,
                                 val_outputs is not None)

    def score_files(self, split: str, files: list[np.ndarray], resolutions: Sequence[float] = ()) -> dict:
        """Per-file probabilities scored against the split's reference events: sed_eval's segment scores and the
        registry's own-function metrics."""
        scores = score_activity(self.references[split], files, self.classes, self.hop, self.threshold, resolutions)
        outputs = SplitOutputs(self.references[split], files, self.classes, self.hop, self.threshold)
        return {**scores, **registry.compute(outputs, weak=False)}

    def _score_clips(self, probs: np.ndarray, targets: np.ndarray) -> dict:
        from sedbench.metrics.tagging import accuracy, mean_eer

        pred, ref = probs > self.threshold, targets > 0
        tp, fp, fn = (pred & ref).sum(), (pred & ~ref).sum(), (~pred & ref).sum()
        eer, per_class = mean_eer(targets, probs)
        return {"f1_clip": float(2 * tp / max(1, 2 * tp + fp + fn)), "eer": float(np.nan_to_num(eer, nan=1.0)),
                "accuracy": accuracy(targets, probs),
                "class_eer": {c: float(e) for c, e in zip(self.classes, per_class, strict=True)}}


def detection_metrics(val_refs: Sequence, val_probs: Sequence[np.ndarray], test_refs: Sequence,
                      test_probs: Sequence[np.ndarray], classes: Sequence[str], hop: float,
                      threshold: float, psds: bool = True, postprocess: bool = True) -> dict:
    """What a strongly labelled run records beside the paper's segment scores, raw and post-processed.

    Raw test output: event-based F1/ER (equal to sed_eval, collars 200 ms / 20 %) with class-wise
    values; with ``psds``, PSDS1, PSDS2 and 1-s segment ROC AUC (sed_scores_eval). With ``postprocess``
    (``_pp``): class-wise median filters tuned on the validation outputs (sedbench.metrics.postprocess),
    then the frame, 1-s, event-based (and PSDS) scores again; ``median_filter_s`` holds the lengths.
    """
    from sedbench.metrics.event import event_based
    from sedbench.metrics.postprocess import (
        events_by_file,
        median_filter,
        median_frames,
        references_by_file,
        tune_median_filter,
    )
    refs = references_by_file(test_refs)

    def scores(probs: Sequence[np.ndarray], suffix: str) -> dict:
        ev = event_based(refs, events_by_file(probs, classes, hop, threshold), classes)
        out = {f"f1_event{suffix}": ev.f1, f"er_event{suffix}": ev.er,
               f"class_f1_event{suffix}": {c: r["f_measure"] for c, r in ev.class_wise.items()},
               f"class_er_event{suffix}": {c: r["error_rate"] for c, r in ev.class_wise.items()}}
        out = _as_floats(out)
        if psds:
            out.update(psds_metrics(probs, refs, classes, hop, suffix))
        return out

    out = scores(test_probs, "")
    if not postprocess:
        return out
    chosen, _ = tune_median_filter(val_refs, val_probs, classes, hop, threshold)
    filtered = [median_filter(p, [median_frames(chosen[c], hop) for c in classes]) for p in test_probs]
    segment = score_activity(test_refs, filtered, classes, hop, threshold, (1.0,))
    out.update({f"{m.name}_pp": segment[m.name] for m in registry.postprocessed() if m.name in segment})
    out.update(scores(filtered, "_pp"))
    out["median_filter_s"] = chosen
    return out


def psds_metrics(probs: Sequence[np.ndarray], refs: dict, classes: Sequence[str], hop: float,
                 suffix: str = "") -> dict:
    """PSDS1, PSDS2 and 1-s segment ROC AUC (overall and class-wise) of per-file probabilities against
    ``references_by_file`` events, named as :func:`detection_metrics` names them."""
    from sedbench.metrics.psds import score_tables, threshold_independent

    ti = threshold_independent(score_tables(probs, list(refs), classes, hop), refs)
    return _as_floats({f"psds1{suffix}": ti["psds1"], f"psds2{suffix}": ti["psds2"],
                       f"auroc_1sec{suffix}": ti["auroc_1sec"], f"class_auroc_1sec{suffix}": ti["class_auroc_1sec"]})


def _as_floats(out: dict) -> dict:
    """Scores as plain floats, NaN (no reference events, say) as 0, class-wise dicts alike."""
    return {k: ({c: float(np.nan_to_num(x)) for c, x in v.items()} if isinstance(v, dict)
                else float(np.nan_to_num(v))) for k, v in out.items()}


PSDS_MODES = {True: "every", False: "off", "true": "every", "false": "off", "report": "report"}


def psds_mode(value) -> str:
    """``evaluation.psds``: ``every`` (true: each run computes PSDS), ``off`` (false) or ``report`` (each run keeps
    its test probabilities, ``sedbench report`` computes PSDS for the trials its tables show: the same numbers,
    for a fraction of a grid's cost)."""
    key = value.lower() if isinstance(value, str) else value
    if key not in PSDS_MODES:
        from sedbench.errors import ConfigError

        raise ConfigError(f"evaluation.psds={value!r}: must be true, false or report. Fix: evaluation.psds=report "
                          "defers PSDS to `sedbench report` (what sweeps of many small models want)")
    return PSDS_MODES[key]


def deferred_psds(path) -> dict:
    """The PSDS scores a run recorded with ``evaluation.psds=report`` left to the report, from its test scores
    (:func:`sedbench.training.artifacts.read_test_scores`): raw, and ``_pp`` through the run's own median filters.
    Equal to what the run would have computed itself (the same probabilities, the same functions)."""
    from sedbench.metrics.postprocess import median_filter, median_frames, references_by_file
    from sedbench.training.artifacts import read_test_scores

    d = read_test_scores(path)
    refs, classes, hop = references_by_file(d["references"]), d["classes"], d["hop"]
    out = psds_metrics(d["probabilities"], refs, classes, hop)
    if d["median_filter_s"]:
        lengths = [median_frames(d["median_filter_s"][c], hop) for c in classes]
        out.update(psds_metrics([median_filter(p, lengths) for p in d["probabilities"]], refs, classes, hop, "_pp"))
    return out
