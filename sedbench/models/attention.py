"""CRNN with self-attention (after H. Kim, "Sound Event Detection with CNNs", blog post, kozistr.tech):
log-mel computed by the network itself, a conv front end, a bidirectional GRU and self-attention
over time before the frame-wise output.

    x (B, T, hop) raw audio, one 20-ms hop of samples per frame (``features=waveform``)
    -> LogMel, a torch module: 40-ms Hamming frames centred on each hop, power spectrum, mel
       filterbank (librosa's, as a buffer), log; so it runs on the model's device (GPU when
       there is one), the role torchlibrosa plays in Kim's model          # (B, T, n_mels)
    -> batch norm over mel bands (input normalization learned on the fly)
    -> conv blocks as in the CRNN: conv ``kernel`` -> BN -> ReLU -> max-pool over frequency
    -> bidirectional GRU, ``rnn_layers`` layers of ``maps`` units per direction
    -> multi-head self-attention over the sequence, residual + layer norm
    -> dense output, one logit per class

Within a training or evaluation sequence the log-mel equals the cached ``features=logmel``
frames; at a sequence's two ends the analysis window sees zeros instead of the neighbouring audio.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sedbench.errors import ConfigError
from sedbench.models.crnn import conv_blocks, pooled_bands
from sedbench.models.precision import in_fp32


class LogMel(nn.Module):
    def __init__(self, sample_rate: int, hop: int, n_fft: int, n_mels: int = 40, fmin: float = 0.0,
                 fmax: float | None = None):
        super().__init__()
        import librosa

        self.hop, self.n_fft = hop, n_fft
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax or sample_rate / 2)
        self.register_buffer("mel", torch.from_numpy(mel.T.copy()).float(), persistent=False)
        self.register_buffer("window", torch.from_numpy(
            librosa.filters.get_window("hamming", n_fft, fftbins=True).astype("float32")), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, hop)`` samples -> ``(B, T, n_mels)`` log mel energies, in float32 also under autocast
        (sedbench.models.precision)."""
        return in_fp32(self._logmel, x)

    def _logmel(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        left = (self.n_fft - self.hop) // 2
        y = nn.functional.pad(x.reshape(B, T * self.hop), (left, self.n_fft))
        frames = y.unfold(-1, self.n_fft, self.hop)[:, :T]           # (B, T, n_fft)
        power = torch.fft.rfft(frames * self.window).abs().pow(2)    # (B, T, n_fft/2+1)
        return torch.log(power @ self.mel + 1e-10)


class CRNNAttention(nn.Module):
    def __init__(self, n_in: int, n_classes: int, hop_seconds: float = 0.02, frame_seconds: float = 0.04,
                 n_mels: int = 40, maps: int = 64, pool: Sequence[int] = (5, 4, 2), kernel: Sequence[int] = (5, 5),
                 rnn_layers: int = 1, heads: int = 4, dropout: float = 0.25):
        super().__init__()
        sample_rate = round(n_in / hop_seconds)
        if sample_rate < 4000:  # n_in is the samples of one hop; a few dozen means precomputed features
            raise ConfigError(f"model=crnn_attention needs features=waveform (the samples of each hop); got {n_in} "
                              f"features per frame, i.e. a {sample_rate} Hz sample rate. Fix: features=waveform")
        pool, kernel = [int(p) for p in pool], [int(k) for k in kernel]
        f = pooled_bands(n_mels, pool)
        if (2 * maps) % heads:
            raise ConfigError(f"model.heads={heads} must divide 2 x model.maps = {2 * maps}")
        self.logmel = LogMel(sample_rate, n_in, round(frame_seconds * sample_rate), n_mels)
        self.norm_in = nn.BatchNorm1d(n_mels)
        self.conv = conv_blocks(maps, pool, kernel, dropout)
        self.gru = nn.GRU(maps * f, maps, num_layers=rnn_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if rnn_layers > 1 else 0.0)
        self.attention = nn.MultiheadAttention(2 * maps, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(2 * maps)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * maps, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        m = self.logmel(x)                                               # (B, T, n_mels)
        m = self.norm_in(m.transpose(1, 2)).transpose(1, 2)
        h = self.conv(m.unsqueeze(1)).permute(0, 2, 1, 3).reshape(B, T, -1)
        h = self.dropout(in_fp32(self.gru, h)[0])                                # (B, T, 2 * maps)
        pad = (mask == 0) if mask is not None else None                  # padded frames are not attended to
        a, _ = self.attention(h, h, h, key_padding_mask=pad, need_weights=False)
        return self.out(self.norm(h + self.dropout(a)))
