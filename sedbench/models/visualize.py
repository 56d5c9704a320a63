"""What convolutional units look for: inputs that maximize them, by gradient ascent (paper Sec. IV-C, Fig. 7).

Following the paper (after Simonyan et al.'s technique): start from Gaussian noise (zero mean,
unit variance: the scale of the z-normalized features), take one unit of a convolutional layer
(one channel at the centre of the feature map), and update the input along the gradient of
its activation for a fixed number of steps (100 in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class UnitPattern:
    layer: int            # 1-based convolutional layer
    channel: int
    activation: float     # the unit's activation after the last step
    pattern: np.ndarray   # (frames, bands) input that drives it


def conv_layers(net) -> int:
    from sedbench.models.crnn import conv_count

    return conv_count(net.conv)


def receptive_field(net, layer: int) -> int:
    """Frames of input that one unit of conv layer ``layer`` (1-based) sees (no pooling in time)."""
    from sedbench.models.crnn import conv_layer

    kt = conv_layer(net.conv, 1).kernel_size[0]
    return layer * (kt - 1) + 1


def maximize_units(net, layer: int, channels: Sequence[int], n_bands: int, frames: int = 32, steps: int = 100,
                   step_size: float = 0.1, limit: float = 3.0, seed: int = 0) -> list[UnitPattern]:
    """For each channel of conv layer ``layer`` (1-based), the input maximizing its centre unit.

    The activation is the batch-normalized convolution output before the ReLU (a unit at zero
    would pass no gradient). Each step moves the input along its gradient, the largest change being
    ``step_size``, and keeps it within ``+-limit`` (z-scores, the range of real normalized features).
    """
    import torch

    from sedbench.models.crnn import up_to_batchnorm

    if not 1 <= layer <= conv_layers(net):
        raise ValueError(f"layer must be 1..{conv_layers(net)}, got {layer}")
    net.eval()
    upto = up_to_batchnorm(net.conv, layer)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(channels), 1, frames, n_bands, generator=gen).requires_grad_(True)
    idx = torch.as_tensor(list(channels))
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            h = upto(x)                                           # (units, maps, frames, bands')
            act = h[torch.arange(len(idx)), idx, h.shape[2] // 2, h.shape[3] // 2]
            (grad,) = torch.autograd.grad(act.sum(), x)
            with torch.no_grad():
                x += step_size * grad / grad.flatten(1).abs().amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                x.clamp_(-limit, limit)
        with torch.no_grad():
            h = upto(x)
            act = h[torch.arange(len(idx)), idx, h.shape[2] // 2, h.shape[3] // 2]
    finally:
        for p in net.parameters():
            p.requires_grad_(True)
    return [UnitPattern(layer, int(c), float(a), x[i, 0].detach().numpy())
            for i, (c, a) in enumerate(zip(channels, act.tolist(), strict=True))]


def strongest_units(net, n_bands: int, per_layer: int = 3, candidates: int = 16, **kw) -> list[UnitPattern]:
    """Per conv layer, ``candidates`` channels optimized and the ``per_layer`` that reach the highest activation
    (those least stuck in a weak local maximum)."""
    from sedbench.models.crnn import conv_layer

    out = []
    for layer in range(1, conv_layers(net) + 1):
        maps = conv_layer(net.conv, layer).out_channels
        found = maximize_units(net, layer, list(range(min(candidates, maps))), n_bands, **kw)
        out += sorted(found, key=lambda u: -u.activation)[:per_layer]
    return out
