"""Sequences for training and evaluation (Cakir et al. 2017, Sec. III-D).

Training: the training files' frames are concatenated and cut into sub-sequences of
``seq_len`` frames; every epoch the start index moves by 73 frames ("a fixed amount
that is not a factor of the sequence length"), wrapping around so no frame is lost.
Validation/test: each file is covered by non-overlapping sequences; the last one is
zero-padded and its padding masked, and each sequence knows its file and start frame
so predictions can be stitched back into per-file activity matrices.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

SHIFT = 73


class TrainSequences:
    """Map-style dataset: index = start frame in the concatenated training stream."""

    def __init__(self, features: Sequence[np.ndarray], targets: Sequence[np.ndarray], seq_len: int):
        self._init(np.concatenate(features).astype(np.float32), np.concatenate(targets), seq_len)

    @classmethod
    def on_disk(cls, frames, targets: np.ndarray, seq_len: int) -> TrainSequences:
        """The stream's features in a :class:`sedbench.data.frames.FrameFile` (read per sequence, out of RSS)."""
        obj = cls.__new__(cls)
        obj._init(frames, targets, seq_len)
        return obj

    def _init(self, x, y: np.ndarray, seq_len: int) -> None:
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"training stream: {len(x)} feature frames but {len(y)} target frames")
        self.x, self.y, self.seq_len = x, y, seq_len  # y: 0/1 frames, any dtype (uint8 saves memory)

    def __len__(self) -> int:
        return len(self.x)

    def _window(self, a, start: int) -> np.ndarray:
        """``seq_len`` rows from ``start``, wrapping around the stream's end (as often as needed)."""
        parts, pos, need, n = [], start % len(self.x), self.seq_len, len(self.x)
        while need:
            take = min(need, n - pos)
            parts.append(a[pos:pos + take])
            need, pos = need - take, 0
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __getitem__(self, start: int) -> dict:
        return {"x": np.asarray(self._window(self.x, start), np.float32),
                "y": self._window(self.y, start).astype(np.float32), "mask": np.ones(self.seq_len, np.float32),
                "start": start}


class ShiftedStartSampler:
    """Yields the sequence start frames of one epoch: ``(epoch*73 mod seq_len) + k*seq_len``.

    Lightning calls ``set_epoch`` on a loader's sampler before every epoch, so the shift
    follows the trainer's epoch counter (also after resuming from a checkpoint).
    """

    def __init__(self, stream_len: int, seq_len: int, shuffle: bool = True, seed: int = 0, shift: int = SHIFT):
        self.stream_len, self.seq_len, self.shuffle, self.seed, self.shift = stream_len, seq_len, shuffle, seed, shift
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def starts(self) -> np.ndarray:
        offset = (self.epoch * self.shift) % self.seq_len
        return (offset + np.arange(max(1, self.stream_len // self.seq_len)) * self.seq_len) % self.stream_len

    def __iter__(self) -> Iterator[int]:
        s = self.starts()
        if self.shuffle:
            s = np.random.default_rng((self.seed, self.epoch)).permutation(s)
        return iter(s.tolist())

    def __len__(self) -> int:
        return max(1, self.stream_len // self.seq_len)


@dataclass(frozen=True)
class Piece:
    file: int
    start: int
    length: int  # valid frames (the rest is padding)


class EvalSequences:
    """Non-overlapping ``seq_len`` pieces of every file; padding is masked."""

    def __init__(self, features: Sequence[np.ndarray], targets: Sequence[np.ndarray], seq_len: int):
        self.features, self.targets, self.seq_len = list(features), list(targets), seq_len
        self.pieces = [Piece(i, s, min(seq_len, len(f) - s))
                       for i, f in enumerate(self.features) for s in range(0, len(f), seq_len)]

    def __len__(self) -> int:
        return len(self.pieces)

    def __getitem__(self, i: int) -> dict:
        p = self.pieces[i]
        x = np.zeros((self.seq_len, self.features[p.file].shape[1]), np.float32)
        y = np.zeros((self.seq_len, self.targets[p.file].shape[1]), np.float32)
        mask = np.zeros(self.seq_len, np.float32)
        x[:p.length] = self.features[p.file][p.start:p.start + p.length]
        y[:p.length] = self.targets[p.file][p.start:p.start + p.length]
        mask[:p.length] = 1.0
        return {"x": x, "y": y, "mask": mask, "file": p.file, "start": p.start}

    def stitch(self, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-piece ``(seq_len, K)`` outputs (in piece order) -> per-file ``(frames, K)`` arrays."""
        if len(outputs) != len(self.pieces):
            raise ValueError(f"expected {len(self.pieces)} piece outputs, got {len(outputs)}")
        files = [np.zeros((len(f), outputs[0].shape[-1]), np.float32) for f in self.features] if outputs else []
        for p, out in zip(self.pieces, outputs, strict=True):
            files[p.file][p.start:p.start + p.length] = out[:p.length]
        return files


class ClipSequences:
    """Weak labels: each clip cut into ``seq_len``-frame segments (zero-padded and masked when shorter),
    each segment carrying its clip's target.

    ``overlap=0`` keeps one segment per clip, its first ``seq_len`` frames. With ``overlap`` in
    (0, 1), segments start every ``seq_len * (1 - overlap)`` frames and a last one ends at the
    clip's end (ACRNN: 128 frames, 50 %); a clip's score is the mean over its segments.
    """

    def __init__(self, features: Sequence[np.ndarray], tags: Sequence[np.ndarray], seq_len: int,
                 overlap: float = 0.0):
        if not 0 <= overlap < 1:
            raise ValueError(f"data.segment_overlap must be in [0, 1), got {overlap}")
        self.features, self.tags, self.seq_len = list(features), list(tags), seq_len
        step = max(1, round(seq_len * (1 - overlap)))
        self.segments: list[tuple[int, int]] = []
        for i, f in enumerate(self.features):
            starts = list(range(0, max(1, len(f) - seq_len + 1), step)) if overlap else [0]
            if overlap and starts[-1] + seq_len < len(f):
                starts.append(len(f) - seq_len)
            self.segments += [(i, s) for s in starts]
        self.clip_of = np.array([i for i, _ in self.segments])

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, j: int) -> dict:
        i, start = self.segments[j]
        f = self.features[i][start:start + self.seq_len]
        x = np.zeros((self.seq_len, f.shape[1]), np.float32)
        mask = np.zeros(self.seq_len, np.float32)
        x[: len(f)], mask[: len(f)] = f, 1.0
        return {"x": x, "y": self.tags[i], "mask": mask, "file": i, "start": start}

    def per_clip(self, segment_scores: np.ndarray) -> np.ndarray:
        """``(segments, K)`` scores in item order -> ``(clips, K)``, the mean over each clip's segments."""
        out = np.zeros((len(self.features), segment_scores.shape[1]), np.float64)
        np.add.at(out, self.clip_of, segment_scores)
        return (out / np.bincount(self.clip_of, minlength=len(self.features))[:, None]).astype(np.float32)
