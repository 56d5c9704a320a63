"""Reading and writing audio: mono float32 at the dataset's sample rate, with clear errors.

Multichannel audio is mixed down and a different sample rate is resampled (soxr), each
with a note; unreadable, empty or unsupported files raise :class:`DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sedbench.errors import DataError, note

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
MIN_RATE, MAX_RATE = 1000, 768000  # plausible sample rates (Hz); others come from damaged headers


def audio_info(path: str | Path) -> tuple[int, int, int]:
    """``(sample_rate, frames, channels)`` read from the header, without decoding."""
    import soundfile as sf

    path = _check_path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise _unreadable(path, exc) from None
    return int(info.samplerate), int(info.frames), int(info.channels)


def load_audio(path: str | Path, sample_rate: int | None = None, *, quiet: bool = False) -> tuple[np.ndarray, int]:
    """Load ``path`` as mono float32; resample to ``sample_rate`` when given and different."""
    import soundfile as sf

    path = _check_path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise _unreadable(path, exc) from None
    if data.shape[0] == 0:
        raise DataError(path, "the audio file holds no samples", "re-export the file or remove it from the dataset")
    if not MIN_RATE <= sr <= MAX_RATE:  # a damaged header: resampling from it would be meaningless (or huge)
        raise DataError(path, f"implausible sample rate {sr} Hz in the header (expected {MIN_RATE}..{MAX_RATE} Hz)",
                        "re-export the file; its header is damaged")
    if data.shape[1] > 1:
        if not quiet:
            note(f"{path}: {data.shape[1]} channels mixed down to mono", once=f"mono:{path.parent}")
        y = data.mean(axis=1)
    else:
        y = data[:, 0]
    if not np.all(np.isfinite(y)):
        raise DataError(path, "the audio contains NaN or infinite samples", "re-export the file")
    if sample_rate is not None and sr != sample_rate:
        import soxr

        if not quiet:
            note(f"{path}: sample rate {sr} Hz resampled to the dataset's {sample_rate} Hz",
                 once=f"sr:{path.parent}:{sr}")
        y = soxr.resample(y, sr, sample_rate).astype(np.float32, copy=False)
        if len(y) == 0:
            raise DataError(path, f"{len(data)} sample(s) at {sr} Hz leave nothing at {sample_rate} Hz",
                            "remove the file from the dataset (it is far too short)")
        sr = sample_rate
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def write_audio(path: str | Path, y: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM WAV (peak-limited to avoid wrap-around)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(y, -1.0, 1.0), sample_rate, subtype="PCM_16")


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "audio file not found", "check the file name in the annotations or restore the file")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise DataError(path, f"unsupported audio format {path.suffix or '(no extension)'!r}",
                        f"convert it to one of {', '.join(AUDIO_EXTENSIONS)}")
    if path.stat().st_size == 0:
        raise DataError(path, "the audio file is empty (0 bytes)", "re-export the file or remove it from the dataset")
    return path


def _unreadable(path: Path, exc: Exception) -> DataError:
    return DataError(path, f"cannot decode audio ({type(exc).__name__}: {exc})",
                     "check that the file is a valid, complete audio file (re-download or re-export it)")
