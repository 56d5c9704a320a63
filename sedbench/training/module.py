"""The LightningModule: binary cross-entropy on frames (or clips), sed_eval-exact scores.

Validation and test predictions are stitched back into per-file activity, thresholded
at C and scored against the reference *events* with :class:`SegmentAccumulator`, so the
logged ``val/f1_frm`` is the number sed_eval gives for the same output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from sedbench.metrics.segment import score_activity


class SEDModule(pl.LightningModule):
    def __init__(self, net: nn.Module, classes: Sequence[str], hop: float, threshold: float = 0.5,
                 weak: bool = False, weight_decay: float = 0.0):
        super().__init__()
        self.net, self.classes, self.hop, self.threshold, self.weak = net, list(classes), hop, threshold, weak
        self.weight_decay = weight_decay
        self._probs: list[np.ndarray] = []
        self.scores: dict[str, dict] = {}
        self.test_probs: list[np.ndarray] = []  # per-file (frames, K) test probabilities of the last test run

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, mask)

    def _loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        if self.weak:
            return F.binary_cross_entropy_with_logits(logits, batch["y"])
        per_frame = F.binary_cross_entropy_with_logits(logits, batch["y"], reduction="none").mean(-1)  # (B, T)
        mask = batch["mask"]
        return (per_frame * mask).sum() / mask.sum().clamp_min(1.0)

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss = self._loss(self(batch["x"], batch["mask"]), batch)
        if not torch.isfinite(loss):
            from sedbench.errors import DivergedError

            raise DivergedError(f"training loss is {loss.item()} at epoch {self.current_epoch}, step "
                                f"{self.global_step}: the model diverged, training stops. Fix: check the features "
                                "for NaN/inf (`sedbench data info`), or use trainer.precision=32 if it was 16/bf16")
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["x"]))
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        logits = self(batch["x"], batch["mask"])
        self.log(f"{stage}/loss", self._loss(logits, batch), on_epoch=True, batch_size=len(batch["x"]))
        self._probs.append(torch.sigmoid(logits).float().cpu().numpy())

    def validation_step(self, batch: dict, _: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, _: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self._probs = []

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        scores = self.score("validation", resolutions=())
        for key in ("f1_frm", "er_frm", "f1_clip", "eer"):
            if key in scores:
                self.log(f"val/{key}", scores[key], prog_bar=key.startswith("f1"))

    def on_test_epoch_end(self) -> None:
        scores = self.score("test", resolutions=(1.0,))
        self.scores["test"] = scores
        for key, value in scores.items():
            if not isinstance(value, dict):
                self.log(f"test/{key}", value)

    def score(self, split: str, resolutions: Sequence[float]) -> dict:
        """Scores of the collected probabilities of ``split``: F1/ER on frames and per extra resolution."""
        dm = self.trainer.datamodule
        probs = np.concatenate(self._probs) if self._probs else np.zeros((0,))
        self._probs = []
        if self.weak:
            return self._score_clips(dm.sets[split].per_clip(probs), dm.clip_targets(split))
        files = dm.sets[split].stitch(list(probs))
        if split == "test":
            self.test_probs = files
        refs = [rec.events for rec in dm.ds.recordings(split)]
        return score_activity(refs, files, self.classes, self.hop, self.threshold, resolutions)

    def _score_clips(self, probs: np.ndarray, targets: np.ndarray) -> dict:
        from sedbench.metrics.tagging import accuracy, mean_eer

        pred, ref = probs > self.threshold, targets > 0
        tp, fp, fn = (pred & ref).sum(), (pred & ~ref).sum(), (~pred & ref).sum()
        eer, per_class = mean_eer(targets, probs)
        return {"f1_clip": float(2 * tp / max(1, 2 * tp + fp + fn)), "eer": float(np.nan_to_num(eer, nan=1.0)),
                "accuracy": accuracy(targets, probs),
                "class_wise": {c: float(e) for c, e in zip(self.classes, per_class, strict=True)}}

    def configure_optimizers(self):
        # the paper's default Adam; weight_decay adds L2 regularization (ACRNN: 1e-4)
        return torch.optim.Adam(self.parameters(), weight_decay=self.weight_decay)
