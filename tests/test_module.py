import pytest
import torch

from sedbench.models.crnn import CRNN
from sedbench.training.module import SEDModule


def test_nan_loss_raises_so_the_trial_fails_instead_of_training_on():
    module = SEDModule(CRNN(40, 3, maps=4, pool=[5, 4, 2]), ["a", "b", "c"], hop=0.02)
    batch = {"x": torch.full((2, 16, 40), float("nan")), "y": torch.zeros(2, 16, 3), "mask": torch.ones(2, 16)}
    with pytest.raises(FloatingPointError, match="training loss is nan"):
        module.training_step(batch, 0)


def test_padding_is_masked_out_of_the_loss():
    module = SEDModule(CRNN(40, 2, maps=4, pool=[5, 4, 2]), ["a", "b"], hop=0.02)
    module.eval()
    with torch.no_grad():
        logits = module(torch.randn(1, 8, 40))
    y = torch.zeros(1, 8, 2)
    full = module._loss(logits, {"y": y, "mask": torch.ones(1, 8)}).item()
    y_bad = y.clone()
    y_bad[0, 4:] = 1.0  # garbage targets on padded frames
    masked = module._loss(logits, {"y": y_bad, "mask": torch.tensor([[1.0] * 4 + [0.0] * 4])}).item()
    first_half = module._loss(logits[:, :4], {"y": y[:, :4], "mask": torch.ones(1, 4)}).item()
    assert masked == pytest.approx(first_half) and full != pytest.approx(masked)
