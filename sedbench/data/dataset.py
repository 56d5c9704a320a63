"""The in-memory dataset form and the on-disk ``folder`` layout.

Every reader (``folder``, TUT-SED Synthetic 2016, TUT-SED 2016, CHiME-Home, URBAN-SED,
DESED, ESC) returns a :class:`Dataset`: classes, sample rate and, per split, a list of
:class:`Recording` with strong events (onset, offset, label) or weak tags.

The ``folder`` layout::

    DIR/dataset.yaml                      name, classes, sample_rate [, weak]
    DIR/audio/{train,validation,test}/*.wav
    DIR/metadata/{train,validation,test}.tsv   filename onset offset event_label (DCASE)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sedbench.data.annotations import (
    Event,
    clip_events,
    merge_overlaps,
    read_event_table,
    read_rows,
    read_text,
    write_event_table,
)
from sedbench.data.audio import AUDIO_EXTENSIONS, audio_info
from sedbench.errors import DataError

SPLITS = ("train", "validation", "test")

# ESC-10 / ESC-50 naming (Piczak 2015): class folders "001 - Dog bark", clips "<fold>-<freesound clip id>-<take>.ogg"
ESC_CLASS_DIR = re.compile(r"^(\d{3}) - (.+)$")
ESC_CLIP_NAME = re.compile(r"^(\d)-(\d+)-([A-Za-z])")


@dataclass
class Recording:
    """One audio file and its labels: strong ``events`` or weak ``tags`` (clip-level)."""

    audio: Path
    events: list[Event] = field(default_factory=list)
    tags: tuple[str, ...] | None = None
    duration: float | None = None

    @property
    def name(self) -> str:
        return self.audio.name


@dataclass
class Dataset:
    name: str
    classes: tuple[str, ...]
    sample_rate: int
    splits: dict[str, list[Recording]]
    root: Path | None = None
    weak: bool = False

    def recordings(self, split: str) -> list[Recording]:
        if split not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {split!r} (it has {sorted(self.splits)})")
        return self.splits[split]

    def sources(self, split: str) -> list[list[str]] | None:
        """Per recording of ``split``, the ids of the source instances mixed into it, from the dataset's
        ``metadata/sources.tsv`` (written by ``data generate synth`` and ``data mix``: one row per placed segment);
        None when the dataset has no such file. A recording the file does not list has none."""
        path = self.root / "metadata" / "sources.tsv" if self.root is not None else None
        if path is None or not path.is_file():
            return None
        import csv

        by_file: dict[str, list[str]] = {}
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row.get("split") == split and row.get("source"):
                    by_file.setdefault(row["filename"], []).append(row["source"])
        return [by_file.get(r.name, []) for r in self.recordings(split)]


def missing_dataset_error(root: Path, name: str = "") -> DataError:
    how = ("`sedbench data generate synth --out {r}`" if name in ("", "synth", "folder")
           else f"`sedbench data prepare {name} --root {{r}}`").format(r=root)
    return DataError(root, "dataset folder not found",
                     f"create it with {how}, or point data.root at an existing dataset folder")


def read_dataset_yaml(path: Path) -> dict:
    import yaml

    try:
        meta = yaml.safe_load(read_text(path, "dataset.yaml")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(path, f"invalid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax",
                        mark.line + 1 if mark else None) from None
    if not isinstance(meta, dict):
        raise DataError(path, "expected a mapping with name, classes, sample_rate", "see README: the folder layout")
    for key in ("classes", "sample_rate"):
        if key not in meta:
            raise DataError(path, f"missing key {key!r}", "add it: classes is a list of labels, sample_rate in Hz")
    classes = meta["classes"]
    if (not isinstance(classes, list) or not classes or len(set(map(str, classes))) != len(classes)
            or not all(isinstance(c, (str, int)) and str(c).strip() for c in classes)):
        raise DataError(path, "classes must be a non-empty list of distinct labels", "list each class once")
    sr = meta["sample_rate"]
    whole = (isinstance(sr, int) and not isinstance(sr, bool)) or (isinstance(sr, float) and sr.is_integer())
    if not whole or not 0 < sr <= 10**6:
        raise DataError(path, f"sample_rate {sr!r} is not a sample rate in Hz", "write a whole number, e.g. 44100")
    meta["sample_rate"] = int(sr)
    if not isinstance(meta.get("weak", False), bool):
        raise DataError(path, f"weak {meta['weak']!r} is not true or false", "write weak: true or weak: false")
    return meta


def read_folder(root: str | Path, *, check_audio: bool = True) -> Dataset:
    """Read a dataset in the ``folder`` layout (see module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise missing_dataset_error(root)
    yaml_path = root / "dataset.yaml"
    if not yaml_path.is_file():
        raise DataError(yaml_path, "not found: a folder dataset needs dataset.yaml",
                        "write name, classes and sample_rate into DIR/dataset.yaml (see README)")
    meta = read_dataset_yaml(yaml_path)
    classes = tuple(str(c) for c in meta["classes"])
    sr = int(meta["sample_rate"])
    weak = bool(meta.get("weak", False))
    splits = {}
    for split in SPLITS:
        audio_dir, tsv = root / "audio" / split, root / "metadata" / f"{split}.tsv"
        if not audio_dir.is_dir() and not tsv.is_file():
            continue
        if not tsv.is_file():
            raise DataError(tsv, f"annotations for split {split!r} not found",
                            f"write {tsv} with header 'filename onset offset event_label'")
        splits[split] = (read_weak_table(tsv, audio_dir, classes) if weak
                         else collect_recordings(tsv, audio_dir, classes, check_audio=check_audio))
    if not splits:
        raise DataError(root, "no split found (expected audio/{train,validation,test} and metadata/*.tsv)",
                        "lay the folder out as described in README: the folder layout")
    return Dataset(str(meta.get("name", root.name)), classes, sr, splits, root, weak)


def list_audio(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def collect_recordings(tsv: Path, audio_dir: Path, classes: Sequence[str], *, check_audio: bool = True,
                       rows: Iterable[tuple[int, str, Event | None]] | None = None) -> list[Recording]:
    """Join a DCASE event table with the audio files of a split folder.

    Files in the folder with no line in the table are recordings without events. A file
    named in the table but missing on disk is an error naming the table's line.
    """
    if rows is None:
        rows = read_event_table(tsv, classes)
    recs: dict[str, Recording] = {}
    for path in list_audio(audio_dir):
        rel = path.relative_to(audio_dir).as_posix()
        recs[rel] = Recording(path)
    for lineno, name, ev in rows:
        key = _resolve_name(name, audio_dir, recs)
        if key is None:
            raise DataError(tsv, f"audio file {name!r} not found in {audio_dir}",
                            "restore the file or remove its lines from the annotations", lineno)
        if ev is not None:
            recs[key].events.append(ev)
    return finalize_recordings(list(recs.values()), check_audio)


def finalize_recordings(recs: list[Recording], check_audio: bool = True) -> list[Recording]:
    """Read durations from headers, clip events past the end (with a note), merge overlaps."""
    for rec in recs:
        if check_audio:
            sr, frames, _ = audio_info(rec.audio)
            if frames == 0:
                raise DataError(rec.audio, "the audio file holds no samples", "re-export it or remove it")
            rec.duration = frames / sr
            rec.events = clip_events(rec.events, rec.duration, rec.audio)
        rec.events = merge_overlaps(rec.events)
    return sorted(recs, key=lambda r: str(r.audio))


def _resolve_name(name: str, audio_dir: Path, recs: dict[str, Recording]) -> str | None:
    name = name.replace("\\", "/")
    for cand in (name, name.split("/", 1)[-1] if "/" in name else name, Path(name).name):
        if cand in recs:
            return cand
    return None


def read_weak_table(tsv: Path, audio_dir: Path, classes: Sequence[str]) -> list[Recording]:
    """Weak labels: tsv ``filename event_labels`` with comma-separated labels (DESED weak format)."""
    recs = {p.relative_to(audio_dir).as_posix(): Recording(p, tags=()) for p in list_audio(audio_dir)}
    for i, (lineno, fields) in enumerate(read_rows(tsv, "\t")):
        if i == 0 and fields[0].strip() == "filename":
            continue
        key = _resolve_name(fields[0].strip(), audio_dir, recs)
        if key is None:
            raise DataError(tsv, f"audio file {fields[0]!r} not found in {audio_dir}",
                            "restore the file or remove its line", lineno)
        labels = tuple(t.strip() for t in (fields[1] if len(fields) > 1 else "").split(",") if t.strip())
        for t in labels:
            if t not in classes:
                raise DataError(tsv, f"unknown label {t!r}", f"use one of {sorted(classes)}", lineno)
        recs[key].tags = tuple(sorted(set(recs[key].tags or ()) | set(labels)))
    return finalize_recordings(list(recs.values()))


def write_folder_metadata(root: Path, name: str, classes: Sequence[str], sample_rate: int,
                          splits: dict[str, list[tuple[str, list[Event]]]], extra: dict | None = None) -> None:
    """Write ``dataset.yaml`` and ``metadata/{split}.tsv`` of a folder dataset (audio written by the caller)."""
    import yaml

    meta = {"name": name, "classes": list(classes), "sample_rate": int(sample_rate), **(extra or {})}
    (root / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    for split, files in splits.items():
        rows = []
        for fname, events in files:
            rows.extend((fname, ev) for ev in sorted(events)) if events else rows.append((fname, None))
        write_event_table(root / "metadata" / f"{split}.tsv", rows)
