"""A dataset's fingerprint: what a run read, in one short hash.

It covers the dataset's name, classes and sample rate, and for every recording of the splits read: its split,
file name, size in bytes, the sha1 of its content and its labels (events or tags). Two copies of a dataset with
the same fingerprint gave a run the same inputs; a changed, added, removed or relabelled file changes it. The
content hashes are memoized by path, size and modification time in the feature cache (the same memo the feature
cache keys on), so a dataset is read once for it, not once per run.
"""

from __future__ import annotations

import hashlib
import json


def dataset_fingerprint(ds, splits: tuple[str, ...] | None = None, cache=None) -> str:
    """``sha256:<16 hex>`` of ``ds`` (a :class:`sedbench.data.dataset.Dataset`) over ``splits`` (default: all)."""
    from sedbench.data.features import FeatureCache

    cache = cache or FeatureCache()
    h = hashlib.sha256()
    h.update(json.dumps({"name": ds.name, "classes": list(ds.classes), "sample_rate": ds.sample_rate,
                         "weak": ds.weak}, sort_keys=True).encode())
    for split in splits or sorted(ds.splits):
        for r in ds.recordings(split):
            labels = ([[round(e.onset, 6), round(e.offset, 6), e.label] for e in r.events] if r.tags is None
                      else sorted(r.tags))
            h.update(json.dumps([split, r.name, r.audio.stat().st_size, cache.content_hash(r.audio), labels]).encode())
    return "sha256:" + h.hexdigest()[:16]
