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
initialization; biases start at zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sedbench.errors import ConfigError


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


class CRNN(nn.Module):
    def __init__(self, n_in: int, n_classes: int, maps: int = 96, pool: Sequence[int] = (5, 4, 2),
                 rnn_layers: int = 1, fnn_layers: int = 0, kernel: Sequence[int] = (5, 5), cell: str = "gru",
                 bidirectional: bool = False, dropout: float = 0.25, temporal_pool: bool = False):
        super().__init__()
        pool, kernel = [int(p) for p in pool], [int(k) for k in kernel]
        if len(kernel) != 2:
            raise ConfigError(f"model.kernel is [freq, time], got {kernel}. Fix: e.g. model.kernel=[5,5]")
        if cell not in ("gru", "lstm"):
            raise ConfigError(f"model.cell must be gru or lstm, got {cell!r}")
        f = pooled_bands(n_in, pool)
        self.pool, self.temporal_pool = pool, temporal_pool
        self.conv = conv_blocks(maps, pool, kernel, dropout)
        width = maps * f if pool else n_in
        rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
        self.rnns = nn.ModuleList()
        for _ in range(rnn_layers):
            self.rnns.append(rnn_cls(width, maps, batch_first=True, bidirectional=bidirectional))
            width = maps * (2 if bidirectional else 1)
        self.rnn_dropout = LockedDropout(dropout)
        fnns = []
        for _ in range(fnn_layers):
            fnns.append(nn.ModuleList([nn.Linear(width, maps), nn.BatchNorm1d(maps)]))
            width = maps
        self.fnns = nn.ModuleList(fnns)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, n_classes)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.GRU, nn.LSTM)):
                for name, w in m.named_parameters():
                    if "weight" in name:
                        nn.init.kaiming_uniform_(w, nonlinearity="relu")
                    else:
                        nn.init.zeros_(w)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, F)`` -> logits ``(B, T, K)``, or ``(B, K)`` with ``temporal_pool``."""
        B, T, _ = x.shape
        if self.pool:
            h = self.conv(x.unsqueeze(1))                          # (B, maps, T, F')
            h = h.permute(0, 2, 1, 3).reshape(B, T, -1)            # (B, T, maps * F')
        else:
            h = x
        for rnn in self.rnns:
            h = self.rnn_dropout(rnn(h)[0])                         # (B, T, maps [x2])
        for lin, bn in self.fnns:
            h = lin(h)
            h = bn(h.reshape(B * T, -1)).reshape(B, T, -1)          # (B, T, maps)
            h = self.dropout(torch.relu(h))
        if self.temporal_pool:
            if mask is not None:
                h = h.masked_fill(mask[..., None] == 0, float("-inf"))
            h = h.max(dim=1).values                                  # (B, maps)
        return self.out(h)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# model.arch -> (module, class, the config keys it takes); other model keys (name, family) are labels
ARCHS = {
    "crnn": ("sedbench.models.crnn", "CRNN", ("maps", "pool", "rnn_layers", "fnn_layers", "kernel", "cell",
                                              "bidirectional", "dropout", "temporal_pool")),
    "crnn_attention": ("sedbench.models.attention", "CRNNAttention", ("hop_seconds", "frame_seconds", "n_mels",
                                                                      "maps", "pool", "kernel", "rnn_layers",
                                                                      "heads", "dropout")),
    "acrnn": ("sedbench.models.acrnn", "ACRNN", ("channels", "blocks", "convs_per_block", "rnn_units",
                                                 "rnn_layers", "dropout")),
    "fnn": ("sedbench.models.fnn", "FNN", ("units", "layers", "maxout_pool", "context", "dropout")),
    "vggish": ("sedbench.models.vggish", "VGGishRNN", ("channels", "pool", "hidden", "rnn_layers", "cell",
                                                       "bidirectional", "dropout")),
}


# keys every model config may hold besides its architecture's: labels and training options read by train.py
COMMON_KEYS = ("name", "family", "arch", "class_summary", "weight_decay")
GMM_KEYS = ("n_components", "window_seconds", "max_frames", "max_iter")  # model=gmm: sedbench.models.gmm


def _as_dict(model_cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)


def model_config(model_cfg) -> dict:
    """A ``model`` config mapping (Hydra or dict) as a plain dict whose keys are all known to its ``arch``:
    a misspelt key (``+model.poool=[4]``) is an error that names it, never silently dropped."""
    cfg = _as_dict(model_cfg)
    arch = cfg.get("arch", "crnn")
    if arch != "gmm" and arch not in ARCHS:
        raise ConfigError(f"model.arch={arch!r} is not a network sedbench knows. Fix: one of {', '.join(ARCHS)} "
                          "(model=gmm trains without a network)")
    known = GMM_KEYS if arch == "gmm" else ARCHS[arch][2]
    unknown = sorted(set(cfg) - set(known) - set(COMMON_KEYS))
    if unknown:
        raise ConfigError(f"model.{unknown[0]} is not a setting of model.arch={arch} ({cfg.get('name', arch)}). "
                          f"Fix: remove it or use one of {', '.join(sorted((*known, *COMMON_KEYS)))}")
    return cfg


def build_model(model_cfg, n_in: int, n_classes: int, strict: bool = True) -> nn.Module:
    """The network from a ``model`` config mapping (Hydra or dict); ``arch`` picks the class (default crnn).
    ``strict=False`` ignores keys the architecture does not take (a bundle saved by an older sedbench)."""
    import importlib

    cfg = model_config(model_cfg) if strict else _as_dict(model_cfg)
    arch = cfg.get("arch", "crnn")
    if arch == "gmm":
        raise ConfigError("model=gmm is not a network: it trains through sedbench.models.gmm.GMMDetector")
    module, cls, keys = ARCHS[arch]
    return getattr(importlib.import_module(module), cls)(n_in, n_classes, **{k: cfg[k] for k in keys if k in cfg})
