"""The paper's FNN baseline (Cakir et al. 2017, Sec. III-E; Cakir et al., IJCNN 2015).

    x (B, T, F) log-mel frames
    -> each frame stacked with its neighbours: ``context`` frames centred on it (5 frames,
       100 ms; zeros beyond the ends of the sequence)               # (B, T, context * F)
    -> ``layers`` maxout layers: dense to ``units`` outputs, max over groups of ``pool``,
       dropout                                                      # (B, T, units / pool)
    -> dense output, one logit per class (sigmoid applied by the loss / at prediction)

With 40 bands, two layers of 1600 units and pool size 2 the network has about 1.6M parameters.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sedbench.errors import ConfigError


class Maxout(nn.Module):
    def __init__(self, n_in: int, units: int, pool: int):
        super().__init__()
        if units % pool:
            raise ConfigError(f"model.units={units} is not a multiple of model.maxout_pool={pool}. Fix: e.g. "
                              "model.units=1600 model.maxout_pool=2")
        self.linear, self.pool = nn.Linear(n_in, units), pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        return h.view(*h.shape[:-1], h.shape[-1] // self.pool, self.pool).amax(dim=-1)


class FNN(nn.Module):
    def __init__(self, n_in: int, n_classes: int, units: int = 1600, layers: int = 2, maxout_pool: int = 2,
                 context: int = 5, dropout: float = 0.25):
        super().__init__()
        if context < 1 or context % 2 == 0:
            raise ConfigError(f"model.context must be an odd number of frames, got {context}. Fix: e.g. 5")
        self.context = context
        blocks, width = [], n_in * context
        for _ in range(layers):
            blocks.append(Maxout(width, units, maxout_pool))
            width = units // maxout_pool
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def stack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> ``(B, T, context * F)``: each frame with its neighbours, oldest first."""
        half = self.context // 2
        padded = F.pad(x, (0, 0, half, half))
        return padded.unfold(1, self.context, 1).transpose(2, 3).reshape(x.shape[0], x.shape[1], -1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stack(x)
        for block in self.blocks:
            h = self.dropout(block(h))
        return self.out(h)
