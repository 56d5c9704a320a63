"""ACRNN (Zhang, Xu, Zhang, Qiao and Cao, "Attention based Convolutional Recurrent Neural Network for
Environmental Sound Classification", 2019, arXiv:1907.02230): clip classification.

    x (B, T, channels * bands) log gammatone bands and their deltas (``features=gammatone``)
    -> (B, channels, T, bands)
    -> four blocks of two "same" convolutions (batch norm, ReLU each), then max-pooling:
       32 filters (3,5), pool (4,3); 64 (3,1), pool (4,1); 128 (1,5), pool (1,3); 256 (3,3), pool (2,2)
       (shapes as (frequency, time), as the paper writes them)          # (B, 256, T', bands')
    -> stack over frequency                                              # (B, T', 256 * bands')
    -> bidirectional GRU layers of 256 units (over the valid frames only), dropout 0.5 on each layer's output
    -> frame-level attention: a_t = softmax_t(v . tanh(W h_t)); clip vector sum_t a_t h_t
    -> dense output, one logit per class (clip level)

L2 regularization of the weights (1e-4) is Adam's ``weight_decay`` (``model.weight_decay``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from sedbench.errors import ConfigError
from sedbench.models.precision import in_fp32

BLOCKS = ({"maps": 32, "kernel": [3, 5], "pool": [4, 3]}, {"maps": 64, "kernel": [3, 1], "pool": [4, 1]},
          {"maps": 128, "kernel": [1, 5], "pool": [1, 3]}, {"maps": 256, "kernel": [3, 3], "pool": [2, 2]})


class ACRNN(nn.Module):
    def __init__(self, n_in: int, n_classes: int, channels: int = 2, blocks: Sequence[dict] = BLOCKS,
                 convs_per_block: int = 2, rnn_units: int = 256, rnn_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if n_in % channels:
            raise ConfigError(f"model.channels={channels} does not divide the {n_in} input features. Fix: "
                              "features=gammatone with deltas (2 channels) or model.channels=1")
        self.channels, bands = channels, n_in // channels
        layers, c_in, self.time_pool = [], channels, 1
        for b in blocks:
            (kf, kt), (pf, pt) = b["kernel"], b["pool"]
            for _ in range(convs_per_block):
                layers += [nn.Conv2d(c_in, b["maps"], (kt, kf), padding="same"), nn.BatchNorm2d(b["maps"]), nn.ReLU()]
                c_in = b["maps"]
            layers.append(nn.MaxPool2d((pt, pf)))
            bands //= pf
            self.time_pool *= pt
        if bands < 1:
            raise ConfigError(f"model.blocks pool more than the {n_in // channels} input bands. Fix: fewer or "
                              "smaller frequency pools, or more bands (features.n_mels)")
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(c_in * bands, rnn_units, num_layers=rnn_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if rnn_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.att_w = nn.Linear(2 * rnn_units, 2 * rnn_units)
        self.att_v = nn.Linear(2 * rnn_units, 1, bias=False)
        self.out = nn.Linear(2 * rnn_units, n_classes)

    def _packed_gru(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        return nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=h.shape[1])[0]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        if T < self.time_pool:
            raise ConfigError(f"sequences of {T} frames are shorter than the network's time pooling "
                              f"({self.time_pool}). Fix: data.seq_len >= {self.time_pool}")
        h = self.conv(x.view(B, T, self.channels, -1).permute(0, 2, 1, 3))   # (B, maps, T', bands')
        h = h.permute(0, 2, 1, 3).flatten(2)                                  # (B, T', maps * bands')
        valid = None
        if mask is not None:  # padded frames (a clip shorter than a segment) are skipped by GRU and attention
            valid = F.adaptive_max_pool1d(mask[:, None], h.shape[1])[:, 0] > 0
            lengths = valid.sum(dim=1).clamp_min(1).cpu()
            h = in_fp32(self._packed_gru, h, lengths)
        else:
            h = in_fp32(self.gru, h)[0]  # float32 under autocast (sedbench.models.precision)
        h = self.dropout(h)                                                   # (B, T', 2 * units)
        score = self.att_v(torch.tanh(self.att_w(h))).squeeze(-1)             # (B, T')
        if valid is not None:
            score = score.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(score, dim=1)
        return self.out((weights.unsqueeze(-1) * h).sum(dim=1))
