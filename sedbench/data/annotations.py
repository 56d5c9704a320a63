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
    """One annotated sound event: ``label`` active on ``[onset, offset)`` seconds.

    ``onset == offset`` is a zero-length event, as published annotations have them (TUT Sound
    Events 2016): it is scored as sed_eval scores it, marking the segment (and training frame)
    whose ``[floor(onset / res), ceil(offset / res))`` range holds its instant; an instant exactly
    on a boundary marks none. Event-based metrics match it like any other event, with the
    minimum offset collar.
    """

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
    if on > off:
        raise DataError(path, f"offset {off} s is before onset {on} s", "swap the two columns", line)
    label = label.strip()
    if not label:
        raise DataError(path, "empty event label", "write the class name in the last column", line)
    if classes is not None and label not in classes:
        raise DataError(path, f"unknown label {label!r}",
                        f"use one of {sorted(classes)} or add it to the dataset's classes", line)
    return Event(on, off, label)


HEADER_NAMES = {  # a header's column names (lower case) -> the field they hold; other columns are ignored
    "filename": "filename", "file": "filename", "audio_filename": "filename", "audio_file": "filename",
    "onset": "onset", "event_onset": "onset", "start": "onset", "start_time": "onset",
    "offset": "offset", "event_offset": "offset", "end": "offset", "end_time": "offset",
    "event_label": "event_label", "label": "event_label", "event": "event_label", "class": "event_label",
    "scene_label": "scene_label",
}
DEFAULT_LABEL = "event"  # the class of events in a two-column (onset offset) list, which names none
ROW_FORMATS = ("onset offset", "onset offset event_label", "filename onset offset",
               "filename onset offset event_label", "filename scene_label onset offset [event_label]",
               "filename onset offset event_label identifier", "filename (a file without events)")
EventRow = tuple[int, "str | None", "Event | None"]


def read_events(path: str | Path, classes: Sequence[str] | None = None, sep: str | None = None,
                label: str = DEFAULT_LABEL) -> list[EventRow]:
    """Read an event list in any layout sed_eval (dcase_util) reads, plus DCASE/DESED tsv with a header.

    Returns ``(line, filename, event)`` triples. ``filename`` is None on lines of a per-file
    list (``onset offset [event_label]``, TUT-SED ``.ann``); ``event`` is None on a line that
    names a file without events. Lines are read one by one, as sed_eval does:

    * ``onset offset`` (events of one class, named ``label``), ``onset offset event_label``;
    * ``filename onset offset [event_label [identifier]]``;
    * ``filename scene_label onset offset [event_label [source]]`` (DCASE 2016);
    * ``filename`` alone, or with empty fields (a file without events);
    * any of these under a header line naming the columns (``filename onset offset
      event_label``, as DCASE and DESED tsv files have; columns are then read by name).

    The delimiter is a tab, a semicolon or a comma (the first found in the file, or ``sep``),
    otherwise runs of spaces. A line whose layout is ambiguous (a number where a file name or
    a label could be) is an error saying how to make it explicit.
    """
    path = Path(path)
    sep, rows = read_delimited(path, sep)
    out: list[EventRow] = []
    columns = _header_columns(rows[0][1]) if rows else None
    for lineno, fields in rows[1:] if columns else rows:
        fields = [f.strip() for f in fields]
        if columns:
            named = {key: fields[i] if i < len(fields) else "" for key, i in columns.items()}
            name = named.get("filename") or None
            if not named["onset"] and not named["offset"] and not named.get("event_label"):
                if name is None:
                    raise DataError(path, "a line with no onset, offset or file name",
                                    "remove the line or fill in its fields", lineno)
                out.append((lineno, name, None))
                continue
            out.append((lineno, name, make_event(named["onset"], named["offset"], named.get("event_label") or label,
                                                 path, lineno, classes)))
            continue
        out.append(_read_row(fields, path, lineno, classes, label, whitespace=sep is None))
    zero = [n for n, _, ev in out if ev is not None and ev.onset == ev.offset]
    if zero:
        note(f"{path}: {len(zero)} zero-length event(s) (onset = offset; first on line {zero[0]}), read and scored "
             "as sed_eval does: each marks the segment that contains its instant")
    return out


def _header_columns(fields: list[str]) -> dict[str, int] | None:
    names = [f.strip().lower() for f in fields]
    if any(_is_number(n) for n in names):
        return None
    columns: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in HEADER_NAMES and HEADER_NAMES[n] not in columns:
            columns[HEADER_NAMES[n]] = i
    return columns if "onset" in columns and "offset" in columns else None


def _is_number(text: str) -> bool:
    """A finite number: 'nan', 'inf' and 'Infinity' are names or labels here, never times."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _read_row(fields: list[str], path: Path, lineno: int, classes, label: str, whitespace: bool) -> EventRow:
    while fields and not fields[-1]:
        fields = fields[:-1]
    kinds = "".join("n" if _is_number(f) else ("e" if not f else "s") for f in fields)

    def event(on: int, name: str | None, lab: str) -> EventRow:
        return lineno, name, make_event(fields[on], fields[on + 1], lab, path, lineno, classes)

    if whitespace and len(kinds) > 3 and kinds.startswith("nns"):  # a label with spaces, e.g. 'people walking'
        return event(0, None, " ".join(fields[2:]))
    if kinds == "s" or (kinds.startswith("s") and not kinds[1:].strip("e")):
        return lineno, fields[0], None
    if kinds == "nn":
        return event(0, None, label)
    if kinds in ("nns", "snns", "snnss"):
        return event(kinds.index("n"), fields[0] if kinds[0] == "s" else None, fields[kinds.index("n") + 2])
    if kinds == "snn":
        return event(1, fields[0], label)
    if kinds in ("ssnn", "ssnns", "ssnnss") or (kinds.startswith("ssnns") and whitespace):
        return event(2, fields[0], " ".join(fields[4:]) if len(fields) > 4 else label)
    if whitespace and len(kinds) > 4 and kinds.startswith("snns"):
        return event(1, fields[0], " ".join(fields[3:]))
    if kinds in ("nnn", "nnns", "nnnn"):
        raise DataError(path, f"ambiguous line {fields!r}: the first column could be a time or a file name "
                              "(and the last a label or a time)",
                        "add a header line naming the columns (filename<TAB>onset<TAB>offset<TAB>event_label), "
                        "or write file names with their extension (e.g. 12.wav)", lineno)
    if "n" not in kinds:
        raise DataError(path, f"expected onset and offset times, got {fields!r}",
                        "write times in seconds, e.g. 1.25; a line naming only a file lists a file without events",
                        lineno)
    raise DataError(path, f"unrecognized line {fields!r} ({len(fields)} fields)",
                    f"write each line as one of: {'; '.join(ROW_FORMATS)}", lineno)


def read_event_table(path: str | Path, classes: Sequence[str] | None = None,
                     header: bool | None = None, sep: str | None = None) -> list[tuple[int, str, Event | None]]:
    """Read an event table with a file name on every line (DCASE/DESED ``filename onset offset event_label``).

    Any layout of :func:`read_events` that names the file is accepted; ``header=True`` requires
    the header line (DESED metadata). A line without a file name is an error.
    """
    path = Path(path)
    if header:
        rows = read_rows(path, sep)
        if rows and _header_columns(rows[0][1]) is None:
            raise DataError(path, f"expected the header {' '.join(TSV_HEADER)!r}",
                            "add a first line with the column names, tab separated", rows[0][0])
    out = []
    for lineno, name, ev in read_events(path, classes, sep):
        if name is None:
            raise DataError(path, "this line names no file (the table needs filename onset offset event_label)",
                            "add the file name as the first column, or score per-file lists as two folders", lineno)
        out.append((lineno, name, ev))
    return out


def read_event_list(path: str | Path, classes: Sequence[str] | None = None) -> list[Event]:
    """Read the events of one recording's list (TUT ``.ann``/``.txt``, URBAN-SED): any layout of
    :func:`read_events`; file names on its lines (some TUT lists have them) are ignored."""
    return [ev for _, _, ev in read_events(path, classes) if ev is not None]


def read_event_source(path: str | Path, classes: Sequence[str] | None = None,
                      label: str = DEFAULT_LABEL) -> tuple[dict[str, list[Event]], bool]:
    """Events by file from an event table, a per-file list, or a folder of per-file lists or tables.

    Returns ``(events by file, per_file)``; lines that name no file are filed under the list's
    base name (``a.ann`` -> ``a``), which is how two folders of per-file lists pair up.
    ``per_file`` is True when nothing in the source named a file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EVENT_LIST_SUFFIXES)
        if not files:
            raise DataError(path, f"no event lists ({', '.join(EVENT_LIST_SUFFIXES)}) in this folder",
                            "give a folder of per-file lists or an event table")
    else:
        files = [path]
    events: dict[str, list[Event]] = {}
    per_file = True
    for f in files:
        stem = f.relative_to(path).with_suffix("").as_posix() if path.is_dir() else f.stem
        for _, name, ev in read_events(f, classes, label=label):
            per_file &= name is None
            evs = events.setdefault(stem if name is None else name, [])
            if ev is not None:
                evs.append(ev)
        if path.is_dir():
            events.setdefault(stem, [])  # an empty list: a file without events
    return events, per_file


EVENT_LIST_SUFFIXES = (".txt", ".ann", ".tsv", ".csv")


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
    """``(line, fields)`` of a delimited text file, blank and ``#`` lines skipped (see :func:`read_delimited`)."""
    return read_delimited(path, sep)[1]


def read_delimited(path: Path, sep: str | None) -> tuple[str | None, list[tuple[int, list[str]]]]:
    """The delimiter and the ``(line, fields)`` of a delimited text file, blank and ``#`` lines skipped.

    ``sep=None`` takes the first of tab, semicolon and comma found in the file (fields may
    be quoted), otherwise runs of whitespace (returned as None).
    """
    text = read_text(path)
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if sep is None:
        sep = next((d for d in ("\t", ";", ",") if any(d in line for _, line in lines)), None)
    if sep is None:
        return None, [(n, line.split()) for n, line in lines]
    return sep, [(n, next(csv.reader([line], delimiter=sep))) for n, line in lines]


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
