import logging

import pytest

from sedbench.data.annotations import (
    Event,
    clip_events,
    merge_overlaps,
    read_event_list,
    read_event_table,
    write_event_table,
)
from sedbench.errors import DataError

CLASSES = ["dog", "rain"]


def _tsv(tmp_path, body, header=True):
    p = tmp_path / "ann.tsv"
    p.write_text(("filename\tonset\toffset\tevent_label\n" if header else "") + body)
    return p


def test_roundtrip(tmp_path):
    rows = [("a.wav", Event(0.5, 1.25, "dog")), ("b.wav", None), ("a.wav", Event(2.0, 3.0, "rain"))]
    write_event_table(tmp_path / "x.tsv", rows)
    back = read_event_table(tmp_path / "x.tsv", CLASSES)
    assert [(n, e) for _, n, e in back] == rows
    assert [line for line, _, _ in back] == [2, 3, 4]


def test_malformed_line_names_file_and_line(tmp_path):
    p = _tsv(tmp_path, "a.wav\t0.1\t0.5\tdog\na.wav\t0.7\n")
    with pytest.raises(DataError) as e:
        read_event_table(p, CLASSES)
    assert e.value.line == 3 and f"{p}:3:" in str(e.value) and "Fix:" in str(e.value)


def test_offset_before_onset_names_file_line_and_fix(tmp_path):
    p = _tsv(tmp_path, "a.wav\t0.5\t1.0\tdog\na.wav\t1.5\t1.2\tdog\n")
    with pytest.raises(DataError, match=r"ann.tsv:3: offset 1.2 s is before onset 1.5 s") as e:
        read_event_table(p, CLASSES)
    assert e.value.line == 3 and "swap the two columns" in str(e.value)


def test_zero_length_events_are_read_and_counted_in_one_warning(tmp_path, caplog):
    p = _tsv(tmp_path, "a.wav\t1.5\t1.5\tdog\na.wav\t0.2\t0.9\train\nb.wav\t3.0\t3.0\tdog\n")
    with caplog.at_level(logging.WARNING):
        rows = read_event_table(p, CLASSES)
    assert [ev for _, _, ev in rows] == [Event(1.5, 1.5, "dog"), Event(0.2, 0.9, "rain"), Event(3.0, 3.0, "dog")]
    assert Event(1.5, 1.5, "dog").duration == 0
    warnings = [r.getMessage() for r in caplog.records if "zero-length" in r.getMessage()]
    assert len(warnings) == 1 and str(p) in warnings[0] and "2 zero-length event(s)" in warnings[0]
    assert "first on line 2" in warnings[0]


def test_unknown_label(tmp_path):
    p = _tsv(tmp_path, "a.wav\t0\t1\tdog\na.wav\t0\t1\tcat\n")
    with pytest.raises(DataError, match=r":3: unknown label 'cat'.*\['dog', 'rain'\]"):
        read_event_table(p, CLASSES)


def test_non_numeric_and_negative_times(tmp_path):
    with pytest.raises(DataError, match=r":2: onset 'abc' is not a number"):
        read_event_table(_tsv(tmp_path, "a.wav\tabc\t1\tdog\n"), CLASSES)
    with pytest.raises(DataError, match=r"must be a finite time"):
        read_event_table(_tsv(tmp_path, "a.wav\t-1\t1\tdog\n"), CLASSES)


def test_event_list_with_leading_columns(tmp_path):
    p = tmp_path / "a.ann"
    p.write_text("0.5\t1.0\tdog\naudio/home/a.wav\thome\t2.0\t3.5\tpeople walking\n")
    assert read_event_list(p) == [Event(0.5, 1.0, "dog"), Event(2.0, 3.5, "people walking")]


def test_clip_events_past_end_warns(caplog):
    with caplog.at_level(logging.WARNING):
        out = clip_events([Event(0, 1, "dog"), Event(9, 12, "dog"), Event(11, 13, "rain")], 10.0, "x.wav")
    assert out == [Event(0, 1, "dog"), Event(9, 10.0, "dog")]
    assert "x.wav: 2 event(s) extend past the end" in caplog.text


def test_merge_overlaps_per_class():
    evs = [Event(0, 1, "dog"), Event(0.5, 2, "dog"), Event(2, 3, "dog"), Event(0.2, 0.4, "rain")]
    assert merge_overlaps(evs) == [Event(0, 3, "dog"), Event(0.2, 0.4, "rain")]


def test_header_after_comment_lines(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("# made by hand\nfilename\tonset\toffset\tevent_label\na.wav\t0\t1\tdog\n")
    assert [(n, ln) for ln, n, _ in read_event_table(p, CLASSES)] == [("a.wav", 3)]
