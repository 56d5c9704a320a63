"""Callbacks: report validation F1_frm to an Optuna trial every epoch and prune on request."""

from __future__ import annotations

import pytorch_lightning as pl


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
