import logging

import numpy as np
import pytest
import soundfile as sf
from helpers import write_wav

from sedbench.data.audio import load_audio
from sedbench.errors import DataError


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="audio file not found"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.wav: the audio file is empty \(0 bytes\)"):
        load_audio(p)


def test_zero_samples(tmp_path):
    p = tmp_path / "nothing.wav"
    sf.write(str(p), np.zeros(0), 16000)
    with pytest.raises(DataError, match="holds no samples"):
        load_audio(p)


def test_unreadable_file(tmp_path):
    p = tmp_path / "broken.wav"
    p.write_bytes(b"RIFF not really a wave file at all" * 10)
    with pytest.raises(DataError) as e:
        load_audio(p)
    assert str(p) in str(e.value) and "cannot decode audio" in str(e.value) and "Fix:" in str(e.value)


def test_unsupported_format(tmp_path):
    p = tmp_path / "clip.m4a"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=r"clip.m4a: unsupported audio format '.m4a'.*convert it"):
        load_audio(p)


def test_resampled_with_a_note(tmp_path, caplog):
    p = write_wav(tmp_path / "sr" / "a.wav", seconds=1.0, sr=22050)
    with caplog.at_level(logging.WARNING):
        y, sr = load_audio(p, 16000)
    assert sr == 16000 and abs(len(y) - 16000) <= 1
    assert "sample rate 22050 Hz resampled to the dataset's 16000 Hz" in caplog.text


def test_multichannel_mixed_down_with_a_note(tmp_path, caplog):
    p = tmp_path / "st" / "stereo.wav"
    p.parent.mkdir()
    left = np.full(1000, 0.5)
    sf.write(str(p), np.stack([left, -0.5 * left], axis=1), 16000)
    with caplog.at_level(logging.WARNING):
        y, _ = load_audio(p)
    assert y.ndim == 1 and np.allclose(y, 0.125, atol=1e-4)
    assert "2 channels mixed down to mono" in caplog.text
