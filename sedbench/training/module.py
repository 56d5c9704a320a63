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


def sed_loss(logits: torch.Tensor, batch: dict, weak: bool = False) -> torch.Tensor:
    """Binary cross-entropy of a batch: over clips (``weak``), or over frames averaged over classes, padding masked
    out (the loss of :class:`SEDModule`, and of each member of seeds trained together)."""
    if weak:
        return F.binary_cross_entropy_with_logits(logits, batch["y"])
    per_frame = F.binary_cross_entropy_with_logits(logits, batch["y"], reduction="none").mean(-1)  # (B, T)
    mask = batch["mask"]
    return (per_frame * mask).sum() / mask.sum().clamp_min(1.0)


def improves(best: np.float32 | None, value: float, mode: str) -> tuple[bool, np.float32]:
    """Whether ``value`` beats ``best`` as Lightning's ModelCheckpoint (one model kept) decides it: on the float32
    value, strictly, NaN the worst, the first always; returns it and the best so far."""
    current = np.float32(value)
    if np.isnan(current):
        current = np.float32(np.inf if mode == "min" else -np.inf)
    better = best is None or (current < best if mode == "min" else current > best)
    return better, current if better else best


def diverged(value: str, epoch: int, step: int):
    """The error a run stops with when its training loss is not finite (``value`` says what it was)."""
    from sedbench.errors import DivergedError

    return DivergedError(f"{value} at epoch {epoch}, step {step}: the model diverged, training stops. Fix: check the "
                         "features for NaN/inf (`sedbench data info`), or use trainer.precision=32 if it was 16/bf16")


class SEDModule(pl.LightningModule):
    def __init__(self, net: nn.Module, weak: bool = False, weight_decay: float = 0.0,
                 validate: Callable[[np.ndarray], dict] | None = None, lr_plateau: dict | None = None,
                 monitor: str = "val/f1_frm", mode: str = "max", check_every: int = 1):
        super().__init__()
        self.check_every, self._first_bad = max(1, int(check_every)), None  # finiteness of the loss (_watch)
        self.best_val_outputs: np.ndarray | None = None  # the validation outputs of the best checkpoint's epoch
        self._best_monitored: np.float32 | None = None
        self.net, self.weak, self.weight_decay, self.validate = net, weak, weight_decay, validate
        self.lr_plateau, self.monitor, self.mode = lr_plateau, monitor, mode  # mode: the monitored score's direction
        self._outputs: list[np.ndarray] = []

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, mask)

    def _loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return sed_loss(logits, batch, self.weak)

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss = self._loss(self(batch["x"], batch["mask"]), batch)
        self._watch(loss)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["x"]))
        return loss

    def _watch(self, loss: torch.Tensor) -> None:
        """Stop on a non-finite loss without waiting for the device every step: the first bad step is kept on
        the loss's device and looked at every ``check_every`` steps (1 on the CPU, where a look is free) and at
        each epoch's end."""
        step = self.global_step
        bad = ~torch.isfinite(loss.detach())
        if self._first_bad is None or self._first_bad.device != loss.device:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        self._first_bad = torch.where(bad & (self._first_bad < 0), step, self._first_bad)
        if (step + 1) % self.check_every == 0:
            self._raise_if_diverged(loss)

    def _raise_if_diverged(self, loss: torch.Tensor | None = None) -> None:
        if self._first_bad is None:
            return
        first = int(self._first_bad.item())  # the one host sync, every check_every steps
        if first < 0:
            return
        value = f"training loss is {loss.item()}" if loss is not None and first == self.global_step else \
            "training loss is not finite (nan or inf)"
        raise diverged(value, self.current_epoch, first)

    def on_train_epoch_end(self) -> None:
        self._raise_if_diverged()

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

        outputs = np.concatenate(outputs)
        scores = self.validate(outputs)
        for m in metrics(validation=True):  # what validation logs, hence what optimized_metric may name
            if m.name in scores:
                self.log(f"val/{m.name}", scores[m.name], prog_bar=f"val/{m.name}" == self.monitor)
        name = self.monitor.removeprefix("val/")
        if name in scores and self._improves(scores[name]):
            self.best_val_outputs = outputs

    def _improves(self, value: float) -> bool:
        """Whether ``value`` is the best monitored score so far, decided as the best checkpoint decides it
        (Lightning's ModelCheckpoint, one model kept): on the float32 value logged, strictly better, NaN the
        worst, the first validation always. Then the validation outputs just scored are the best checkpoint's
        outputs, and the test's post-processing need not predict the validation split again."""
        better, self._best_monitored = improves(self._best_monitored, value, self.mode)
        return better

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
