"""Frames on disk: a split's normalized features in one unnamed temporary file, read through short-lived
memory maps, so that a paper-size training set does not live in the process's resident memory.

Each access maps the file, copies the rows it needs and unmaps it again: the rows stay in the
operating system's page cache (shared, reclaimable), not in the training process's RSS. The file
has no name (``tempfile.TemporaryFile``), so it disappears with the process, also when killed.
"""

from __future__ import annotations

import mmap
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np


class FrameFile:
    """A ``(rows, width)`` float32 matrix written once, row blocks at a time, then read by slices."""

    def __init__(self, blocks: Iterable[np.ndarray], width: int, directory: str | Path | None = None):
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (lives as long as this object)
        self.width, self.rows, self.starts = int(width), 0, []
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=np.float32).reshape(-1, self.width)
            self.starts.append(self.rows)
            self.file.write(block.tobytes())
            self.rows += len(block)
        self.file.flush()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a new array."""
        start, stop = max(0, start), min(stop, self.rows)
        if stop <= start:
            return np.zeros((0, self.width), np.float32)
        row = self.width * 4
        page = (start * row) // mmap.ALLOCATIONGRANULARITY * mmap.ALLOCATIONGRANULARITY
        end = stop * row
        with mmap.mmap(self.file.fileno(), end - page, access=mmap.ACCESS_READ, offset=page) as m:
            out = np.frombuffer(m, np.float32, count=(stop - start) * self.width, offset=start * row - page).copy()
        return out.reshape(-1, self.width)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, _ = key.indices(self.rows)
        return self.read(start, stop)

    def part(self, i: int, length: int) -> MappedFrames:
        """The ``i``-th written block (a file) as an array-like view."""
        return MappedFrames(self, self.starts[i], length)


class MappedFrames:
    """A file's rows inside a :class:`FrameFile`, indexable by slices like an array."""

    def __init__(self, store: FrameFile, offset: int, length: int):
        self.store, self.offset, self.length = store, offset, length

    def __len__(self) -> int:
        return self.length

    @property
    def shape(self) -> tuple[int, int]:
        return (self.length, self.store.width)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError(f"MappedFrames supports slices only, got {type(key).__name__}")
        start, stop, step = key.indices(self.length)
        rows = self.store.read(self.offset + start, self.offset + max(start, stop))
        return rows[::step] if step != 1 else rows

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)
