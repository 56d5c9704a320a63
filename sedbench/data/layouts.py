"""Readers for the published dataset layouts, all returning the in-memory :class:`Dataset`.

=====================  ======================================================  ===========
name                   layout read                                             labels
=====================  ======================================================  ===========
folder, synth,         ``dataset.yaml``, ``audio/<split>/``, ``metadata/<split>.tsv``  strong
esc10_mix
tut_sed_synth_2016     ``audio/*.wav``, ``meta/<stem>.txt``, ``evaluation_setup/``  strong
tut_sed_2016           ``audio/<scene>/``, ``meta/<scene>/*.ann``,              strong
                       ``evaluation_setup/<scene>_fold<k>_{train,evaluate}.txt``
chime_home             ``development_chunks_refined_crossval_dcase2016.csv``,  weak
                       ``chunks/<name>.csv`` (majority vote), ``<name>.16kHz.wav``
urban_sed              ``audio/<split>/``, ``annotations/<split>/<stem>.txt``   strong
desed                  DCASE tsv per subset (``metadata/...tsv``, ``audio/...``)  strong
esc10, esc50           ESC-10 class folders ``NNN - Name/<fold>-<id>-<take>.ogg``  weak
                       or ESC-50 ``meta/esc50.csv`` + ``audio/``
=====================  ======================================================  ===========

Fold-based sets (TUT-SED 2016, CHiME-Home, ESC) take ``fold=k``: test = fold k,
validation = the next fold, train = the rest (for TUT-SED 2016: validation = the
training files that fold k+1 evaluates).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sedbench.data.annotations import read_csv, read_event_list, read_event_table
from sedbench.data.dataset import (
    ESC_CLASS_DIR,
    ESC_CLIP_NAME,
    Dataset,
    Recording,
    collect_recordings,
    finalize_recordings,
    list_audio,
    missing_dataset_error,
    read_folder,
)
from sedbench.errors import DataError

URBAN_SED_CLASSES = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
                     "engine_idling", "gun_shot", "jackhammer", "siren", "street_music")
DESED_CLASSES = ("Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog", "Electric_shaver_toothbrush",
                 "Frying", "Running_water", "Speech", "Vacuum_cleaner")
CHIME_TAGS = {"c": "child speech", "m": "adult male speech", "f": "adult female speech",
              "v": "video game/tv", "p": "percussive sound", "b": "broadband noise", "o": "other"}
DESED_SUBSETS = {
    "train": ("audio/train/synthetic21_train/soundscapes", "metadata/train/synthetic21_train/soundscapes.tsv"),
    "validation": ("audio/validation/synthetic21_validation/soundscapes",
                   "metadata/validation/synthetic21_validation/soundscapes.tsv"),
    "test": ("audio/validation/validation", "metadata/validation/validation.tsv"),
}


def _find_root(root: Path, marker: str, name: str) -> Path:
    """``root`` itself or its single extracted subfolder, whichever holds ``marker``."""
    if not root.is_dir():
        raise missing_dataset_error(root, name)
    for cand in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if list(cand.glob(marker)):
            return cand
    raise DataError(root, f"not a {name} folder (no {marker} here or in a subfolder)",
                    f"point data.root at the extracted {name} dataset or run "
                    f"`sedbench data prepare {name} --root {root}`")


def cross_validation(fold: int, folds, present, path: Path | None) -> tuple[int, list[int]]:
    """``(validation fold, training folds)`` when ``fold`` is tested among ``folds`` (default: every fold
    ``present``): validation is the next fold of the list (cyclically), training the other listed folds;
    recordings of folds left out of the list are not used."""
    present = sorted(present)
    chosen = [int(f) for f in (folds if folds is not None else present)]
    missing = [f for f in chosen if f not in present]
    if missing:
        raise DataError(path, f"data.folds {chosen}: fold(s) {missing} not found (folds present: {present})",
                        "choose data.folds among them")
    if len(set(chosen)) != len(chosen) or len(chosen) < 3:
        raise DataError(path, f"data.folds {chosen}: need at least three distinct folds (test, validation, training)",
                        f"e.g. data.folds={present}")
    if fold not in chosen:
        raise DataError(path, f"data.fold={fold} is not one of data.folds {chosen}", "choose data.fold among them")
    val = chosen[(chosen.index(fold) + 1) % len(chosen)]
    return val, [f for f in chosen if f not in (fold, val)]


def _fold_splits(groups: dict[int, list[Recording]], fold: int, folds, path: Path) -> dict[str, list[Recording]]:
    val, train = cross_validation(fold, folds, groups, path)
    return {"train": [r for f in train for r in groups[f]], "validation": groups[val], "test": groups[fold]}


def read_tut_sed_synth_2016(root: str | Path) -> Dataset:
    root = _find_root(Path(root), "meta/*.txt", "tut_sed_synth_2016")
    setup = root / "evaluation_setup"
    audio = {p.stem: p for p in list_audio(root / "audio")}
    events = {p.stem: read_event_list(p) for p in sorted((root / "meta").glob("*.txt"))}
    classes = tuple(sorted({e.label for evs in events.values() for e in evs}))

    def listed(name: str) -> list[str]:
        path = setup / name
        if not path.is_file():
            raise DataError(path, "evaluation setup list not found",
                            "extract TUT-SED-synthetic-2016.meta.zip into the root")
        stems = []
        for line in path.read_text().splitlines():
            if line.strip():
                stem = Path(line.split("\t")[0].strip()).stem
                if stem not in audio:
                    raise DataError(path, f"audio file {line.split()[0]!r} not found", "extract all audio archives")
                stems.append(stem)
        return list(dict.fromkeys(stems))

    val = set(listed("validate.txt"))
    train = [s for s in listed("train+validate.txt") if s not in val] if (setup / "train+validate.txt").is_file() \
        else listed("train.txt")
    test = listed("test.txt")

    def recs(stems) -> list[Recording]:
        return finalize_recordings([Recording(audio[s], list(events.get(s, []))) for s in stems])

    return Dataset("tut_sed_synth_2016", classes, 44100,
                   {"train": recs(train), "validation": recs(sorted(val)), "test": recs(test)}, root)


def read_tut_sed_2016(root: str | Path, fold: int = 1, folds: list[int] | None = None) -> Dataset:
    root = _find_root(Path(root), "meta/*/*.ann", "tut_sed_2016")
    anns = {f"{p.parent.name}/{p.stem}": p for p in sorted((root / "meta").glob("*/*.ann"))}
    events = {k: read_event_list(p) for k, p in anns.items()}
    classes = tuple(sorted({e.label for evs in events.values() for e in evs}))
    scenes = sorted({k.split("/")[0] for k in anns})

    def fold_files(k: int, part: str) -> list[str]:
        keys = []
        for scene in scenes:
            path = root / "evaluation_setup" / f"{scene}_fold{k}_{part}.txt"
            if not path.is_file():
                raise DataError(path, "evaluation setup list not found",
                                "extract TUT-sound-events-2016-development.meta.zip")
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    rel = Path(line.split("\t")[0].strip())
                    key = f"{rel.parent.name}/{rel.stem}"
                    if not (root / "audio" / rel.parent.name / rel.name).is_file():
                        raise DataError(path, f"audio file {str(rel)!r} not found", "extract the audio archive", lineno)
                    keys.append(key)
        return list(dict.fromkeys(keys))

    present = sorted({int(p.stem.rsplit("_fold", 1)[1].split("_")[0])
                      for p in (root / "evaluation_setup").glob("*_fold*_evaluate.txt")})
    val, train_folds = cross_validation(fold, folds, present, root / "evaluation_setup")
    test = fold_files(fold, "evaluate")
    nxt = set(fold_files(val, "evaluate"))
    left_out = {k for f in present if f not in (fold, val, *train_folds) for k in fold_files(f, "evaluate")}
    train_all = [k for k in fold_files(fold, "train") if k not in left_out]

    def recs(keys) -> list[Recording]:
        return finalize_recordings([Recording(root / "audio" / f"{k}.wav", list(events.get(k, []))) for k in keys])

    return Dataset("tut_sed_2016", classes, 44100,
                   {"train": recs([k for k in train_all if k not in nxt]),
                    "validation": recs([k for k in train_all if k in nxt]), "test": recs(test)}, root)


def read_chime_home(root: str | Path, fold: int = 1, folds: list[int] | None = None,
                    sample_mode: str = "16kHz") -> Dataset:
    marker = "development_chunks_refined_crossval_dcase2016.csv"
    root = _find_root(Path(root), marker, "chime_home")
    groups: dict[int, list[Recording]] = {}
    index = root / marker
    for lineno, row in read_csv(index, "CHiME-Home index"):
        if len(row) < 3 or not row[2].strip().isdigit():
            raise DataError(index, "expected 'id,chunkname,fold'", "restore the file from the archive", lineno)
        chunk = row[1].strip()
        wav = root / "chunks" / f"{chunk}.{sample_mode}.wav"
        if not wav.is_file():
            raise DataError(index, f"audio file {wav.name!r} not found", "extract chime_home.tar.gz completely", lineno)
        tags = _chime_tags(root / "chunks" / f"{chunk}.csv")
        groups.setdefault(int(row[2]) + 1, []).append(Recording(wav, tags=tags))
    splits = _fold_splits(groups, fold, folds, index)
    sr = 16000 if sample_mode == "16kHz" else 48000
    return Dataset("chime_home", tuple(CHIME_TAGS.values()), sr,
                   {k: finalize_recordings(v) for k, v in splits.items()}, root, weak=True)


def _chime_tags(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise DataError(path, "chunk annotation not found", "extract chime_home.tar.gz completely")
    for lineno, row in read_csv(path, "chunk annotation"):
        if row[0].strip() == "majorityvote":
            codes = row[1].strip() if len(row) > 1 else ""
            bad = [c for c in codes if c not in CHIME_TAGS and c not in "SU"]
            if bad:
                raise DataError(path, f"unknown tag code(s) {bad}", f"use codes {''.join(CHIME_TAGS)}SU", lineno)
            return tuple(sorted({CHIME_TAGS[c] for c in codes if c in CHIME_TAGS}))
    raise DataError(path, "no 'majorityvote' row", "restore the chunk annotation from the archive")


def read_urban_sed(root: str | Path) -> Dataset:
    root = _find_root(Path(root), "annotations/*", "urban_sed")
    splits = {}
    for split, folder in (("train", "train"), ("validation", "validate"), ("test", "test")):
        recs = []
        for wav in list_audio(root / "audio" / folder):
            ann = root / "annotations" / folder / f"{wav.stem}.txt"
            recs.append(Recording(wav, read_event_list(ann, URBAN_SED_CLASSES) if ann.is_file() else []))
        splits[split] = finalize_recordings(recs)
    return Dataset("urban_sed", URBAN_SED_CLASSES, 44100, splits, root)


def read_desed(root: str | Path, subsets: dict | None = None, classes=DESED_CLASSES,
               sample_rate: int = 16000) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise missing_dataset_error(root, "desed")
    splits = {}
    for split, (audio_dir, tsv) in (subsets or DESED_SUBSETS).items():
        tsv_path = root / tsv
        if not tsv_path.is_file():
            raise DataError(tsv_path, f"DESED metadata for split {split!r} not found",
                            "set data.subsets to {split: [audio folder, tsv file]} under data.root, or download DESED")
        splits[split] = collect_recordings(tsv_path, root / audio_dir, classes,
                                           rows=read_event_table(tsv_path, classes, header=True))
    return Dataset("desed", tuple(classes), sample_rate, splits, root)


ESC50_COLUMNS = ("filename", "fold", "category", "src_file")


def read_esc(root: str | Path, fold: int = 1, folds: list[int] | None = None, variant: str = "esc10") -> Dataset:
    """ESC-10 (class folders, as in its repository) or ESC-50 (``meta/esc50.csv``), clip labels."""
    root = Path(root)
    if not root.is_dir():
        raise missing_dataset_error(root, variant)
    groups: dict[int, list[Recording]] = {}
    meta = root / "meta" / "esc50.csv"
    if meta.is_file():
        classes = set()
        rows = read_csv(meta, "ESC-50 metadata")
        header = [h.strip() for h in rows[0][1]] if rows else []
        missing = [c for c in ESC50_COLUMNS if c not in header]
        if missing:
            raise DataError(meta, f"the header lacks column(s) {missing}", "restore meta/esc50.csv from ESC-50", 1)
        for lineno, values in rows[1:]:
            row = dict(zip(header, (v.strip() for v in values), strict=False))
            if variant == "esc10" and row.get("esc10") != "True":
                continue
            if any(not row.get(c) for c in ESC50_COLUMNS) or not row["fold"].isdigit():
                raise DataError(meta, f"expected {len(header)} fields with a numeric fold, got {values}",
                                "restore meta/esc50.csv from ESC-50", lineno)
            wav = root / "audio" / row["filename"]
            if not wav.is_file():
                raise DataError(meta, f"audio file {row['filename']!r} not found", "extract ESC-50 completely", lineno)
            classes.add(row["category"])
            groups.setdefault(int(row["fold"]), []).append(Recording(wav, tags=(row["category"],)))
    else:
        class_dirs = [(d, ESC_CLASS_DIR.match(d.name)) for d in sorted(root.iterdir()) if d.is_dir()]
        class_dirs = [(d, m.group(2)) for d, m in class_dirs if m]
        if not class_dirs:
            raise DataError(root, "neither ESC-10 class folders ('001 - Dog bark') nor meta/esc50.csv found",
                            f"point data.root at the ESC folder or run `sedbench data prepare {variant} --root {root}`")
        classes = {c for _, c in class_dirs}
        for d, label in class_dirs:
            for clip in list_audio(d):
                m = ESC_CLIP_NAME.match(clip.name)
                if not m:
                    raise DataError(clip, "name does not follow '<fold>-<clip id>-<take>.ogg'",
                                    "keep the ESC file names: the fold comes from them")
                groups.setdefault(int(m.group(1)), []).append(Recording(clip, tags=(label,)))
    splits = _fold_splits(groups, fold, folds, root)
    return Dataset(variant, tuple(sorted(classes)), 44100,
                   {k: finalize_recordings(v) for k, v in splits.items()}, root, weak=True)


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str | None  # None: no published checksum; prepare prints the digest it got


@dataclass(frozen=True)
class Layout:
    reader: Callable[..., Dataset]
    archives: tuple[Archive, ...] = ()
    note: str = ""


_TUT_SYN = "http://www.cs.tut.fi/sgn/arg/taslp2017-crnn-sed/datasets/TUT-SED-synthetic-2016/TUT-SED-synthetic-2016"
_TUT16 = "https://zenodo.org/record/45759/files/TUT-sound-events-2016-development"
LAYOUTS: dict[str, Layout] = {
    "folder": Layout(read_folder),
    "synth": Layout(read_folder, note="generated: `sedbench data generate synth --out DIR`"),
    "esc10_mix": Layout(read_folder, note="generated: `sedbench data mix --events ESC10_DIR --out DIR`"),
    "tut_sed_synth_2016": Layout(read_tut_sed_synth_2016, (
        Archive(f"{_TUT_SYN}.meta.zip", "e2ae895bdf39f2a359a97bb0bcf76101"),
        Archive(f"{_TUT_SYN}.audio.1.zip", "ede8b9c6d1b0d1d64bfc5791404f58fb"),
        Archive(f"{_TUT_SYN}.audio.2.zip", "cde647a377a58fc74e3012139d65c447"),
        Archive(f"{_TUT_SYN}.audio.3.zip", "5fc2824dcce442f441f4c6a975881789"),
        Archive(f"{_TUT_SYN}.audio.4.zip", "4ba016d949171ccc8493d3d274009825"),
        Archive(f"{_TUT_SYN}.audio.5.zip", "6a44578dd7738bd4ba044d5d2b9a5448"))),
    "tut_sed_2016": Layout(read_tut_sed_2016, (
        Archive(f"{_TUT16}.doc.zip", "33fd26a895530aef607a07b08704eacd"),
        Archive(f"{_TUT16}.meta.zip", "7b29f0e2b82b3f264653cb4fa43da75d"),
        Archive(f"{_TUT16}.audio.zip", "a6006efaa85bb69d5064b00c6802a8f8"))),
    "chime_home": Layout(read_chime_home, (
        Archive("https://archive.org/download/chime-home/chime_home.tar.gz", "9ce9d584e229b465b3aa08db2d7fee67"),)),
    "urban_sed": Layout(read_urban_sed, (
        Archive("https://zenodo.org/record/1324404/files/URBAN-SED_v2.0.0.tar.gz", None),)),
    "desed": Layout(read_desed, note="DESED is assembled by its own scripts (github.com/turpaultn/DESED); "
                                     "point data.root at the result"),
    "esc10": Layout(read_esc, (Archive("https://github.com/karoldvl/ESC-10/archive/master.zip", None),)),
    "esc50": Layout(functools.partial(read_esc, variant="esc50"),
                    (Archive("https://github.com/karoldvl/ESC-50/archive/master.zip", None),)),
}


def data_home() -> Path:
    """Where named datasets live: ``$SEDBENCH_DATA`` or ``./data``."""
    return Path(os.environ.get("SEDBENCH_DATA", "data"))


def detect_layout(root: Path) -> str:
    """Guess the layout of a folder from the files that only that layout has."""
    probes = [("folder", "dataset.yaml"), ("esc50", "meta/esc50.csv"),
              ("chime_home", "development_chunks_refined_crossval_dcase2016.csv"),
              ("tut_sed_2016", "meta/*/*.ann"), ("tut_sed_synth_2016", "meta/*.txt"),
              ("urban_sed", "annotations/validate"), ("desed", "metadata/validation/*.tsv")]
    for cand in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        for name, pattern in probes:
            if list(cand.glob(pattern)):
                return name
        if any(ESC_CLASS_DIR.match(p.name) for p in cand.iterdir() if p.is_dir()):
            return "esc10"
    raise DataError(root, "unknown dataset layout",
                    f"pass the layout name (one of {', '.join(sorted(LAYOUTS))}) or convert it to the folder layout")


def load_dataset(name_or_dir: str | Path, root: str | Path | None = None, layout: str | None = None,
                 **options) -> Dataset:
    """Load a dataset by registered name (root defaults to ``data_home()/NAME``) or by folder; ``options`` go to
    the layout's reader (``fold``, ``folds``, ``subsets``, ...: see :func:`reader_options`)."""
    name = str(name_or_dir)
    if name in LAYOUTS and root is None and not Path(name).is_dir():
        root = data_home() / name
        layout = layout or name
    elif root is None:
        root = Path(name)
        if not root.is_dir():
            raise missing_dataset_error(root, name if name in LAYOUTS else "")
        layout = layout or detect_layout(root)
    else:
        layout = layout or (name if name in LAYOUTS else detect_layout(Path(root)))
    if layout not in LAYOUTS:
        raise DataError(None, f"unknown dataset layout {layout!r}", f"use one of {', '.join(sorted(LAYOUTS))}")
    unknown = sorted(set(options) - set(reader_options(layout)))
    if unknown:
        from sedbench.errors import ConfigError

        allowed = ", ".join(f"data.{k}" for k in reader_options(layout)) or "none"
        raise ConfigError(f"data.{unknown[0]} is not a setting of the {layout} layout (its options: {allowed}). "
                          "Fix: remove it" + (" (this dataset has fixed splits, no folds)" if "fold" in unknown[0]
                                              else ""))
    root = Path(root)
    if not root.is_dir():
        raise missing_dataset_error(root, layout)
    return LAYOUTS[layout].reader(root, **options)


def reader_options(layout: str) -> list[str]:
    """The options a layout's reader takes besides the root, from its signature (``fold``, ``folds``, ...)."""
    import inspect

    params = inspect.signature(LAYOUTS[layout].reader).parameters
    return [k for k, p in params.items() if k not in ("root", "check_audio", "variant")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


# keys of a data config that are not the reader's: where it is, how it is generated, how it is batched
LOADING_KEYS = ("name", "layout", "root", "generate", "seq_len", "batch_size", "batch_frames", "num_workers",
                "segment_overlap", "augment")


def dataset_from_config(data_cfg, strict: bool = True, generate: bool = True) -> Dataset:
    """The dataset a ``data`` config mapping (Hydra or dict) names: name (or ``layout``) and root select the
    reader, every other key but :data:`LOADING_KEYS` is one of its options (``fold``, ``folds``, ``subsets``),
    and a key the reader does not take is an error (``strict=False`` drops it: a config stored by an older
    sedbench).

    An embedded dataset (one whose config has a ``generate`` recipe: ``data=synth``) appears by itself: when
    its root is missing and lies in the data home (``$SEDBENCH_DATA`` or ``./data``), it is generated there
    from the recipe on first use (``generate=False``: never; it must exist). A root given elsewhere must exist;
    nothing is ever downloaded implicitly."""
    from omegaconf import OmegaConf

    d = OmegaConf.to_container(data_cfg, resolve=True) if OmegaConf.is_config(data_cfg) else dict(data_cfg)
    root = d.get("root")
    if generate and to_generate(d):
        from sedbench.data.synth import ensure_generated

        ensure_generated(root, dict(d["generate"]))
    options = {k: v for k, v in d.items() if k not in LOADING_KEYS and v is not None}
    layout = d.get("layout") or d["name"]
    if not strict and layout in LAYOUTS:
        options = {k: v for k, v in options.items() if k in reader_options(layout)}
    return load_dataset(d["name"], root=root, layout=d.get("layout"), **options)


def to_generate(data: dict) -> bool:
    """A resolved ``data`` config names an embedded dataset still to be generated on first use: it has a
    ``generate`` recipe and its root, in the data home, does not exist yet."""
    root = data.get("root")
    return bool(data.get("generate") and root and is_in_data_home(root) and not Path(root).exists())


def is_in_data_home(root: str | Path) -> bool:
    """``root`` is a folder directly inside the data home."""
    return Path(root).resolve().parent == data_home().resolve()
