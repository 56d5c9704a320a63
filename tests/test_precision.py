"""Networks under mixed precision (sedbench.models.precision), checked with CPU autocast: the feature front end
computes in float32, recurrent layers run in float32, and silence, zero padding and a loud tone give finite
features and finite outputs (the failure modes of float16: 1e-10 rounds to 0, power above 65504 overflows)."""

import pytest
import torch

from sedbench.bench.gpu import autocast_outputs, precision_inputs
from sedbench.models.attention import CRNNAttention, LogMel
from sedbench.models.precision import RNN_DTYPE, in_fp32

SR, HOP = 16000, 320
DTYPES = [torch.float16, torch.bfloat16]


def _inputs(frames: int = 50) -> torch.Tensor:
    """Silence, a loud 1-kHz tone (amplitude 0.9) and the tone zero-padded (make gpu-check's inputs)."""
    return precision_inputs(frames, SR, HOP)


def _unprotected(logmel: LogMel, x: torch.Tensor) -> torch.Tensor:
    """What LogMel computed before sedbench.models.precision: the same ops, left to autocast."""
    return logmel._logmel(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_feature_front_end_stays_finite_and_float32_under_autocast(dtype):
    logmel = LogMel(SR, HOP, 640)
    x = _inputs()
    reference = logmel(x)
    with torch.autocast("cpu", dtype=dtype):
        ours = logmel(x)
    assert ours.dtype == torch.float32 and torch.isfinite(ours).all()
    assert torch.equal(ours, reference)  # float32 under autocast is float32 without it
    if dtype == torch.float16:  # the failure it prevents: -inf on silence, inf on the loud tone
        with torch.autocast("cpu", dtype=dtype):
            bare = _unprotected(logmel, x)
        assert not torch.isfinite(bare).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ["crnn", "crnn_attention", "vggish", "acrnn"])
def test_networks_give_finite_outputs_on_silence_and_a_loud_tone_under_autocast(arch, dtype):
    torch.manual_seed(0)
    frames = 64
    if arch == "crnn_attention":
        net, x = CRNNAttention(HOP, 4, maps=8, heads=2), _inputs(frames)
    else:
        from sedbench.models.families import build_model

        settings = {"crnn": {"maps": 8, "pool": [5, 4, 2]}, "vggish": {"channels": [4, 4, 8, 8, 8, 8, 8],
                                                                           "hidden": 8},
                    "acrnn": {"rnn_units": 8, "rnn_layers": 1}}[arch]
        n_in = {"crnn": 40, "vggish": 513, "acrnn": 128}[arch]
        net = build_model({"arch": arch, "name": arch, **settings}, n_in=n_in, n_classes=4, strict=False)
        x = torch.randn(3, frames, n_in) * 3.0
        x[0] = 0.0  # silence after normalization
    mask = torch.ones(3, frames)
    mask[2, frames // 2:] = 0.0  # a padded sequence
    result = autocast_outputs(net, x, mask, dtype, "cpu")  # a training forward and backward, batch statistics
    assert result["finite"], f"{arch} under {dtype} autocast gave non-finite outputs"
    assert result["grads_finite"] and result["rnn_dtypes"] == [str(RNN_DTYPE).replace("torch.", "")]


def test_in_fp32_is_the_identity_outside_autocast():
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    assert torch.equal(in_fp32(lin, x), lin(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lin(x).dtype == torch.bfloat16 and in_fp32(lin, x).dtype == torch.float32
