"""Sound event annotations: the in-memory event form and the DCASE tab-separated format.

The DCASE convention (also used by DESED and the ``folder`` layout) is a tsv file with
header ``filename onset offset event_label``, one event per line, times in seconds.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sedbench.errors import DataError, note

TSV_HEADER = ("filename", "onset", "offset", "event_label")


@dataclass(frozen=True, order=True)
class Event:
    """One annotated sound event: ``label`` active on ``[onset, offset)`` seconds."""

    onset: float
    offset: float
    label: str

    @property
    def duration(self) -> float:
        return self.offset - self.onset


def parse_time(text: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(path, f"{what} {text!r} is not a number", "write times in seconds, e.g. 1.25", line) from None
    if not math.isfinite(value) or value < 0:
        raise DataError(path, f"{what} {text!r} must be a finite time >= 0 s", "write times in seconds, e.g. 1.25",
                        line)
    return value


def make_event(onset: str, offset: str, label: str, path: Path, line: int,
               classes: Sequence[str] | None) -> Event:
    """Validate one annotation line's fields into an :class:`Event`."""
    on = parse_time(onset, path, line, "onset")
    off = parse_time(offset, path, line, "offset")
    if on >= off:
        raise DataError(path, f"onset {on} s is not before offset {off} s",
                        "swap the two columns or remove the zero-length event", line)
    label = label.strip()
    if not label:
        raise DataError(path, "empty event label", "write the class name in the last column", line)
    if classes is not None and label not in classes:
        raise DataError(path, f"unknown label {label!r}",
                        f"use one of {sorted(classes)} or add it to the dataset's classes", line)
    return Event(on, off, label)


def read_event_table(path: str | Path, classes: Sequence[str] | None = None,
                     header: bool | None = None, sep: str | None = None) -> list[tuple[int, str, Event | None]]:
    """Read a DCASE-style event table: ``filename onset offset event_label`` per line.

    Returns ``(line, filename, event)`` triples; a line with a filename and empty event
    fields (a file without events, as DCASE lists them) gives ``event=None``.
    ``header=None`` accepts the file with or without the DCASE header.
    """
    path = Path(path)
    rows = read_rows(path, sep)
    out: list[tuple[int, str, Event | None]] = []
    for i, (lineno, fields) in enumerate(rows):
        if i == 0 and header is not False and [f.strip() for f in fields[:4]] == list(TSV_HEADER):
            continue
        if i == 0 and header is True:
            raise DataError(path, f"expected the header {' '.join(TSV_HEADER)!r}",
                            "add a first line with the column names, tab separated", lineno)
        fields = [f.strip() for f in fields]
        if len(fields) == 1 or (len(fields) >= 2 and not any(fields[1:])):
            out.append((lineno, fields[0], None))
            continue
        if len(fields) < 4:
            raise DataError(path, "expected 4 tab-separated fields (filename onset offset event_label), "
                                  f"got {len(fields)}",
                            "separate the columns with tabs", lineno)
        out.append((lineno, fields[0], make_event(fields[1], fields[2], fields[3], path, lineno, classes)))
    return out


def read_event_list(path: str | Path, classes: Sequence[str] | None = None) -> list[Event]:
    """Read a per-file annotation: ``onset offset event_label`` per line (TUT .ann/.txt, URBAN-SED).

    Extra leading columns (a file name or scene, as in some TUT files) are tolerated:
    the last three fields are read when a line has more than three.
    """
    path = Path(path)
    events = []
    for lineno, fields in read_rows(path, None):
        fields = [f.strip() for f in fields if f.strip() != ""]
        if len(fields) < 3:
            raise DataError(path, f"expected 'onset offset event_label', got {len(fields)} field(s)",
                            "write one event per line: onset<TAB>offset<TAB>label", lineno)
        if len(fields) > 3:
            fields = _last_event_fields(fields, path, lineno)
        events.append(make_event(fields[0], fields[1], fields[2], path, lineno, classes))
    return events


def _last_event_fields(fields: list[str], path: Path, lineno: int) -> list[str]:
    # TUT-SED 2016 train lists read 'file scene onset offset label'; find the two times.
    for i in range(len(fields) - 2):
        try:
            float(fields[i]), float(fields[i + 1])
        except ValueError:
            continue
        return [fields[i], fields[i + 1], " ".join(fields[i + 2:])]
    raise DataError(path, "no onset/offset pair found in the line", "write onset<TAB>offset<TAB>label", lineno)


def read_text(path: Path, what: str = "annotation file") -> str:
    """A metadata file's text (UTF-8, an optional BOM dropped), or a DataError naming it."""
    if not path.is_file():
        raise DataError(path, f"{what} not found", "check the path or re-create the dataset")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", "save the file as UTF-8") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the {what} ({exc.strerror or exc})", "check its permissions") from None
    if "\x00" in text:
        raise DataError(path, "binary data (NUL bytes) in a text file", "save the file as plain UTF-8 text")
    return text


def read_csv(path: Path, what: str = "annotation file") -> list[tuple[int, list[str]]]:
    """``(line, fields)`` of a comma-separated file (blank lines skipped)."""
    text = read_text(path, what)
    return [(n, row) for n, row in enumerate(csv.reader(text.splitlines()), 1) if row]


def read_rows(path: Path, sep: str | None) -> list[tuple[int, list[str]]]:
    text = read_text(path)
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if sep is None:
            fields = line.split("\t") if "\t" in line else line.split()
        else:
            fields = next(csv.reader([line], delimiter=sep))
        rows.append((lineno, fields))
    return rows


def write_event_table(path: str | Path, rows: Iterable[tuple[str, Event | None]]) -> None:
    """Write a DCASE tsv with header; ``(filename, None)`` lists a file with no events."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(TSV_HEADER)]
    for name, ev in rows:
        lines.append(f"{name}\t\t\t" if ev is None else f"{name}\t{ev.onset:.6f}\t{ev.offset:.6f}\t{ev.label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def clip_events(events: Sequence[Event], duration: float, source: str | Path) -> list[Event]:
    """Clip events to ``[0, duration]``; events that start after the end are dropped. Warns once."""
    out, clipped = [], 0
    for ev in events:
        if ev.offset <= duration:
            out.append(ev)
            continue
        clipped += 1
        if ev.onset < duration:
            out.append(Event(ev.onset, duration, ev.label))
    if clipped:
        note(f"{source}: {clipped} event(s) extend past the end of the audio ({duration:.3f} s); clipped")
    return out


def merge_overlaps(events: Sequence[Event]) -> list[Event]:
    """Merge overlapping or touching events of the same class (as sed_eval does per class)."""
    by_label: dict[str, list[Event]] = {}
    for ev in sorted(events):
        by_label.setdefault(ev.label, []).append(ev)
    out = []
    for label, evs in by_label.items():
        cur = evs[0]
        for ev in evs[1:]:
            if ev.onset <= cur.offset:
                cur = Event(cur.onset, max(cur.offset, ev.offset), label)
            else:
                out.append(cur)
                cur = ev
        out.append(cur)
    return sorted(out)
