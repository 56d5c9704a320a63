"""The ranges of a run's numeric and enumerated settings, checked before anything is loaded, created or recorded
(``sedbench.preflight``): a value out of range is one :class:`sedbench.errors.ConfigError` naming the option, the
range and a fix, instead of a traceback after seconds of data loading and a FAILED run left behind.

Each entry is ``config key: (check, what it must be, an example)``; a key the config lacks or that is null is not
checked (null means "not set" where a setting allows it). Model keys are checked only when the model's
architecture has them (``sedbench.models.families``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sedbench.errors import ConfigError


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(low: int, high: int | None = None) -> Callable:
    return lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= low and (high is None or x <= high)


def _positive(x) -> bool:
    return _number(x) and x > 0


def _factors(length: int | None = None, low: int = 1) -> Callable:
    """A list of whole numbers >= ``low`` (of ``length`` entries when given)."""
    def ok(x) -> bool:
        values = list(x) if isinstance(x, (list, tuple)) or hasattr(x, "__iter__") and not isinstance(x, str) else None
        return (values is not None and (length is None or len(values) == length)
                and all(_whole(low)(v) for v in values))
    return ok


def _one_of(*values) -> Callable:
    return lambda x: x in values


def _max_steps(x) -> bool:
    return _whole(1)(x) or x == -1


RANGES: dict[str, tuple[Callable, str, str]] = {
    "model.maps": (_whole(1), "a whole number of feature maps or units >= 1", "16"),
    "model.rnn_layers": (_whole(0), "a whole number of recurrent layers >= 0", "1"),
    "model.fnn_layers": (_whole(0), "a whole number of feedforward layers >= 0", "0"),
    "model.dropout": (lambda x: _number(x) and 0 <= x < 1, "a dropout rate in [0, 1)", "0.25"),
    "model.pool": (lambda x: _factors()(x) or _whole(1)(x),  # VGGish-RNN: one factor after every conv layer
                   "a list of frequency pooling factors (or one factor), whole numbers >= 1", "[5,4,2]"),
    "model.kernel": (_factors(2), "a [frequency, time] filter shape of whole numbers >= 1", "[5,5]"),
    "model.cell": (_one_of("gru", "lstm"), "gru or lstm", "gru"),
    "model.output_bias": (_one_of("zero", "prior"), "zero or prior", "zero"),
    "model.rnn_init": (_one_of("he", "keras"), "he or keras", "he"),
    "data.seq_len": (_whole(1), "a whole number of frames >= 1", "128"),
    "data.batch_size": (_whole(1), "a whole number of sequences >= 1", "8"),
    "data.batch_frames": (_whole(1), "a whole number of frames >= 1 (at least data.seq_len)", "1024"),
    "features.kind": (_one_of("logmel", "stft", "mfcc", "gammatone", "waveform"),
                      "logmel, stft, mfcc, gammatone or waveform", "logmel"),
    "features.n_mels": (_whole(1), "a whole number of bands >= 1", "40"),
    "features.n_mfcc": (_whole(1), "a whole number of coefficients >= 1", "20"),
    "features.delta_width": (lambda x: _whole(3)(x) and x % 2 == 1, "an odd whole number of frames >= 3", "9"),
    "features.frame_seconds": (_positive, "a frame length in seconds > 0", "0.04"),
    "features.hop_seconds": (_positive, "a hop in seconds > 0 (at most features.frame_seconds)", "0.02"),
    "features.fmin": (lambda x: _number(x) and x >= 0, "a frequency in Hz >= 0", "0.0"),
    "features.fmax": (_positive, "a frequency in Hz > features.fmin, or null (Nyquist)", "null"),
    "energy.cpu_watts_per_core": (_positive, "watts per busy CPU core > 0 (an estimate where RAPL is absent)", "10"),
    "trainer.max_epochs": (_whole(1), "a whole number of epochs >= 1 (0 would record an untrained model)", "6"),
    "trainer.max_steps": (_max_steps, "a whole number of optimizer steps >= 1, or null", "5000"),
    "trainer.patience": (_whole(1), "a whole number of epochs >= 1, or null", "10"),
    "trainer.warmup_epochs": (_whole(0), "a whole number of epochs >= 0", "0"),
    "trainer.lr": (_positive, "a learning rate > 0", "0.001"),
    "trainer.num_threads": (_whole(1), "a whole number of threads >= 1, or null", "1"),
    "trainer.log_every_n_steps": (_whole(1), "a whole number of steps >= 1", "10"),
    "trainer.limit_train_batches": (lambda x: (_number(x) and 0 < x <= 1) or _whole(1)(x),
                                    "a fraction in (0, 1] of the batches, a whole number of batches >= 1, or null",
                                    "0.25"),
}


def check_ranges(cfg, model_keys: tuple[str, ...] | None = None) -> None:
    """Every setting of :data:`RANGES` that ``cfg`` (a composed run config) has: in range, or one ConfigError.
    ``model_keys``: the settings the model's architecture takes (others are not checked)."""
    from omegaconf import OmegaConf

    for key, (ok, what, example) in RANGES.items():
        node, _, name = key.partition(".")
        if node == "model" and model_keys is not None and name not in model_keys:
            continue
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not ok(value):
            raise ConfigError(f"{key}={value!r}: must be {what}. Fix: e.g. {key}={example}")
    frame, hop = OmegaConf.select(cfg, "features.frame_seconds"), OmegaConf.select(cfg, "features.hop_seconds")
    if _positive(frame) and _positive(hop) and hop > frame:
        raise ConfigError(f"features.hop_seconds={hop} is longer than a frame (features.frame_seconds={frame}): "
                          f"samples would be skipped. Fix: features.hop_seconds={frame / 2:g} (50 % overlap) or less")
    fmin, fmax = OmegaConf.select(cfg, "features.fmin"), OmegaConf.select(cfg, "features.fmax")
    if _number(fmin) and _positive(fmax) and fmax <= fmin:
        raise ConfigError(f"features.fmax={fmax} is not above features.fmin={fmin}. Fix: features.fmax=null "
                          "(Nyquist), or a higher frequency")
    seq_len, frames = OmegaConf.select(cfg, "data.seq_len"), OmegaConf.select(cfg, "data.batch_frames")
    if isinstance(seq_len, int) and isinstance(frames, int) and frames < seq_len:
        raise ConfigError(f"data.batch_frames={frames} is fewer frames than one sequence (data.seq_len={seq_len}). "
                          f"Fix: data.batch_frames={seq_len} or more, or null")
