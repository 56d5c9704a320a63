"""Class-wise median filters: lengths, filtering, and the choice on validation."""

from __future__ import annotations

import numpy as np
import pytest

from sedbench.data.annotations import Event
from sedbench.metrics.postprocess import MEDIAN_GRID_SECONDS, median_filter, median_frames, tune_median_filter

HOP = 0.02


@pytest.mark.parametrize("seconds, frames", [(0.0, 1), (0.02, 1), (0.1, 5), (0.12, 7), (0.5, 25), (1.0, 51)])
def test_median_lengths_are_odd_frame_counts(seconds, frames):
    assert median_frames(seconds, HOP) == frames


def test_the_filter_closes_short_gaps_and_drops_short_blips_class_by_class():
    p = np.zeros((40, 2), np.float32)
    p[5:30, 0] = 1
    p[15, 0] = 0          # a one-frame gap in class 0
    p[20, 1] = 1          # a one-frame blip in class 1
    out = median_filter(p, [3, 1])
    assert out[15, 0] == 1 and out[20, 1] == 1  # class 1 is not filtered (1 frame)
    assert median_filter(p, [3, 3])[20, 1] == 0
    assert p[15, 0] == 0  # the input is left as it was


def _fragmented(seed: int, files: int = 3):
    """Reference events; outputs that follow them, class 'dog' broken by one-frame gaps every 10 frames."""
    rng = np.random.default_rng(seed)
    refs, probs = [], []
    for _ in range(files):
        p = np.zeros((1500, 2), np.float32)
        events = []
        for k, label in enumerate(("dog", "car")):
            t = 10
            while t < 1300:
                n = int(rng.integers(50, 150))
                events.append(Event(round(t * HOP, 2), round((t + n) * HOP, 2), label))
                p[t:t + n, k] = 0.9
                if label == "dog":
                    p[t + 5:t + n - 5:10, k] = 0.1
                t += n + int(rng.integers(30, 100))
        refs.append(sorted(events))
        probs.append(p)
    return refs, probs


def test_tuning_filters_the_fragmented_class_and_leaves_the_clean_one():
    refs, probs = _fragmented(0)
    chosen, search = tune_median_filter(refs, probs, ["dog", "car"], HOP, 0.5)
    assert chosen["car"] == 0.0            # clean: every length ties, the shortest (none) is kept
    assert chosen["dog"] > 0.0             # fragmented: a filter of a few frames joins the pieces
    assert search[chosen["dog"]]["dog"] == 1.0 and search[0.0]["dog"] < 0.2
    assert set(search) == set(MEDIAN_GRID_SECONDS)
    assert chosen["dog"] == min(s for s in MEDIAN_GRID_SECONDS if search[s]["dog"] == 1.0)
