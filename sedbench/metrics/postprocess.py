"""Post-processing of frame probabilities: class-wise median filters, their lengths tuned on validation.

A median filter over ``n`` frames (odd) smooths each class's probability track; thresholding
commutes with it, so filtering probabilities and then thresholding equals filtering the binary
decisions. It removes detections and gaps shorter than about ``n/2`` frames, which matters for
event-based scores (an event split by a one-frame gap is a hit and an insertion) far more than
for frame scores. Each class's length is chosen on the validation split from
:data:`MEDIAN_GRID_SECONDS` by the class's event-based F1 (collars 200 ms / 20 %), the
shortest on ties (0 s = no filter), as DCASE task 4 baselines tune it; the test split is then
filtered with the chosen lengths and scored like the raw output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sedbench.data.annotations import Event

MEDIAN_GRID_SECONDS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


def median_frames(seconds: float, hop: float) -> int:
    """The odd number of frames closest to ``seconds`` (1 = no filtering)."""
    n = int(round(seconds / hop))
    return max(1, n + 1 - n % 2)


def median_filter(probs: np.ndarray, frames: Sequence[int]) -> np.ndarray:
    """``(T, K)`` probabilities filtered class by class over ``frames[k]`` frames (edges: nearest value)."""
    from scipy.ndimage import median_filter as filt

    out = np.array(probs, dtype=np.float32, copy=True)
    for k, n in enumerate(frames):
        if n > 1:
            out[:, k] = filt(out[:, k], size=int(n), mode="nearest")
    return out


def events_by_file(probabilities: Sequence[np.ndarray], classes: Sequence[str], hop: float,
                   threshold: float) -> dict[str, list[Event]]:
    """Thresholded per-file probabilities as event lists, files named by their index."""
    from sedbench.metrics.segment import frames_to_events

    return {f"{i:05d}": frames_to_events(p > threshold, classes, hop) for i, p in enumerate(probabilities)}


def references_by_file(references: Sequence[Sequence[Event]]) -> dict[str, list[Event]]:
    """Per-file reference events keyed as :func:`events_by_file` keys the outputs."""
    return {f"{i:05d}": list(evs) for i, evs in enumerate(references)}


def tune_median_filter(references: Sequence[Sequence[Event]], probabilities: Sequence[np.ndarray],
                       classes: Sequence[str], hop: float, threshold: float,
                       grid: Sequence[float] = MEDIAN_GRID_SECONDS) -> tuple[dict[str, float], dict]:
    """Each class's median filter length (seconds) with the best event-based F1 on these (validation) files.

    Returns ``({class: seconds}, {seconds: {class: F1}})``; the second is the whole search, for the record.
    """
    from sedbench.metrics.event import event_based

    refs = references_by_file(references)
    search: dict[float, dict[str, float]] = {}
    for seconds in grid:
        n = median_frames(seconds, hop)
        filtered = [median_filter(p, [n] * len(classes)) for p in probabilities]
        r = event_based(refs, events_by_file(filtered, classes, hop, threshold), classes)
        search[float(seconds)] = {c: float(np.nan_to_num(v["f_measure"])) for c, v in r.class_wise.items()}
    chosen = {}
    for c in classes:  # the best F1, the shortest length among equals
        best = max(grid, key=lambda s: (search[float(s)][c], -s))
        chosen[c] = float(best)
    return chosen, search
