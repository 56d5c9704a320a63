"""WarmupEarlyStopping: patience counts from the warm-up epoch, unlike Lightning's min_epochs."""

import pytest
import pytorch_lightning as pl
import torch

from sedbench.training.callbacks import WarmupEarlyStopping

# an early peak, a dip, then a slow climb: the small CRNN's validation curve in miniature
CURVE = [0.30, 0.10, 0.05, 0.05, 0.06, 0.20, 0.31, 0.40, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45]


class Scripted(pl.LightningModule):
    """Logs ``CURVE[epoch]`` as val/f1_frm; trains a single weight on nothing."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, _):
        return (self.w - batch[0]).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val/f1_frm", CURVE[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def epochs_run(stopper: pl.Callback, **trainer_kwargs) -> int:
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    trainer = pl.Trainer(max_epochs=len(CURVE), callbacks=[stopper], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         accelerator="cpu", **trainer_kwargs)
    trainer.fit(Scripted(), loader, loader)
    return trainer.current_epoch


@pytest.mark.parametrize(("warmup", "epochs"), [(0, 4), (None, 4), (5, 12)])
def test_patience_counts_from_the_warmup_epoch(warmup, epochs):
    # no warm-up: best 0.30 at epoch 1, three epochs without improvement, stop after epoch 4.
    # warm-up 5: watched from epoch 5 (0.06); it improves up to 0.45 at epoch 9, then 3 flat epochs: stop after 12
    assert epochs_run(WarmupEarlyStopping(warmup, monitor="val/f1_frm", mode="max", patience=3)) == epochs


def test_lightning_min_epochs_is_not_a_warmup():
    """The defect the warm-up fixes: with min_epochs the stop comes the moment min_epochs is reached."""
    stopper = pl.callbacks.EarlyStopping(monitor="val/f1_frm", mode="max", patience=3)
    assert epochs_run(stopper, min_epochs=5) == 5


def test_convergence_by_hand():
    from sedbench.training.callbacks import convergence

    rising = [(100 * i, 0.01 * i) for i in range(1, 41)]            # +1 point every 100 steps up to 4,000
    flat = [(s, min(v, 0.2)) for s, v in rising]                     # flat from step 2,000
    r = convergence(rising, 4000, stopped_early=False)
    assert r == {"converged": False, "convergence": "improving", "val_gain_last_quarter": pytest.approx(0.1)}
    r = convergence(flat, 4000, stopped_early=False)
    assert r["convergence"] == "plateau" and r["converged"] and r["val_gain_last_quarter"] == 0
    # stopped by early stopping before the budget: converged, whatever the curve did
    assert convergence(rising[:20], 4000, stopped_early=True)["convergence"] == "early_stop"
    # the wall clock ended it: never converged
    assert convergence(flat, 4000, stopped_early=False, truncated=True)["converged"] is False
    # 0.9 point over the last quarter is a plateau, 1.1 is not
    almost = [*[(s, 0.5) for s in range(100, 3001, 100)], (4000, 0.509)]
    assert convergence(almost, 4000, False)["convergence"] == "plateau"
    assert convergence([*almost[:-1], (4000, 0.511)], 4000, False)["convergence"] == "improving"
    # an epoch budget: the steps the run took are its budget
    assert convergence(flat, None, False)["convergence"] == "plateau"


@pytest.mark.parametrize("patience, epochs", [(1, 2), (3, 4), (None, len(CURVE))])
def test_patience_null_never_stops_and_seeds_trained_together_follow_the_same_rule(patience, epochs):
    """trainer.patience=null (no early stopping) raised a TypeError at the first validation that did not improve,
    solo and fused; now neither stops, and the fused loop's rule stops at the epoch Lightning's does."""
    from types import SimpleNamespace

    import numpy as np

    from sedbench.training.fused import GroupFit, Member

    assert epochs_run(WarmupEarlyStopping(0, monitor="val/f1_frm", mode="max", patience=patience)) == epochs
    fit = GroupFit.__new__(GroupFit)  # the rule alone: it reads the patience and the objective's direction
    fit.t, fit.objective = SimpleNamespace(patience=patience), SimpleNamespace(mode="max")
    member = Member(number=None, seed=0, cfg=None, run_dir=None)
    stops = [fit._early_stop(member, np.float32(v)) for v in CURVE]
    assert (stops.index(True) + 1 if True in stops else len(CURVE)) == epochs
