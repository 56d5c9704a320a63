"""The TUT-SED Synthetic 2016 mixture recipe, shared by ``synth`` and ``data mix``.

Cakir et al. (2017, Sec. III-A): "Mixtures were created by randomly selecting event
instance and from it, randomly, a segment of length 3-15 seconds. Mixtures do not
contain any additional background noise." Different instances are used for the train,
validation and test partitions, and labels come from frame energy of the isolated
source ("frame energy based automatic annotation"), not from the nominal placement.

Here a mixture has ``tracks`` layers; each layer is a sequence of such segments with
random silent gaps, so several events overlap (polyphony). Each segment is labelled
from its own energy before mixing (:func:`detect_activity`), so a dog barking segment
yields bark bouts, a rain segment one long event.
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sedbench.data.annotations import Event, merge_overlaps
from sedbench.data.dataset import ESC_CLASS_DIR, ESC_CLIP_NAME, SPLITS, write_folder_metadata
from sedbench.errors import DataError


@dataclass(frozen=True)
class MixtureRecipe:
    mixture_seconds: float = 60.0
    tracks: int = 3                  # simultaneous layers of events
    min_segment: float = 3.0         # segment length drawn uniformly in [min, max] s
    max_segment: float = 15.0
    mean_gap: float = 1.5            # mean silence between events of one layer (exponential), s
    level_dbfs: float = -26.0        # RMS over an event's active frames before its random gain
    gain_db: tuple[float, float] = (-12.0, 0.0)   # random per-event gain: masking in polyphony
    threshold_db: float = -30.0      # activity: frames within this of the segment's loudest frame
    min_gap: float = 0.5             # activity gaps shorter than this are bridged, s
    hop: float = 0.02                # activity frame, s


class SourceBank(Protocol):
    """Where segments come from: procedurally synthesized instances or real isolated clips."""

    classes: tuple[str, ...]

    def instances(self, split: str) -> dict[str, list[str]]:
        """Instance ids per class available to ``split`` (disjoint across splits)."""

    def segment(self, split: str, label: str, instance: str, rng: np.random.Generator,
                seconds: float) -> tuple[np.ndarray, float]:
        """A segment of at most ``seconds`` from ``instance``; returns (audio, start in the source, s)."""


def detect_activity(y: np.ndarray, sr: int, threshold_db: float = -30.0, hop: float = 0.02,
                    min_gap: float = 0.5) -> list[tuple[float, float]]:
    """Energy-based activity of an isolated source: ``[(onset, offset)]`` in seconds.

    Frames of ``hop`` seconds are active when their energy is within ``threshold_db`` of
    the loudest frame (and above -100 dBFS); gaps shorter than ``min_gap`` are bridged.
    """
    h = max(1, int(round(hop * sr)))
    n = int(np.ceil(len(y) / h))
    if n == 0:
        return []
    padded = np.zeros(n * h, dtype=np.float64)
    padded[: len(y)] = y
    energy = (padded.reshape(n, h) ** 2).mean(axis=1)
    db = 10.0 * np.log10(energy + 1e-20)
    active = (db >= db.max() + threshold_db) & (db > -100.0)
    runs = _runs(active)
    max_gap = int(round(min_gap / hop))
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < max_gap:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    dur = len(y) / sr
    return [(s * h / sr, min(e * h / sr, dur)) for s, e in merged]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


@dataclass
class Placement:
    """One segment placed in a mixture (the sources manifest row)."""

    onset: float
    offset: float
    label: str
    instance: str
    source_start: float
    gain_db: float


def compose_mixture(bank: SourceBank, split: str, recipe: MixtureRecipe, seconds: float, sr: int,
                    rng: np.random.Generator, counts: dict[str, int] | None = None, index: int | None = None,
                    ) -> tuple[np.ndarray, list[Event], list[Placement]]:
    """One polyphonic mixture: audio, merged events (from segment energy) and the placements.

    ``counts`` (segments per class so far, updated in place) carries class balance
    across the mixtures of a split. ``index``: the mixture's number in its split, for a bank whose
    ``file_instances(split, index)`` gives each mixture instances of its own (the synth's validation and test).
    """
    per_file = getattr(bank, "file_instances", None)
    instances = per_file(split, index) if per_file is not None and index is not None else bank.instances(split)
    pool = {c: v for c, v in instances.items() if v}
    if not pool:
        raise DataError(None, f"no source instances for split {split!r}", "provide isolated events for every split")
    labels = sorted(pool)
    n = int(round(seconds * sr))
    mix = np.zeros(n, dtype=np.float32)
    events: list[Event] = []
    placed: list[Placement] = []
    counts = counts if counts is not None else {}
    for c in labels:
        counts.setdefault(c, 0)
    for _ in range(recipe.tracks):
        t = rng.uniform(0.0, 2.0 * recipe.mean_gap)
        while seconds - t >= 1.0:
            # near-uniform class use: sample among the least used classes so every class appears
            least = min(counts[c] for c in labels)
            label = str(rng.choice([c for c in labels if counts[c] <= least]))
            counts[label] += 1
            inst = str(rng.choice(pool[label]))
            want = min(rng.uniform(recipe.min_segment, recipe.max_segment), seconds - t)
            seg, src_start = bank.segment(split, label, inst, rng, want)
            acts = detect_activity(seg, sr, recipe.threshold_db, recipe.hop, recipe.min_gap)
            seg_dur = len(seg) / sr
            if acts:
                gain_db = float(rng.uniform(*recipe.gain_db))
                g = _level_gain(seg, sr, acts, recipe.level_dbfs + gain_db)
                i0 = int(round(t * sr))
                m = min(len(seg), n - i0)
                mix[i0:i0 + m] += g * seg[:m]
                end = (i0 + m) / sr
                events.extend(Event(round(t + a, 6), round(min(t + b, end), 6), label) for a, b in acts if t + a < end)
                placed.append(Placement(round(t, 6), round(min(t + seg_dur, end), 6), label, inst,
                                        round(src_start, 6), round(gain_db, 2)))
            t += seg_dur + rng.exponential(recipe.mean_gap)
    peak = float(np.abs(mix).max(initial=0.0))
    if peak > 0.98:
        mix *= 0.98 / peak  # one gain for the whole mixture: labels unaffected
    return mix, merge_overlaps(events), placed


def _level_gain(seg: np.ndarray, sr: int, acts: Sequence[tuple[float, float]], target_dbfs: float) -> float:
    idx = np.concatenate([np.arange(int(a * sr), min(int(b * sr), len(seg))) for a, b in acts])
    rms = float(np.sqrt(np.mean(seg[idx].astype(np.float64) ** 2))) if len(idx) else 0.0
    return 0.0 if rms <= 0 else float(10 ** (target_dbfs / 20) / rms)


def split_minutes(train: float, validation: float | None = None, test: float | None = None) -> dict[str, float]:
    """Minutes per split; validation and test default to a third of train each (60/20/20)."""
    val = train / 3 if validation is None else validation
    tst = train / 3 if test is None else test
    for name, v in (("train", train), ("validation", val), ("test", tst)):
        if v <= 0:
            raise DataError(None, f"--minutes-{name} must be > 0, got {v}", "pass a positive number of minutes")
    return {"train": train, "validation": val, "test": tst}


def write_mixture_dataset(out: str | Path, name: str, bank: SourceBank, recipe: MixtureRecipe,
                          minutes: dict[str, float], sr: int, seed: int, *, overwrite: bool = False,
                          extra: dict | None = None, extra_files: dict[str, str] | None = None,
                          progress: bool = True) -> Path:
    """Write a ``folder`` dataset of mixtures; atomic: a failure leaves ``out`` as it was.

    Besides ``metadata/{split}.tsv`` it writes ``metadata/sources.tsv``: for every placed
    segment its mixture, placement, class, source instance (or file), start in the
    source and gain, so that split disjointness can be checked.
    """
    from tqdm.auto import tqdm

    from sedbench.data.audio import write_audio

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "output path exists and is not a folder", "choose another --out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(out, "output folder exists and is not empty",
                        "choose another --out, or pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    plan = []
    for s_idx, split in enumerate(SPLITS):
        n_mix = max(1, int(round(minutes[split] * 60 / recipe.mixture_seconds)))
        plan += [(s_idx, split, i, minutes[split] * 60 / n_mix) for i in range(n_mix)]
    total = sum(p[3] for p in plan)
    files: dict[str, list[tuple[str, list[Event]]]] = {s: [] for s in SPLITS}
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    manifest = ["split\tfilename\tonset\toffset\tevent_label\tsource\tsource_start\tgain_db"]
    try:
        done = 0.0  # seconds written; the bar moves by whole seconds without losing the fractions
        # the bar on a terminal only (disable=None): in a log file or a pipe its redraws would be noise
        with tqdm(total=round(total), unit="s audio", desc=f"generating {name}",
                  disable=None if progress else True) as bar:
            for s_idx, split, i, secs in plan:
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, s_idx, i)))
                audio, events, placed = compose_mixture(bank, split, recipe, secs, sr, rng, counts[split], index=i)
                fname = f"{name}_{split}_{i:03d}.wav"
                write_audio(staging / "audio" / split / fname, audio, sr)
                files[split].append((fname, events))
                manifest += [f"{split}\t{fname}\t{p.onset:.6f}\t{p.offset:.6f}\t{p.label}\t{p.instance}\t"
                             f"{p.source_start:.6f}\t{p.gain_db:.2f}" for p in placed]
                bar.update(round(done + secs) - round(done))
                done += secs
        meta = {"generator": {"seed": seed, "recipe": asdict(recipe),
                              "minutes": {k: round(v, 3) for k, v in minutes.items()}}, **(extra or {})}
        write_folder_metadata(staging, name, bank.classes, sr, files, meta)
        (staging / "metadata" / "sources.tsv").write_text("\n".join(manifest) + "\n", encoding="utf-8")
        for fname, text in (extra_files or {}).items():
            (staging / fname).write_text(text, encoding="utf-8")
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, trash)
            os.replace(staging, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out




class EventFolderBank:
    """Isolated real events, one subfolder per class (e.g. ESC-10), as a source bank.

    Source files are split 60/20/20 with no source shared across splits: with ESC fold
    prefixes (``<fold>-<clip id>-<take>``) folds 1-3 train, 4 validates and 5 tests
    (ESC keeps clips of one original recording within one fold); otherwise files are
    grouped by name stem and assigned per class with ``seed``.
    """

    def __init__(self, events_dir: str | Path, seed: int = 0, sample_rate: int | None = None):
        from sedbench.data.audio import audio_info
        from sedbench.data.dataset import list_audio

        root = Path(events_dir)
        if not root.is_dir():
            raise DataError(root, "events folder not found",
                            "pass --events a folder with one subfolder of clips per class")
        class_dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and list_audio(d)]
        if not class_dirs:
            raise DataError(root, "no class subfolders with audio",
                            "put each class's isolated clips in its own subfolder")
        self.root = root
        self.files: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
        labels = []
        for d in class_dirs:
            m = ESC_CLASS_DIR.match(d.name)
            label = m.group(2) if m else d.name
            labels.append(label)
            clips = [p.relative_to(root).as_posix() for p in list_audio(d)]
            folds = [ESC_CLIP_NAME.match(Path(c).name) for c in clips]
            if all(folds):
                for c, m in zip(clips, folds, strict=True):
                    f = int(m.group(1))
                    split = "train" if f <= 3 else "validation" if f == 4 else "test"
                    self.files[split].setdefault(label, []).append(c)
            else:
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, len(labels))))
                order = rng.permutation(len(clips))
                n_val = max(1, round(0.2 * len(clips)))
                for rank, i in enumerate(order):
                    split = "validation" if rank < n_val else "test" if rank < 2 * n_val else "train"
                    self.files[split].setdefault(label, []).append(clips[i])
        self.classes = tuple(labels)
        self.sample_rate = sample_rate or audio_info(root / next(iter(self.files["train"].values()))[0])[0]
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def instances(self, split: str) -> dict[str, list[str]]:
        return self.files[split]

    def load(self, rel: str) -> np.ndarray:
        from sedbench.data.audio import load_audio

        if rel not in self._cache:
            self._cache[rel] = load_audio(self.root / rel, self.sample_rate)[0]
            if len(self._cache) > 256:
                self._cache.popitem(last=False)
        return self._cache[rel]

    def segment(self, split: str, label: str, instance: str, rng: np.random.Generator,
                seconds: float) -> tuple[np.ndarray, float]:
        y = self.load(instance)
        n = min(len(y), int(round(seconds * self.sample_rate)))
        start = int(rng.integers(0, len(y) - n + 1))
        return y[start:start + n], start / self.sample_rate


def mix_folder(events: str | Path, out: str | Path, name: str, *, seed: int = 0, minutes_train: float = 12.0,
               minutes_validation: float | None = None, minutes_test: float | None = None,
               mixture_seconds: float = 60.0, tracks: int = 3, overwrite: bool = False,
               progress: bool = True) -> Path:
    """``sedbench data mix``: the TUT-SED Synthetic recipe on a folder of isolated events (one subfolder per
    class, e.g. ESC-10); the events' README (their licence and attribution) is kept as SOURCE_README.md."""
    events = Path(events)
    bank = EventFolderBank(events, seed=seed)
    minutes = split_minutes(minutes_train, minutes_validation, minutes_test)
    readmes = sorted(events.glob("README*"))
    files = {"SOURCE_README.md": f"Source events: {events.resolve()}\n\n" + readmes[0].read_text(encoding="utf-8")} \
        if readmes else {}
    return write_mixture_dataset(out, name, bank, MixtureRecipe(mixture_seconds=mixture_seconds, tracks=tracks),
                                 minutes, bank.sample_rate, seed, overwrite=overwrite, progress=progress,
                                 extra_files=files, extra={"source_events": str(events.resolve())})
