"""The CRNN family of Cakir et al. (2017), Sec. II and III-D, from input to output shape.

    x (B, T, F) log-mel frames
    -> conv blocks, one per entry of ``pool``: "same" conv ``kernel`` = (freq, time) with
       ``maps`` filters -> batch norm -> ReLU -> max-pool over frequency only -> dropout
       # (B, maps, T, F / prod(pool))
    -> stack feature maps over frequency                       # (B, T, maps * F')
    -> ``rnn_layers`` recurrent layers (GRU or LSTM, ``maps`` units each), dropout
       with one mask per sequence between layers               # (B, T, maps [x2 if bidirectional])
    -> ``fnn_layers`` dense layers of ``maps`` units -> batch norm -> ReLU -> dropout
    -> [``temporal_pool``: max over time, for clip-level (weak) labels]   # (B, maps)
    -> dense output, one logit per class (sigmoid applied by the loss / at prediction)

A CNN is ``rnn_layers=0`` (feedforward layers in place of the recurrent ones); an RNN is
``pool=[]`` (no conv layers, feedforward layers before the output). Weights use He
initialization; biases start at zero. Two initialization options, both off by default (the paper's
recipe as sedbench first read it), are deviations that ``sweeps/claims.yaml`` measured on its pilot:

* ``output_bias=prior``: the output layer's biases start at the log odds of each class's share of active
  frames in the training split (the training code calls :meth:`CRNN.init_output_bias`), so that a network
  starts by predicting each class's prior instead of 0.5 everywhere;
* ``rnn_init=keras``: recurrent layers initialized as Keras (the paper's toolkit) does: Glorot-uniform input
  weights, orthogonal recurrent weights, zero biases (``he``: He-uniform for both, the default);
* ``output_dropout=false``: no dropout on the last recurrent or feedforward layer's output, the one the output
  layer reads (dropout stays everywhere else).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sedbench.errors import ConfigError
from sedbench.models.precision import in_fp32


class LockedDropout(nn.Module):
    """Dropout whose mask is constant along the time axis of a ``(B, T, C)`` sequence."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


def pooled_bands(n_bands: int, pool: Sequence[int]) -> int:
    """Frequency bands left after max-pooling by each factor of ``pool`` in turn."""
    f = n_bands
    for p in pool:
        if p < 1 or f // p < 1:
            raise ConfigError(f"model.pool {list(pool)} cannot pool {n_bands} bands (stuck at {f} bands before {p}). "
                              "Fix: pooling factors whose product is at most the number of bands")
        f //= p
    return f


def conv_blocks(maps: int, pool: Sequence[int], kernel: Sequence[int], dropout: float) -> nn.Sequential:
    """One block per pooling factor: "same" conv ``kernel`` (freq, time) with ``maps`` filters -> batch norm ->
    ReLU -> max-pool over frequency -> dropout (five modules per block, which the unit visualization relies on)."""
    convs, c_in = [], 1
    for p in pool:
        convs += [nn.Conv2d(c_in, maps, (kernel[1], kernel[0]), padding="same"), nn.BatchNorm2d(maps), nn.ReLU(),
                  nn.MaxPool2d((1, p)), nn.Dropout(dropout)]
        c_in = maps
    return nn.Sequential(*convs)


BLOCK = 5  # modules per conv block of conv_blocks: conv, batch norm, ReLU, max-pool, dropout


def conv_count(conv: nn.Sequential) -> int:
    """The conv layers of a :func:`conv_blocks` stack."""
    return len(conv) // BLOCK


def conv_layer(conv: nn.Sequential, layer: int) -> nn.Conv2d:
    """Conv layer ``layer`` (1-based) of a :func:`conv_blocks` stack."""
    return conv[BLOCK * (layer - 1)]


def up_to_batchnorm(conv: nn.Sequential, layer: int) -> nn.Sequential:
    """The stack from its input to conv layer ``layer``'s batch norm (1-based): that layer's units before the ReLU."""
    return conv[: BLOCK * (layer - 1) + 2]


def recurrent_stack(cell: str, width: int, units: int, layers: int, bidirectional: bool) -> tuple[nn.ModuleList, int]:
    """``layers`` GRU or LSTM layers of ``units`` (per direction) on ``width`` inputs; returns them and the width
    of their output."""
    if cell not in ("gru", "lstm"):
        raise ConfigError(f"model.cell must be gru or lstm, got {cell!r}")
    rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
    rnns = nn.ModuleList()
    for _ in range(layers):
        rnns.append(rnn_cls(width, units, batch_first=True, bidirectional=bidirectional))
        width = units * (2 if bidirectional else 1)
    return rnns, width


def he_init(model: nn.Module, recurrent: bool = True) -> None:
    """He (Kaiming) initialization for ReLU networks, biases at zero; with ``recurrent``, the GRU/LSTM
    weights too (uniform), else they keep PyTorch's default."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif recurrent and isinstance(m, (nn.GRU, nn.LSTM)):
            for name, w in m.named_parameters():
                if "weight" in name:
                    nn.init.kaiming_uniform_(w, nonlinearity="relu")
                else:
                    nn.init.zeros_(w)


def keras_recurrent_init(model: nn.Module) -> None:
    """GRU/LSTM layers as Keras initializes them: Glorot-uniform input weights, orthogonal recurrent weights
    (one orthogonal block per gate), zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.GRU, nn.LSTM)):
            gates = 3 if isinstance(m, nn.GRU) else 4
            for name, w in m.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(w)
                elif name.startswith("weight_hh"):
                    for block in w.data.chunk(gates, 0):
                        nn.init.orthogonal_(block)
                else:
                    nn.init.zeros_(w)


OUTPUT_BIASES, RNN_INITS = ("zero", "prior"), ("he", "keras")


class CRNN(nn.Module):
    def __init__(self, n_in: int, n_classes: int, maps: int = 96, pool: Sequence[int] = (5, 4, 2),
                 rnn_layers: int = 1, fnn_layers: int = 0, kernel: Sequence[int] = (5, 5), cell: str = "gru",
                 bidirectional: bool = False, dropout: float = 0.25, temporal_pool: bool = False,
                 output_bias: str = "zero", rnn_init: str = "he", output_dropout: bool = True):
        super().__init__()
        pool, kernel = [int(p) for p in pool], [int(k) for k in kernel]
        if len(kernel) != 2:
            raise ConfigError(f"model.kernel is [freq, time], got {kernel}. Fix: e.g. model.kernel=[5,5]")
        if output_bias not in OUTPUT_BIASES or rnn_init not in RNN_INITS:
            raise ConfigError(f"model.output_bias={output_bias!r}, model.rnn_init={rnn_init!r}. Fix: output_bias "
                              f"one of {', '.join(OUTPUT_BIASES)}; rnn_init one of {', '.join(RNN_INITS)}")
        self.output_bias, self.output_dropout = output_bias, output_dropout
        f = pooled_bands(n_in, pool)
        self.pool, self.temporal_pool = pool, temporal_pool
        self.conv = conv_blocks(maps, pool, kernel, dropout)
        self.rnns, width = recurrent_stack(cell, maps * f if pool else n_in, maps, rnn_layers, bidirectional)
        self.rnn_dropout = LockedDropout(dropout)
        fnns = []
        for _ in range(fnn_layers):
            fnns.append(nn.ModuleList([nn.Linear(width, maps), nn.BatchNorm1d(maps)]))
            width = maps
        self.fnns = nn.ModuleList(fnns)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, n_classes)
        he_init(self)
        if rnn_init == "keras":
            keras_recurrent_init(self)

    def init_output_bias(self, targets) -> None:
        """With ``output_bias=prior``: each output bias at the log odds of its class's share of active frames in
        ``targets`` (``(frames, classes)``, the training split), clipped to [1e-4, 1 - 1e-4]; else nothing."""
        if self.output_bias != "prior" or self.temporal_pool:
            return
        import numpy as np

        prior = np.clip(np.asarray(targets, np.float64).mean(axis=0), 1e-4, 1 - 1e-4)
        with torch.no_grad():
            self.out.bias.copy_(torch.as_tensor(np.log(prior / (1 - prior)), dtype=self.out.bias.dtype))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, F)`` -> logits ``(B, T, K)``, or ``(B, K)`` with ``temporal_pool``."""
        B, T, _ = x.shape
        if self.pool:
            h = self.conv(x.unsqueeze(1))                          # (B, maps, T, F')
            h = h.permute(0, 2, 1, 3).reshape(B, T, -1)            # (B, T, maps * F')
        else:
            h = x
        last = len(self.rnns) + len(self.fnns) - 1                  # the layer the output layer reads
        for i, rnn in enumerate(self.rnns):
            h = in_fp32(rnn, h)[0]                                  # (B, T, maps [x2]), float32
            h = self.rnn_dropout(h) if self.output_dropout or i < last else h
        for i, (lin, bn) in enumerate(self.fnns, start=len(self.rnns)):
            h = lin(h)
            h = torch.relu(bn(h.reshape(B * T, -1)).reshape(B, T, -1))  # (B, T, maps)
            h = self.dropout(h) if self.output_dropout or i < last else h
        if self.temporal_pool:
            if mask is not None:
                h = h.masked_fill(mask[..., None] == 0, float("-inf"))
            h = h.max(dim=1).values                                  # (B, maps)
        return self.out(h)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
