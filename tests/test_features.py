import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from helpers import write_wav

from sedbench.data.annotations import Event
from sedbench.data.features import (
    FeatureCache,
    FeatureParams,
    Normalizer,
    extract,
    frame_targets,
    n_frames,
)


@pytest.mark.parametrize("kind", ["logmel", "stft", "mfcc", "gammatone"])
def test_spectra_in_blocks_of_frames_are_the_whole_files_values(monkeypatch, kind):
    """extract() computes a long file's spectra a block of frames at a time (its memory): each frame's FFT is its
    own, so blocks of 7 frames give the values one block of the whole file gives, bit for bit."""
    from sedbench.data import features

    y = np.random.default_rng(0).standard_normal(44100 * 2).astype(np.float32)
    monkeypatch.setattr(features, "POWER_BLOCK", 10**9)
    whole = extract(y, 44100, FeatureParams(kind=kind))
    monkeypatch.setattr(features, "POWER_BLOCK", 7)
    assert np.array_equal(extract(y, 44100, FeatureParams(kind=kind)), whole)


def test_logmel_shape_and_alignment():
    sr = 44100
    y = np.zeros(3 * sr, np.float32)
    y[sr:2 * sr] = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)  # a tone on [1.0, 2.0) s
    f = extract(y, sr)
    assert f.shape == (150, 40) and f.dtype == np.float32  # ceil(3 s / 20 ms) frames of 40 bands
    loud = np.flatnonzero(f.max(axis=1) > f.max() - 20)
    # frame i describes [i*20ms, (i+1)*20ms): the tone occupies frames 50..99, the window leaks <= 1 frame
    assert loud.min() in (49, 50) and loud.max() in (99, 100)


def test_variants_dimensions():
    y = np.random.default_rng(0).standard_normal(44100).astype(np.float32)
    assert extract(y, 44100, FeatureParams(kind="stft")).shape == (50, 1764 // 2 + 1)
    assert extract(y, 44100, FeatureParams(kind="mfcc")).shape == (50, 59)  # DCASE2016 GMM baseline
    assert FeatureParams(kind="mfcc").n_features(44100) == 59 and FeatureParams().n_features(16000) == 40
    gammatone = FeatureParams(kind="gammatone", n_mels=128, frame_seconds=0.023, hop_seconds=0.0115, fmin=50.0)
    assert extract(y, 44100, gammatone).shape == (87, 256) == (87, gammatone.n_features(44100))  # bands + deltas
    assert extract(y, 44100, FeatureParams(kind="waveform")).shape == (50, 882)
    with pytest.raises(ValueError, match="logmel, stft, mfcc, gammatone or waveform"):
        FeatureParams(kind="cqt")


@pytest.mark.parametrize("seed", range(5))
def test_frame_targets_equal_sed_eval_rasterization(seed):
    from sed_eval.util.event_roll import event_list_to_event_roll

    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    events = []
    for _ in range(40):
        if rng.random() < 0.5:  # on the 20 ms grid: where floating point bites (29*0.02/0.02 = 28.999...)
            on = int(rng.integers(0, 400)) * 0.02
            off = on + int(rng.integers(1, 100)) * 0.02
        else:
            on = rng.uniform(0, 8)
            off = on + rng.uniform(0.01, 2)
        events.append(Event(on, off, str(rng.choice(labels))))
    ref = event_list_to_event_roll([{"onset": e.onset, "offset": e.offset, "event_label": e.label} for e in events],
                                   labels, 0.02)
    ours = frame_targets(events, labels, len(ref), 0.02)
    assert np.array_equal(ours, ref)


def test_a_zero_length_event_marks_the_frame_that_contains_it():
    """Targets round a zero-length event as the scores do (sed_eval): floor(onset / hop) to ceil(offset / hop)."""
    from sed_eval.util.event_roll import event_list_to_event_roll

    events = [Event(0.5, 0.5, "a"),  # 0.5 / 0.02 = 25.0: on a frame boundary, marks no frame
              Event(1.234567, 1.234567, "a"),  # inside frame 61 ([1.22, 1.24) s)
              Event(0.1, 0.3, "b"), Event(0.2, 0.2, "b"),  # inside an event of its class: no change
              Event(2.0 + 1e-6, 2.0 + 1e-6, "b")]  # just past a boundary: the frame that starts there, 100
    targets = frame_targets(events, ["a", "b"], 110, 0.02)
    assert np.flatnonzero(targets[:, 0]).tolist() == [61]
    assert np.flatnonzero(targets[:, 1]).tolist() == [*range(5, 15), 100]
    ref = event_list_to_event_roll([{"onset": e.onset, "offset": e.offset, "event_label": e.label} for e in events],
                                   ["a", "b"], 0.02)
    assert np.array_equal(targets[: len(ref)], ref) and not targets[len(ref):].any()


def test_cache_cold_warm_param_change_and_audio_change(tmp_path):
    wav = write_wav(tmp_path / "a.wav", seconds=2.0, sr=16000)
    cache = FeatureCache(tmp_path / "cache")
    cold = cache.get(wav, 16000)
    assert (cache.hits, cache.misses) == (0, 1)
    warm = cache.get(wav, 16000)
    assert (cache.hits, cache.misses) == (1, 1) and np.array_equal(cold, warm)
    cache.get(wav, 16000, FeatureParams(n_mels=20))  # changed parameter: recomputed
    cache.get(wav, 8000)                             # changed sample rate: recomputed
    assert cache.misses == 3
    write_wav(wav, seconds=2.0, sr=16000, freq=880.0)  # changed audio content: recomputed
    changed = cache.get(wav, 16000)
    assert cache.misses == 4 and not np.array_equal(changed, cold)


def test_cache_survives_processes_and_repairs_damage(tmp_path):
    wav = write_wav(tmp_path / "a.wav", seconds=1.0, sr=16000)
    cache = FeatureCache(tmp_path / "cache")
    cache.get(wav, 16000)
    code = (f"from sedbench.data.features import FeatureCache; c = FeatureCache({str(tmp_path / 'cache')!r}); "
            f"c.get({str(wav)!r}, 16000); print(c.hits, c.misses)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "0"]
    entry = cache.path_for(cache.key(wav, 16000, FeatureParams()))
    entry.write_bytes(b"garbage")
    again = FeatureCache(tmp_path / "cache")
    assert again.get(wav, 16000).shape == (50, 40) and again.misses == 1


def _flip_middle_byte(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


@pytest.mark.parametrize("damage", {
    "one flipped bit in the data": _flip_middle_byte,
    "truncated": lambda d: d[: len(d) // 3],
    "empty": lambda d: b"",
    "a valid .npy without checksum": lambda d: d[:-12],
}.items(), ids=lambda x: x if isinstance(x, str) else "")
def test_a_damaged_cache_entry_is_detected_and_recomputed_not_trusted(tmp_path, damage, caplog):
    name, fn = damage
    wav = write_wav(tmp_path / "a.wav", seconds=1.0, sr=16000)
    cache = FeatureCache(tmp_path / "cache")
    fresh = cache.get(wav, 16000)
    entry = cache.path_for(cache.key(wav, 16000, FeatureParams()))
    entry.write_bytes(fn(entry.read_bytes()))
    again = FeatureCache(tmp_path / "cache")
    with caplog.at_level("WARNING"):
        feats = again.get(wav, 16000)
    assert again.misses == 1 and again.hits == 0, name
    np.testing.assert_array_equal(feats, fresh)
    assert "damaged feature-cache entry" in caplog.text and str(entry) in caplog.text
    third = FeatureCache(tmp_path / "cache")
    np.testing.assert_array_equal(third.get(wav, 16000), fresh)  # the repaired entry is used again
    assert third.hits == 1


def test_cache_reports_bad_audio_with_the_file(tmp_path):
    from sedbench.errors import DataError

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFFxxxxWAVEjunk" * 4)
    with pytest.raises(DataError, match="bad.wav: cannot decode audio"):
        FeatureCache(tmp_path / "cache").get(bad, 16000)


def test_normalizer_uses_given_statistics():
    rng = np.random.default_rng(0)
    train = [rng.normal(3, 2, (100, 4)), rng.normal(3, 2, (50, 4))]
    norm = Normalizer.fit(train)
    z = norm(np.concatenate(train))
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-4)
    constant = Normalizer.fit([np.ones((10, 2))])
    assert np.all(np.isfinite(constant(np.ones((3, 2)))))


def test_n_frames_matches_extract():
    for n in (1, 319, 320, 321, 16000):
        assert extract(np.zeros(n, np.float32), 16000).shape[0] == n_frames(n, 16000, FeatureParams())


def test_ogg_audio_features(tmp_path):
    p = tmp_path / "x.ogg"
    sf.write(str(p), 0.1 * np.ones(16000), 16000, format="OGG", subtype="VORBIS")
    assert FeatureCache(tmp_path / "c").get(p, 16000).shape == (50, 40)
