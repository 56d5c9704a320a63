"""The LightningDataModule: dataset -> cached features -> normalized sequences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from sedbench.data.dataset import Dataset, Recording
from sedbench.data.features import (
    FeatureCache,
    FeatureParams,
    Normalizer,
    clip_targets,
    frame_targets,
)
from sedbench.data.sequences import (
    ClipSequences,
    EvalSequences,
    ShiftedStartSampler,
    TrainSequences,
)


@dataclass(frozen=True)
class Augment:
    """Extra training copies of each file, time-stretched and pitch-shifted by random amounts (ACRNN:
    rates in [0.8, 1.3], shifts in [-3.5, 3.5] semitones). Event times are scaled with the stretch."""

    copies: int = 0
    time_stretch: tuple[float, float] = (1.0, 1.0)
    pitch_shift: tuple[float, float] = (0.0, 0.0)   # semitones

    @classmethod
    def from_config(cls, cfg) -> Augment:
        d = dict(cfg or {})
        return cls(int(d.get("copies", 0)), tuple(d.get("time_stretch", (1.0, 1.0))),
                   tuple(d.get("pitch_shift", (0.0, 0.0))))

    def variants(self, seed: int, index: int) -> list[tuple[float, float]]:
        """``(rate, quarter tones)`` of each copy of file ``index``: the same for the same seed."""
        rng = np.random.default_rng([seed, index])
        return [(round(float(rng.uniform(*self.time_stretch)), 3), round(2 * float(rng.uniform(*self.pitch_shift)), 2))
                for _ in range(self.copies)]


def split_features(ds: Dataset, split: str, params: FeatureParams, cache: FeatureCache, progress: bool = True,
                   augment: Augment = Augment(), seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Features and targets (frame rolls, or clip tags for weak datasets) of one split; the training split
    gains ``augment.copies`` stretched and shifted copies of each file."""
    from tqdm.auto import tqdm

    feats, targets = [], []
    recs: Sequence[Recording] = ds.recordings(split)
    for i, rec in enumerate(tqdm(recs, desc=f"features {ds.name}/{split}", unit="file", disable=not progress,
                                 leave=False)):
        for rate, quarter_tones in [(1.0, 0.0), *(augment.variants(seed, i) if split == "train" else [])]:
            f = cache.get(rec.audio, ds.sample_rate, params, pitch_shift=quarter_tones, time_stretch=rate)
            feats.append(f)
            if ds.weak:
                targets.append(clip_targets(rec.tags or (), ds.classes))
            else:
                events = [replace(e, onset=e.onset / rate, offset=e.offset / rate) for e in rec.events]
                targets.append(frame_targets(events, ds.classes, len(f), params.hop_seconds))
    return feats, targets


def featurize(ds: Dataset, params: FeatureParams, cache_dir: str | Path | None = None) -> str:
    """Features of every split computed into (or found in) the cache; returns a one-line summary."""
    import time

    cache = FeatureCache(cache_dir)
    t0, secs = time.perf_counter(), 0.0
    for split in ds.splits:
        split_features(ds, split, params, cache)
        secs += sum(r.duration or 0.0 for r in ds.recordings(split))
    wall = time.perf_counter() - t0
    return (f"{ds.name}: {params.kind} features of {secs / 60:.1f} min of audio in {wall:.2f} s "
            f"({secs / max(wall, 1e-9):.0f}x real time; cache {cache.dir}: {cache.hits} hits, {cache.misses} computed)")


class SEDDataModule(pl.LightningDataModule):
    """Training sequences shift by 73 frames per epoch; validation/test cover each file once."""

    def __init__(self, dataset: Dataset, features: FeatureParams = FeatureParams(), seq_len: int = 256,
                 batch_size: int = 16, num_workers: int = 0, cache_dir: str | Path | None = None,
                 seed: int = 0, progress: bool = True, segment_overlap: float = 0.0, augment: Augment = Augment(),
                 pin_memory: bool = False):
        super().__init__()
        self.pin_memory = pin_memory
        self.segment_overlap, self.augment = segment_overlap, augment
        self.ds, self.params, self.seq_len = dataset, features, seq_len
        self.batch_size, self.num_workers, self.seed, self.progress = batch_size, num_workers, seed, progress
        self.cache = FeatureCache(cache_dir)
        self.normalizer: Normalizer | None = None
        self.sets: dict = {}

    @property
    def n_features(self) -> int:
        return self.params.n_features(self.ds.sample_rate)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.ds.classes

    def setup(self, stage: str | None = None) -> None:
        """Features of every split, normalized with the training split's statistics.

        Strong labels: one split at a time, the normalized features go to an unnamed file beside the
        feature cache and are read per sequence through short-lived memory maps (``FrameFile``), so the
        resident memory holds the targets (as uint8) but not the features: a paper-size set trains
        in well under 2 GB. Weak labels (clip datasets, small) stay in memory.
        """
        if self.sets:
            return
        if "train" not in self.ds.splits:
            raise ValueError(f"dataset {self.ds.name!r} has no training split")
        from sedbench.data.frames import FrameFile

        for split in ["train", *(s for s in self.ds.splits if s != "train")]:
            feats, targets = split_features(self.ds, split, self.params, self.cache, self.progress, self.augment,
                                            self.seed)
            if split == "train":  # raw audio (features=waveform) stays as it is: the network normalizes it
                self.normalizer = Normalizer.identity(self.n_features) if self.params.kind == "waveform" \
                    else Normalizer.fit(feats)
            if self.ds.weak:
                self.sets[split] = ClipSequences([self.normalizer(f) for f in feats], targets, self.seq_len,
                                                 self.segment_overlap)
                continue
            frames = FrameFile((self.normalizer(f) for f in feats), self.n_features, self.cache.dir / "frames")
            if split == "train":
                self.sets[split] = TrainSequences.on_disk(frames, np.concatenate(targets).astype(np.uint8),
                                                          self.seq_len)
            else:
                self.sets[split] = EvalSequences([frames.part(i, len(f)) for i, f in enumerate(feats)],
                                                 [t.astype(np.uint8) for t in targets], self.seq_len)
            del feats, targets

    def _loader(self, split: str, **kw) -> DataLoader:
        """Worker processes only read (each batch is a slice of memory-mapped frames), so a batch is the same with
        any ``num_workers``; the order is drawn in this process (the sampler)."""
        return DataLoader(self.sets[split], batch_size=self.batch_size, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0, **kw)

    def train_dataloader(self) -> DataLoader:
        ts = self.sets["train"]
        if isinstance(ts, TrainSequences):
            return self._loader("train", sampler=ShiftedStartSampler(len(ts), self.seq_len, True, self.seed))
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def batch_size(data_cfg) -> int:
    """Sequences per batch: ``data.batch_size``, or with ``data.batch_frames`` set, ``batch_frames / seq_len``, so
    that every sequence length trains on the same number of frames per optimizer step (a study of sequence length
    that keeps the updates comparable); ``batch_frames`` must be a multiple of ``seq_len``."""
    frames, seq_len = data_cfg.get("batch_frames"), int(data_cfg["seq_len"])
    if not frames:
        return int(data_cfg["batch_size"])
    if int(frames) % seq_len:
        from sedbench.errors import ConfigError

        raise ConfigError(f"data.batch_frames={frames} is not a multiple of data.seq_len={seq_len}. Fix: a "
                          f"multiple such as {max(1, int(frames) // seq_len) * seq_len}, or data.batch_frames=null")
    return int(frames) // seq_len


def build_datamodule(data_cfg, features_cfg, seed: int = 0, progress: bool = True,
                     loader: dict | None = None) -> SEDDataModule:
    """Compose the data stage from the ``data`` and ``features`` config groups (Hydra or dicts). ``loader``:
    ``num_workers`` and ``pin_memory`` for the device the run trains on (sedbench.training.device); without
    it, ``data.num_workers`` (``auto``: none) and no pinned memory."""
    from sedbench.data.features import params_from_config
    from sedbench.data.layouts import dataset_from_config

    d = dict(data_cfg)
    workers = d.get("num_workers", 0)
    loader = loader or {"num_workers": 0 if str(workers) == "auto" else int(workers), "pin_memory": False}
    params, cache_dir = params_from_config(features_cfg)
    ds = dataset_from_config(data_cfg)
    return SEDDataModule(ds, params, seq_len=int(d["seq_len"]), batch_size=batch_size(d),
                         num_workers=int(loader["num_workers"]), pin_memory=bool(loader.get("pin_memory")),
                         cache_dir=cache_dir, seed=seed,
                         progress=progress, segment_overlap=float(d.get("segment_overlap", 0.0)),
                         augment=Augment.from_config(d.get("augment")))
