"""Acoustic features, their on-disk cache, frame targets and normalization.

Paper (Cakir et al. 2017, Sec. III-D): STFT in 40 ms frames with 50 % overlap, 40 mel
bands spanning 0 Hz to Nyquist, logarithm, then per-band z-normalization with the
training set's statistics. Variants for the baselines: the linear STFT magnitude
(N_FFT/2+1 bins) and MFCCs with deltas and accelerations (DCASE2016 GMM baseline:
20 static coefficients without c0, deltas over 9 frames: 59 dimensions).

Frame ``i`` describes the interval ``[i*hop, (i+1)*hop)``: the analysis window is centred
on it, so features, targets (onset floor, offset ceil, as sed_eval rasterizes) and
the metrics' frame grid line up.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sedbench.data.annotations import Event

CACHE_VERSION = 1


@dataclass(frozen=True)
class FeatureParams:
    kind: str = "logmel"          # logmel | stft | mfcc | gammatone | waveform
    n_mels: int = 40              # mel bands (logmel, mfcc) or gammatone bands
    frame_seconds: float = 0.04
    hop_seconds: float = 0.02
    fmin: float = 0.0
    fmax: float | None = None     # None = Nyquist
    window: str = "hamming"
    n_mfcc: int = 20              # mfcc: coefficients computed; c0 left out of the statics unless include_c0
    include_c0: bool = False
    deltas: bool = True           # mfcc: append deltas and accelerations
    delta_width: int = 9

    def __post_init__(self):
        if self.kind not in ("logmel", "stft", "mfcc", "gammatone", "waveform"):
            raise ValueError(f"features.kind must be logmel, stft, mfcc, gammatone or waveform, got {self.kind!r}")
        if not 0 < self.hop_seconds <= self.frame_seconds:
            raise ValueError("features: need 0 < hop_seconds <= frame_seconds")

    def n_features(self, sample_rate: int) -> int:
        if self.kind == "waveform":
            return self.hop(sample_rate)
        if self.kind == "logmel":
            return self.n_mels
        if self.kind == "gammatone":
            return self.n_mels * (2 if self.deltas else 1)
        if self.kind == "stft":
            return self.n_fft(sample_rate) // 2 + 1
        static = self.n_mfcc - (0 if self.include_c0 else 1)
        return static + (2 * self.n_mfcc if self.deltas else 0)

    def n_fft(self, sample_rate: int) -> int:
        return int(round(self.frame_seconds * sample_rate))

    def hop(self, sample_rate: int) -> int:
        return int(round(self.hop_seconds * sample_rate))


def n_frames(n_samples: int, sample_rate: int, params: FeatureParams) -> int:
    return max(1, math.ceil(n_samples / params.hop(sample_rate)))


POWER_BLOCK = 1024  # frames whose spectra are computed at once (extract)


def extract(y: np.ndarray, sample_rate: int, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Features of a mono signal: ``(frames, features)`` float32, frame ``i`` centred on ``[i*hop, (i+1)*hop)``."""
    import librosa

    n_fft, hop = params.n_fft(sample_rate), params.hop(sample_rate)
    T = n_frames(len(y), sample_rate, params)
    if params.kind == "waveform":  # the samples of each hop, for networks that compute their own features
        out = np.zeros(T * hop, dtype=np.float32)
        out[:len(y)] = y
        return out.reshape(T, hop)
    left = (n_fft - hop) // 2
    padded = np.zeros(left + T * hop + n_fft, dtype=np.float32)
    padded[left:left + len(y)] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:T]
    win = librosa.filters.get_window(params.window, n_fft, fftbins=True).astype(np.float32)
    power = np.empty((T, n_fft // 2 + 1), np.float32)  # (T, n_fft/2+1)
    for s in range(0, T, POWER_BLOCK):  # a block of frames at a time: the same values (each frame's own FFT), and
        # the windowed frames and their spectra of a 6-minute file never in memory at once (they took 0.5 GB)
        power[s:s + POWER_BLOCK] = np.abs(np.fft.rfft(frames[s:s + POWER_BLOCK] * win, axis=1)) ** 2
    if params.kind == "stft":
        return np.sqrt(power).astype(np.float32)
    fmax = params.fmax or sample_rate / 2
    if params.kind == "gammatone":
        return log_gammatone(power, sample_rate, n_fft, params)
    n_mels = params.n_mels
    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=params.fmin, fmax=fmax)
    mel_energy = power @ mel.T  # (T, n_mels)
    logmel = np.log(mel_energy + 1e-10).astype(np.float32)
    if params.kind == "logmel":
        return logmel
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel_energy.T), n_mfcc=params.n_mfcc)  # (n_mfcc, T)
    # DCASE2016 baseline: c0 is dropped from the statics only; deltas and accelerations keep it (19+20+20 = 59)
    parts = [mfcc if params.include_c0 else mfcc[1:]]
    if params.deltas:
        width = min(params.delta_width, T if T % 2 else T - 1)
        if width >= 3:
            parts += [librosa.feature.delta(mfcc, width=width, order=order) for order in (1, 2)]
        else:
            parts += [np.zeros_like(mfcc), np.zeros_like(mfcc)]
    return np.concatenate(parts, axis=0).T.astype(np.float32)


def erb_space(fmin: float, fmax: float, n: int) -> np.ndarray:
    """``n`` centre frequencies (Hz) equally spaced on the ERB-rate scale (Glasberg & Moore 1990)."""
    rate = np.linspace(21.4 * np.log10(1 + 0.00437 * fmin), 21.4 * np.log10(1 + 0.00437 * fmax), n)
    return (10 ** (rate / 21.4) - 1) / 0.00437


def gammatone_weights(sample_rate: int, n_fft: int, n_bands: int, fmin: float, fmax: float) -> np.ndarray:
    """``(n_bands, n_fft/2+1)`` power responses of 4th-order gammatone filters (bandwidth 1.019 ERB),
    each summing to one: a gammatone filterbank applied to the STFT power spectrum."""
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    fc = erb_space(fmin, fmax, n_bands)[:, None]
    width = 1.019 * 24.7 * (4.37 * fc / 1000 + 1)
    w = (1 + ((freqs[None] - fc) / width) ** 2) ** -4.0
    return w / w.sum(axis=1, keepdims=True)


def log_gammatone(power: np.ndarray, sample_rate: int, n_fft: int, params: FeatureParams) -> np.ndarray:
    """Log gammatone band energies ``(T, bands)``, with their deltas appended when ``params.deltas``
    (ACRNN's two input channels)."""
    import librosa

    fmin = params.fmin or 50.0
    w = gammatone_weights(sample_rate, n_fft, params.n_mels, fmin, params.fmax or sample_rate / 2)
    lg = np.log(power @ w.T + 1e-10).astype(np.float32)
    if not params.deltas:
        return lg
    width = min(params.delta_width, len(lg) if len(lg) % 2 else len(lg) - 1)
    delta = librosa.feature.delta(lg.T, width=width, order=1).T if width >= 3 else np.zeros_like(lg)
    return np.concatenate([lg, delta.astype(np.float32)], axis=1)


def frame_targets(events: Sequence[Event], classes: Sequence[str], n: int, hop_seconds: float) -> np.ndarray:
    """Binary ``(n, K)`` activity on the frame grid, rasterized exactly as sed_eval does.

    sed_eval (``event_list_to_event_roll``): ``floor(onset * 1 / res)`` and
    ``ceil(offset * 1 / res)`` in floating point; the same expressions are used here.
    """
    index = {c: k for k, c in enumerate(classes)}
    roll = np.zeros((n, len(classes)), dtype=np.float32)
    for ev in events:
        on = int(math.floor(ev.onset * 1 / float(hop_seconds)))
        off = int(math.ceil(ev.offset * 1 / float(hop_seconds)))
        roll[on:off, index[ev.label]] = 1.0
    return roll


def clip_targets(tags: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Weak labels: a ``(K,)`` multi-hot vector."""
    v = np.zeros(len(classes), dtype=np.float32)
    for t in tags:
        v[list(classes).index(t)] = 1.0
    return v


class FeatureCache:
    """Features on disk keyed by audio *content* and feature parameters.

    ``DIR/ab/<key>.npy`` where key = sha1(audio sha1, sample rate, parameters, version).
    The content hash of a file is memoized under ``DIR/files/`` by (path, size, mtime),
    so a warm hit reads no audio. Writes are atomic (temp file + rename): several
    processes (sweep workers) share one cache safely. Each entry carries a CRC-32 of its bytes;
    a truncated or altered entry is detected on reading and recomputed, never used.
    """

    def __init__(self, directory: str | Path | None = None):
        self.dir = Path(directory) if directory is not None else default_cache_dir()
        self.hits = self.misses = 0

    def content_hash(self, path: Path) -> str:
        st = path.stat()
        stat_key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        memo = self.dir / "files" / stat_key[:2] / stat_key
        if memo.is_file():
            return memo.read_text().strip()
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _atomic_write_bytes(memo, digest.encode())
        return digest

    def key(self, path: Path, sample_rate: int, params: FeatureParams, pitch_shift: float = 0,
            time_stretch: float = 1.0) -> str:
        spec = {"audio": self.content_hash(path), "sr": sample_rate, "v": CACHE_VERSION, **asdict(params)}
        if pitch_shift:
            spec["pitch_shift_quarter_tones"] = pitch_shift
        if time_stretch != 1.0:
            spec["time_stretch"] = time_stretch
        spec = json.dumps(spec, sort_keys=True)
        return hashlib.sha1(spec.encode()).hexdigest()

    def get(self, path: str | Path, sample_rate: int, params: FeatureParams = FeatureParams(),
            pitch_shift: float = 0, time_stretch: float = 1.0) -> np.ndarray:
        """Features of ``path`` at ``sample_rate``, computed and stored on a miss.

        ``pitch_shift``: the audio is first pitch-shifted by that many quarter tones (librosa's
        phase-vocoder pitch shift, 24 bins per octave), as in the paper's robustness test (Fig. 5).
        ``time_stretch``: and played that many times faster (``librosa.effects.time_stretch``), for
        augmentation (ACRNN).
        """
        from sedbench.data.audio import load_audio

        path = Path(path)
        target = self.path_for(self.key(path, sample_rate, params, pitch_shift, time_stretch))
        if target.is_file():
            feats = read_entry(target)
            if feats is not None:
                self.hits += 1
                return feats
            from sedbench.errors import log

            log.warning("%s: damaged feature-cache entry (checksum or format); recomputing it from %s", target, path)
            target.unlink(missing_ok=True)
        self.misses += 1
        y, sr = load_audio(path, sample_rate)
        if pitch_shift:
            import librosa

            y = librosa.effects.pitch_shift(y, sr=sr, n_steps=pitch_shift, bins_per_octave=24).astype(np.float32)
        if time_stretch != 1.0:
            import librosa

            y = librosa.effects.time_stretch(y, rate=time_stretch).astype(np.float32)
        feats = extract(y, sr, params)
        write_entry(target, feats)
        return feats

    def path_for(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"


def default_cache_dir() -> Path:
    env = os.environ.get("SEDBENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sedbench" / "features"


ENTRY_MAGIC = b"SEDBCRC1"  # cache entry = .npy bytes + magic + CRC-32 of those bytes (little endian)


def write_entry(path: Path, feats: np.ndarray) -> None:
    """A cache entry with its checksum, written atomically."""
    buf = io.BytesIO()
    np.save(buf, feats, allow_pickle=False)
    data = buf.getvalue()
    _atomic_write_bytes(path, data + ENTRY_MAGIC + zlib.crc32(data).to_bytes(4, "little"))


def read_entry(path: Path) -> np.ndarray | None:
    """The array of a cache entry, or None when the file is truncated, altered or not an entry at all:
    every byte is checked against the CRC-32 written with it, so a damaged entry is never trusted."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body, magic, crc = data[:-12], data[-12:-4], data[-4:]
    if len(data) < 12 or magic != ENTRY_MAGIC or zlib.crc32(body) != int.from_bytes(crc, "little"):
        return None
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class Normalizer:
    """Per-band z-normalization; statistics from the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def identity(cls, n: int) -> Normalizer:
        return cls(np.zeros(n, np.float32), np.ones(n, np.float32))

    @classmethod
    def fit(cls, features: Sequence[np.ndarray]) -> Normalizer:
        total = sum(len(f) for f in features)
        if total == 0:
            raise ValueError("cannot fit normalization on an empty training split")
        s = sum(f.astype(np.float64).sum(axis=0) for f in features)
        ss = sum((f.astype(np.float64) ** 2).sum(axis=0) for f in features)
        mean = s / total
        std = np.sqrt(np.maximum(ss / total - mean**2, 0.0))
        return cls(mean.astype(np.float32), np.where(std < 1e-6, 1.0, std).astype(np.float32))

    def __call__(self, f: np.ndarray) -> np.ndarray:
        return ((f - self.mean) / self.std).astype(np.float32)


def params_from_config(cfg) -> tuple[FeatureParams, str | None]:
    """``FeatureParams`` and the cache folder from a ``features`` config mapping (Hydra or dict)."""
    d = dict(cfg)
    cache_dir = d.pop("cache_dir", None)
    known = FeatureParams.__dataclass_fields__
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"unknown features option(s) {unknown}; known: {sorted(known)}")
    return FeatureParams(**d), cache_dir
