"""Scores of a split from a model's outputs, in the order the split's loader gave the batches.

The LightningModule only collects outputs batch by batch; what turns them into sed_eval-exact
scores lives here: stitching sequences back into per-file activity (strong labels) or pooling
segments into clips (weak labels), then scoring against the split's reference events or tags.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
        """F1/ER on frames and at each extra resolution (strong), or clip F1, EER and accuracy (weak)."""
        if self.weak:
            return self._score_clips(self.sets[split].per_clip(outputs), self.clip_targets[split])
        return self.score_files(split, self.files(split, outputs), resolutions)

    def score_files(self, split: str, files: list[np.ndarray], resolutions: Sequence[float] = ()) -> dict:
        return score_activity(self.references[split], files, self.classes, self.hop, self.threshold, resolutions)

    def _score_clips(self, probs: np.ndarray, targets: np.ndarray) -> dict:
        from sedbench.metrics.tagging import accuracy, mean_eer

        pred, ref = probs > self.threshold, targets > 0
        tp, fp, fn = (pred & ref).sum(), (pred & ~ref).sum(), (~pred & ref).sum()
        eer, per_class = mean_eer(targets, probs)
        return {"f1_clip": float(2 * tp / max(1, 2 * tp + fp + fn)), "eer": float(np.nan_to_num(eer, nan=1.0)),
                "accuracy": accuracy(targets, probs),
                "class_wise": {c: float(e) for c, e in zip(self.classes, per_class, strict=True)}}
