"""The fast event-based path equals sed_eval's EventBasedMetrics.evaluate, value for value."""

from __future__ import annotations

import numpy as np
import pytest

from sedbench.data.annotations import Event
from sedbench.metrics.event import event_based

CLASSES = ["car", "dog", "speech"]


def _random_lists(seed: int, files: int = 4, grid: float | None = None):
    """Reference events and a noisy, fragmented system output (as raw frame-level detections are)."""
    rng = np.random.default_rng(seed)

    def snap(x):
        return round(round(x / grid) * grid, 6) if grid else round(x, 3)

    ref, est = {}, {}
    for f in range(files):
        name = f"f{f}.wav"
        ref[name], est[name] = [], []
        for _ in range(int(rng.integers(0, 12))):
            on = snap(rng.uniform(0, 30))
            off = max(snap(on + rng.uniform(0.05, 4)), on + (grid or 0.001))
            label = str(rng.choice(CLASSES))
            ref[name].append(Event(on, off, label))
            for _ in range(int(rng.integers(0, 4))):  # detections near it: exact, shifted, fragments, wrong label
                d_on, d_off = rng.choice([0, 0.2, -0.2, 0.1, 0.3, 0.5]), rng.choice([0, 0.2, -0.2, 0.4, -0.6])
                o = max(0.0, snap(on + d_on))
                e = max(snap(off + d_off), o + (grid or 0.001))
                est[name].append(Event(o, e, label if rng.random() < 0.7 else str(rng.choice(CLASSES))))
        for _ in range(int(rng.integers(0, 20))):  # insertions
            o = snap(rng.uniform(0, 30))
            est[name].append(Event(o, snap(o + rng.uniform(0.02, 1)), str(rng.choice(CLASSES))))
        rng.shuffle(est[name])  # list order decides matchings and substitutions: any order must agree
    return ref, est


def _assert_same(fast, slow):
    assert fast.file_counts == slow.file_counts
    assert fast.counts == slow.counts
    for k, v in slow.overall.items():
        assert fast.overall[k] == pytest.approx(v, nan_ok=True, rel=0, abs=0), k
    for label, row in slow.class_wise.items():
        for k, v in row.items():
            assert fast.class_wise[label][k] == pytest.approx(v, nan_ok=True, rel=0, abs=0), (label, k)
    for k, v in slow.class_average.items():
        assert fast.class_average[k] == pytest.approx(v, nan_ok=True, rel=0, abs=0), k


@pytest.mark.parametrize("seed", range(12))
def test_fast_event_based_equals_sed_eval(seed):
    ref, est = _random_lists(seed, grid=0.02 if seed % 2 else None)  # on a 20-ms frame grid: collar ties
    fast = event_based(ref, est, CLASSES)
    slow = event_based(ref, est, CLASSES, engine="sed_eval")
    _assert_same(fast, slow)
    assert slow.counts["Nref"] > 0


def test_collar_edges_and_substitutions():
    ref = {"a": [Event(1.0, 2.0, "dog"), Event(5.0, 9.0, "car"), Event(12.0, 12.5, "speech")]}
    est = {"a": [Event(1.125, 2.125, "dog"),    # onset and offset 125 ms off: a hit
                 Event(5.0, 9.75, "car"),       # offset 0.75 s off, within 20 % of 4 s: a hit
                 Event(12.0, 12.5, "dog")]}     # right time, wrong class: a substitution
    fast = event_based(ref, est)
    _assert_same(fast, event_based(ref, est, engine="sed_eval"))
    assert fast.counts["Ntp"] == 2 and fast.counts["Nsubs"] == 1 and fast.file_counts == [(2, 3, 3, 1, 0, 0)]


def test_a_collar_of_exactly_200_ms_is_decided_in_float64_as_sed_eval_does():
    # 2.2 - 2.0 is 0.20000000000000018 > 0.2 in float64, while 1.2 - 1.0 is 0.19999999999999996: no hit
    ref, est = {"a": [Event(1.0, 2.0, "dog")]}, {"a": [Event(1.2, 2.2, "dog")]}
    fast = event_based(ref, est)
    _assert_same(fast, event_based(ref, est, engine="sed_eval"))
    assert fast.counts["Ntp"] == 0 and fast.counts["Nsubs"] == 0
