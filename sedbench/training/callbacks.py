"""Callbacks: early stopping after a warm-up; the validation curve and whether the run converged; report
validation F1_frm to an Optuna trial every epoch and prune on request."""

from __future__ import annotations

import sys

import pytorch_lightning as pl


class WarmupEarlyStopping(pl.callbacks.EarlyStopping):
    """Early stopping that watches validation only from epoch ``warmup`` on (1-based): its best score and its
    patience count start there. Lightning's ``min_epochs`` is not the same: its patience counts from epoch 1, so
    a model whose validation score dips early (the small CRNN: 0.24 at epoch 3, 0.01 at epoch 10, 0.53 at epoch
    80) is stopped the moment ``min_epochs`` is reached."""

    def __init__(self, warmup: int = 0, patience: int | None = 3, **kwargs):
        # patience None (trainer.patience=null): no stop on patience; a non-finite score still stops the run
        super().__init__(check_on_train_epoch_end=False, patience=sys.maxsize if patience is None else patience,
                         **kwargs)
        self.warmup = int(warmup or 0)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.warmup:
            super().on_validation_end(trainer, pl_module)


class OptunaPruning(pl.Callback):
    """Reports ``monitor`` to the sweep's Optuna trial after each validation; raises TrialPruned."""

    def __init__(self, study_name: str, storage: str, trial_number: int, pruner: str, monitor: str):
        from sedbench.studies import TrialReporter

        self.trial = TrialReporter(study_name, storage, trial_number, pruner)
        self.monitor = monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor} = {float(value):.4f})")


class TrialClock(pl.Callback):
    """Where a fit's wall time goes, summed over epochs (seconds), for ``metrics.json`` (``time/*``):

    * ``steps``: training steps, from a batch's start to its end (forward, backward, optimizer, step logging);
    * ``data``: between one training batch's end and the next one's start in an epoch (the loader fetching and
      collating the batch, and the loop's own per-batch work);
    * ``validation``: each validation, its prediction and scoring;
    * ``fit_other``: the rest of the fit (epoch boundaries, checkpoints, early stopping, start and end).

    It must come first among the callbacks, so that the checkpoint written at a validation's end counts as
    ``fit_other``, not as validation."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self.seconds = {"steps": 0.0, "data": 0.0, "validation": 0.0}
        self._fit_start = self._batch_start = self._batch_end = self._val_start = None
        self.fit_seconds = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = self._now()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._batch_end = self._now()  # the first batch's fetch counts as data

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = self._now()
        if self._batch_end is not None:
            self.seconds["data"] += self._batch_start - self._batch_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._batch_end = self._now()
        self.seconds["steps"] += self._batch_end - self._batch_start

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._batch_end = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self._val_start = self._now()
        self._batch_end = None  # validation inside an epoch (val_check_interval) is not data time

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._val_start is not None:
            self.seconds["validation"] += self._now() - self._val_start
            self._val_start = None

    def on_fit_end(self, trainer, pl_module) -> None:
        self.fit_seconds = self._now() - self._fit_start

    def split(self) -> dict[str, float]:
        """The fit's seconds by part; ``fit_other`` is what the other three leave of the fit's wall time."""
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["fit_other"] = round(max(0.0, self.fit_seconds - sum(self.seconds.values())), 3)
        return out


class ValidationCurve(pl.Callback):
    """The monitored validation score after every validation, against the optimizer steps taken so far:
    ``points`` is ``[(step, value), ...]``, the learning curve a run records (``metrics.json`` ``val_curve``)
    and from which :func:`convergence` decides whether its budget was enough."""

    def __init__(self, monitor: str):
        self.monitor = monitor
        self.points: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not trainer.sanity_checking:
            self.points.append((int(trainer.global_step), round(float(value), 6)))


class EpochLines(pl.Callback):
    """One line per epoch (epoch, steps, training loss, the monitored score and the best so far) instead of
    Lightning's progress bars, for output that is not a terminal (a log file, a pipe): bars there are walls of
    carriage-return fragments."""

    def __init__(self, monitor: str, stream=None, sign: int = 1):
        self.monitor, self.stream, self.sign, self.best = monitor, stream, sign, None  # sign -1: smaller is better

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import sys

        m = trainer.callback_metrics
        value, loss = m.get(self.monitor), m.get("train/loss")
        shown = "-" if value is None else f"{float(value):.3f}"
        if value is not None and (self.best is None or self.sign * (float(value) - self.best) > 0):
            self.best = float(value)
        best = f"{self.best:.3f}" if self.best is not None else "-"
        loss = "-" if loss is None else f"{float(loss):.4f}"
        print(f"epoch {trainer.current_epoch:>4}  step {trainer.global_step:>6}  train loss {loss}  "
              f"{self.monitor} {shown}  best {best}", file=self.stream or sys.stderr, flush=True)


# a run whose best validation score rose by less than this over the last quarter of its budget has converged
PLATEAU_GAIN = 0.01


def convergence(points: list[tuple[int, float]], budget_steps: int | None, stopped_early: bool,
                truncated: bool = False, sign: int = 1) -> dict:
    """Whether a run converged, by one rule written down once:

    * ``early_stop``: early stopping ended it (its patience ran out) before its step or epoch budget;
    * ``plateau``: it used its whole budget, and its best validation score over the last quarter of the budget
      (in optimizer steps) is less than :data:`PLATEAU_GAIN` (1 point of F1) better than its best before that
      quarter (``sign`` -1: a smaller score is better, an error rate);
    * ``improving``: it used its whole budget and was still gaining (the budget limited it);
    * ``truncated``: the wall-clock guard ended it (never counted as converged).

    ``budget_steps``: the steps the run was allowed (``trainer.max_steps``, or the steps it took when an epoch
    budget ended it). Returns ``converged`` (bool), ``convergence`` (the reason) and ``val_gain_last_quarter``."""
    points = [(s, sign * v) for s, v in points]  # larger is better from here on
    best_total = max((v for _, v in points), default=float("nan"))
    cut = 0.75 * (budget_steps or max((s for s, _ in points), default=0))
    before = [v for s, v in points if s <= cut]
    gain = best_total - max(before) if before else float("nan")
    if truncated:
        reason = "truncated"
    elif stopped_early:
        reason = "early_stop"
    elif before and gain < PLATEAU_GAIN:
        reason = "plateau"
    else:
        reason = "improving"
    return {"converged": reason in ("early_stop", "plateau"), "convergence": reason,
            "val_gain_last_quarter": round(gain, 6) if gain == gain else None}
