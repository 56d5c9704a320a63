"""Hostile input, property-based (hypothesis): random bytes, odd encodings, truncated or altered WAV headers,
huge, negative or non-numeric times. Every reader either reads the file or raises sedbench's own DataError
naming the file; nothing else (no UnicodeDecodeError, KeyError, ValueError, MemoryError, crash) comes out.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sedbench.data.annotations import read_event_list, read_event_table
from sedbench.data.audio import audio_info, load_audio
from sedbench.data.dataset import read_dataset_yaml, read_weak_table
from sedbench.data.layouts import _chime_tags, read_esc
from sedbench.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252", "shift_jis"]

times = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.integers(min_value=-10**30, max_value=10**30).map(str),
                  st.sampled_from(["", "-0", "1e999", "-1e999", "nan", "inf", "0x10", "1,5", "١٢", "1_000", " 2 "]),
                  st.text(max_size=8))
labels = st.one_of(st.sampled_from(["speech", "car", "dog bark", "", " ", "\x00", "é", "a\tb"]), st.text(max_size=12))
separators = st.sampled_from(["\t", " ", ",", ";", "\t\t", ""])


@st.composite
def event_lines(draw) -> str:
    """Lines that look like annotations: a file name, two times and a label, mostly."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        sep = draw(separators)
        fields = [draw(st.sampled_from(["a.wav", "audio/b.wav", "", "filename"])), draw(times), draw(times),
                  draw(labels)]
        lines.append(sep.join(fields[draw(st.integers(0, 1)):draw(st.integers(1, 5))]))
    if draw(st.booleans()):
        lines.insert(0, "filename\tonset\toffset\tevent_label")
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)


def contents(text_strategy):
    """Bytes of the file: random bytes, or the text in one of several encodings (lossy where it must)."""
    encoded = st.tuples(text_strategy, st.sampled_from(ENCODINGS)).map(
        lambda te: te[0].encode(te[1], errors="replace"))
    return st.one_of(st.binary(max_size=400), encoded)


def only_data_errors(fn, path: Path):
    try:
        fn(path)
    except DataError as exc:
        assert str(exc).startswith(str(exc.path)), exc  # the message names the file (and line)
        return exc
    return None


@FUZZ
@given(data=contents(event_lines()))
@example(data=b"a.wav\t1e308\t1e309\tspeech")
@example(data=b"a.wav\t-1\t2\tspeech")
@example(data=b"a.wav\t2.5\t2.5\tspeech")
@example(data=b"\xff\xfe\x00\x00garbage")
def test_event_table_reader(tmp_path, data):
    path = tmp_path / "meta.tsv"
    path.write_bytes(data)
    err = only_data_errors(lambda p: read_event_table(p, classes=["speech", "car"]), path)
    if err is None:  # what was read is sane: finite, ordered (zero-length allowed), non-negative times
        for _, _, ev in read_event_table(path, classes=["speech", "car"]):
            assert ev is None or (0 <= ev.onset <= ev.offset < float("inf"))  # onset = offset: zero-length


@FUZZ
@given(data=contents(event_lines()))
def test_event_list_reader(tmp_path, data):
    path = tmp_path / "a.ann"
    path.write_bytes(data)
    if only_data_errors(read_event_list, path) is None:
        assert all(0 <= ev.onset <= ev.offset < float("inf") for ev in read_event_list(path))


@FUZZ
@given(data=contents(event_lines()))
def test_weak_label_reader(tmp_path, data):
    audio = tmp_path / "audio"
    if not audio.is_dir():
        audio.mkdir()
        sf.write(str(audio / "a.wav"), np.zeros(160, np.float32), 16000)
    path = tmp_path / "weak.tsv"
    path.write_bytes(data)
    only_data_errors(lambda p: read_weak_table(p, audio, ["speech", "car"]), path)


yaml_text = st.one_of(
    st.text(max_size=200),
    st.fixed_dictionaries({}, optional={"name": st.text(max_size=5), "classes": st.one_of(
        st.lists(st.text(max_size=5), max_size=4), st.text(max_size=5), st.integers()),
        "sample_rate": st.one_of(st.integers(-10**12, 10**12), st.text(max_size=6), st.floats()),
        "weak": st.one_of(st.booleans(), st.text(max_size=4))}).map(repr).map(
        lambda s: s.replace("{", "").replace("}", "").replace(", '", "\n'")))


@FUZZ
@given(data=contents(yaml_text))
@example(data=b"classes: [a, b]\nsample_rate: -16000\n")
@example(data=b"classes: [a, b]\nsample_rate: fast\n")
def test_dataset_yaml_reader(tmp_path, data):
    path = tmp_path / "dataset.yaml"
    path.write_bytes(data)
    if only_data_errors(read_dataset_yaml, path) is None:
        meta = read_dataset_yaml(path)
        assert isinstance(meta["sample_rate"], int) and meta["sample_rate"] > 0


chime_text = st.lists(st.sampled_from(["majorityvote,", "annotator1,", "segmentname,"]).flatmap(
    lambda k: st.text(max_size=8).map(lambda v: k + v)), max_size=5).map("\n".join)


@FUZZ
@given(data=contents(chime_text))
def test_chime_chunk_reader(tmp_path, data):
    path = tmp_path / "chunk.csv"
    path.write_bytes(data)
    only_data_errors(_chime_tags, path)


esc_header = "filename,fold,target,category,esc10,src_file,take"
esc_text = st.lists(st.lists(st.one_of(st.sampled_from(["1-100-A.ogg", "1", "True", "dog", "x"]), st.text(max_size=6)),
                             max_size=8).map(",".join), max_size=5).map(lambda rows: "\n".join([esc_header, *rows]))


@FUZZ
@given(data=contents(esc_text))
def test_esc50_meta_reader(tmp_path, data):
    meta = tmp_path / "esc50" / "meta" / "esc50.csv"
    meta.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "esc50" / "audio").mkdir(exist_ok=True)
    meta.write_bytes(data)
    only_data_errors(lambda p: read_esc(p, variant="esc50"), tmp_path / "esc50")


# --------------------------------------------------------------------------- audio
def wav_bytes(subtype: str = "PCM_16", channels: int = 1, frames: int = 400, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    y = 0.1 * np.random.default_rng(0).standard_normal((frames, channels)).astype(np.float32)
    sf.write(buf, y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


VALID = {s: wav_bytes(s) for s in ("PCM_16", "PCM_24", "FLOAT", "DOUBLE", "ULAW")}


@st.composite
def damaged_wavs(draw) -> bytes:
    data = bytearray(VALID[draw(st.sampled_from(sorted(VALID)))])
    how = draw(st.sampled_from(["truncate", "mutate header", "huge sizes", "random"]))
    if how == "truncate":
        return bytes(data[:draw(st.integers(0, len(data)))])
    if how == "mutate header":
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, 59))] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "huge sizes":  # RIFF and data chunk sizes, channel count and sample rate set to extremes
        offset = draw(st.sampled_from([4, 22, 24, 28, 40, len(data) - 404]))
        width = 2 if offset == 22 else 4
        extremes = [b"\xff" * width, b"\x00" * width, b"\x7f" + b"\xff" * (width - 1)]
        data[offset:offset + width] = draw(st.sampled_from(extremes))
        return bytes(data)
    return draw(st.binary(max_size=600))


@FUZZ
@given(data=damaged_wavs(), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff"]),
       sample_rate=st.sampled_from([None, 8000, 16000, 44100]))
@example(data=b"RIFF\x24\x00\x00\x00WAVEfmt ", suffix=".wav", sample_rate=16000)
@example(data=b"", suffix=".wav", sample_rate=None)
def test_audio_loader(tmp_path, data, suffix, sample_rate):
    path = tmp_path / f"clip{suffix}"
    path.write_bytes(data)
    info_ok = only_data_errors(audio_info, path) is None
    if info_ok and only_data_errors(lambda p: load_audio(p, sample_rate), path) is None:
        y, sr = load_audio(path, sample_rate)
        assert y.dtype == np.float32 and y.ndim == 1 and len(y) > 0 and np.all(np.isfinite(y))
        assert sr == (sample_rate or audio_info(path)[0])


def test_nan_samples_in_a_float_wav_are_refused(tmp_path):
    path = tmp_path / "nan.wav"
    y = np.zeros(100, np.float32)
    y[50] = np.nan
    sf.write(str(path), y, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN or infinite samples"):
        load_audio(path)
