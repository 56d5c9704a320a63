"""The LightningModule: binary cross-entropy on frames (or clips); it sees batches only.

Validation outputs are collected batch by batch and handed, at the end of each validation,
to ``validate`` (a :class:`sedbench.training.scoring.SplitScorer` bound to the validation
split, passed in by the training code), so the logged ``val/f1_frm`` is the number sed_eval
gives for the same output. Test outputs come back through Lightning's predict path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F


class SEDModule(pl.LightningModule):
    def __init__(self, net: nn.Module, weak: bool = False, weight_decay: float = 0.0,
                 validate: Callable[[np.ndarray], dict] | None = None, lr_plateau: dict | None = None,
                 monitor: str = "val/f1_frm", mode: str = "max"):
        super().__init__()
        self.net, self.weak, self.weight_decay, self.validate = net, weak, weight_decay, validate
        self.lr_plateau, self.monitor, self.mode = lr_plateau, monitor, mode  # mode: the monitored score's direction
        self._outputs: list[np.ndarray] = []

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

    def on_validation_epoch_start(self) -> None:
        self._outputs = []

    def validation_step(self, batch: dict, _: int) -> None:
        logits = self(batch["x"], batch["mask"])
        self.log("val/loss", self._loss(logits, batch), on_epoch=True, batch_size=len(batch["x"]))
        self._outputs.append(torch.sigmoid(logits).float().cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        outputs, self._outputs = self._outputs, []
        if self.validate is None or not outputs:
            return
        from sedbench.metrics.registry import metrics

        scores = self.validate(np.concatenate(outputs))
        for m in metrics(validation=True):  # what validation logs, hence what optimized_metric may name
            if m.name in scores:
                self.log(f"val/{m.name}", scores[m.name], prog_bar=f"val/{m.name}" == self.monitor)

    def predict_step(self, batch: dict, _: int) -> np.ndarray:
        """Event probabilities of a batch: ``(B, T, K)``, or ``(B, K)`` for clip-level models."""
        return torch.sigmoid(self(batch["x"], batch["mask"])).float().cpu().numpy()

    def configure_optimizers(self):
        # the paper's default Adam; weight_decay adds L2 regularization (ACRNN: 1e-4)
        optimizer = torch.optim.Adam(self.parameters(), weight_decay=self.weight_decay)
        if not self.lr_plateau:
            return optimizer
        # trainer.lr_plateau (a deviation from the paper): the learning rate times `factor` after `patience`
        # validations without a better monitored score, as Keras' ReduceLROnPlateau
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=self.mode, factor=float(self.lr_plateau.get("factor", 0.5)),
            patience=int(self.lr_plateau.get("patience", 5)), min_lr=float(self.lr_plateau.get("min_lr", 1e-5)))
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": plateau, "monitor": self.monitor, "interval": "epoch", "frequency": 1}}
