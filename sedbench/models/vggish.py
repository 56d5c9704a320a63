"""VGGish-RNN, after a TensorFlow CNN+RNN sound event detection repository (its README names no
authors; trained on the Friends series): a VGG-style stack of 3x3 convolutions on the linear STFT
magnitude, then a recurrent layer and sigmoid outputs.

    x (B, T, N_FFT/2+1) STFT magnitude frames (``features=stft``)
    -> per entry of ``channels``: 3x3 "same" conv -> batch norm -> ReLU -> average pooling over
       frequency by ``pool``                                      # (B, C, T, bins / pool^n)
    -> stack channels over frequency                              # (B, T, C * bins')
    -> ``rnn_layers`` GRU/LSTM layers of ``hidden`` units, dropout
    -> dense output, one logit per class

The original model classifies 1-second clips and also pools over time; here pooling is over
frequency only, so that every 20-ms frame keeps its own output, as sound event detection needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sedbench.errors import ConfigError
from sedbench.models.crnn import LockedDropout, he_init, recurrent_stack
from sedbench.models.precision import in_fp32


class VGGishRNN(nn.Module):
    def __init__(self, n_in: int, n_classes: int, channels: Sequence[int] = (16, 32, 32, 64, 64, 128, 128),
                 pool: int = 2, hidden: int = 128, rnn_layers: int = 1, cell: str = "gru", bidirectional: bool = False,
                 dropout: float = 0.25):
        super().__init__()
        channels = [int(c) for c in channels]
        bins = n_in
        for _ in channels:
            bins //= pool
        if bins < 1:
            raise ConfigError(f"model.channels: {len(channels)} poolings by {pool} leave no frequency bins of {n_in}. "
                              "Fix: fewer conv layers, a smaller model.pool, or features=stft")
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.AvgPool2d((1, pool))]
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.rnns, width = recurrent_stack(cell, c_in * bins, hidden, rnn_layers, bidirectional)
        self.dropout = LockedDropout(dropout)
        self.out = nn.Linear(width, n_classes)
        he_init(self, recurrent=False)  # its recurrent layers have always kept PyTorch's default initialization

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        h = self.conv(x.unsqueeze(1))                      # (B, C, T, bins')
        h = h.permute(0, 2, 1, 3).reshape(B, T, -1)
        for rnn in self.rnns:
            h = self.dropout(in_fp32(rnn, h)[0])  # float32 under autocast (sedbench.models.precision)
        return self.out(h)
