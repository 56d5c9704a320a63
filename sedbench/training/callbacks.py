"""Callbacks: early stopping after a warm-up; report validation F1_frm to an Optuna trial every epoch and
prune on request."""

from __future__ import annotations

import pytorch_lightning as pl


class WarmupEarlyStopping(pl.callbacks.EarlyStopping):
    """Early stopping that watches validation only from epoch ``warmup`` on (1-based): its best score and its
    patience count start there. Lightning's ``min_epochs`` is not the same: its patience counts from epoch 1, so
    a model whose validation score dips early (the small CRNN: 0.24 at epoch 3, 0.01 at epoch 10, 0.53 at epoch
    80) is stopped the moment ``min_epochs`` is reached."""

    def __init__(self, warmup: int = 0, **kwargs):
        super().__init__(check_on_train_epoch_end=False, **kwargs)
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
