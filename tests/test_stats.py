"""Bootstrap intervals, the hierarchical comparison and the verdict rule, on cases worked out by hand."""

import numpy as np
import pytest

from sedbench.metrics.segment import FILE_COUNTS, SegmentAccumulator
from sedbench.stats import (
    Interval,
    bootstrap_files,
    er,
    f1,
    f1_change,
    hierarchical_difference,
    mean_std_interval,
    verdict,
)

HIT = (1, 1, 1, 0, 0, 0)    # Ntp Nref Nsys S D I: one segment found
MISS = (0, 1, 1, 1, 0, 0)   # one segment, a wrong class in it: a substitution


def test_scores_from_counts_are_the_accumulators():
    rng = np.random.default_rng(1)
    from sedbench.data.annotations import Event

    acc = SegmentAccumulator(["a", "b"], 0.5)
    for _ in range(5):
        ref = [Event(float(o), float(o) + 1.5, str(rng.choice(["a", "b"]))) for o in rng.uniform(0, 8, 3)]
        acc.add_frames(ref, rng.random((500, 2)) > 0.7, 0.02)
    r = acc.result()
    assert FILE_COUNTS == ("Ntp", "Nref", "Nsys", "S", "D", "I") and len(acc.file_counts) == 5
    assert float(f1(acc.file_counts)) == pytest.approx(r.f1) and float(er(acc.file_counts)) == pytest.approx(r.er)


def test_bootstrap_over_two_files_by_hand():
    # resamples of (HIT, MISS): {HIT, HIT} F1 1 (p 1/4), mixed F1 2*1/(2+2) = 0.5 (p 1/2), {MISS, MISS} F1 0 (p 1/4);
    # the 2.5th and 97.5th percentiles of that distribution are 0 and 1, the score itself 0.5
    assert bootstrap_files([HIT, MISS]) == Interval(0.5, 0.0, 1.0)
    # ER: {HIT, HIT} 0, mixed 1/2, {MISS, MISS} 1
    assert bootstrap_files([HIT, MISS], "er") == Interval(0.5, 0.0, 1.0)
    # identical files: nothing varies
    assert bootstrap_files([HIT] * 4) == Interval(1.0, 1.0, 1.0)
    assert bootstrap_files([HIT, MISS] * 20, seed=3) == bootstrap_files([HIT, MISS] * 20, seed=3)  # reproducible


def test_hierarchical_difference_and_verdicts():
    same = [np.array([HIT, MISS, HIT])] * 3
    d = hierarchical_difference(same, same)
    assert d == Interval(0.0, 0.0, 0.0) and verdict(d, +1) == "inconclusive"  # paired: the same files each draw
    better = [np.array([HIT] * 18 + [MISS] * 2)] * 3
    worse = [np.array([MISS] * 18 + [HIT] * 2)] * 3
    d = hierarchical_difference(better, worse)
    assert d.value == pytest.approx(0.9 - 0.1) and d.low >= 0.5
    assert verdict(d, +1) == "holds" and verdict(d, -1) == "contradicted"
    # seed noise as large as the difference: the interval holds 0
    noisy_a = [np.array([HIT] * 4), np.array([MISS] * 4)]
    noisy_b = [np.array([HIT] * 3 + [MISS]), np.array([MISS] * 3 + [HIT])]
    assert verdict(hierarchical_difference(noisy_a, noisy_b), +1) == "inconclusive"
    with pytest.raises(ValueError, match="different test files"):
        hierarchical_difference(same, [np.array([HIT])])


def test_change_of_f1_under_a_perturbation_by_hand():
    # two files; conditions: unshifted, shift -1, shift +1. Unshifted both files HIT (F1 1); shift -1 one HIT one
    # MISS (F1 2*1/(2+2) = 0.5); shift +1 both MISS (F1 0): change = mean(0.5, 0) - 1 = -0.75
    one = np.array([[HIT, HIT, MISS], [HIT, MISS, MISS]])  # (files, conditions, 6)
    assert float(f1_change(one)) == pytest.approx(-0.75)
    assert f1_change(np.stack([one, one])).shape == (2,)  # per seed
    robust = np.array([[HIT, HIT, HIT], [HIT, HIT, HIT]])  # loses nothing
    d = hierarchical_difference([robust] * 3, [one] * 3, "f1_change")
    assert d.value == pytest.approx(0.75) and verdict(d, +1) == "holds"


def test_verdict_rule():
    assert verdict(Interval(0.1, 0.02, 0.2), +1) == "holds"
    assert verdict(Interval(0.1, 0.02, 0.2), -1) == "contradicted"
    assert verdict(Interval(-0.1, -0.2, -0.01), -1) == "holds"
    assert verdict(Interval(0.05, -0.01, 0.1), +1) == "inconclusive"
    assert verdict(Interval(0.0, 0.0, 0.0), -1) == "inconclusive"


def test_mean_std_and_t_interval_over_seeds():
    mean, std, (lo, hi) = mean_std_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, 2 degrees of freedom) * std / sqrt(n), std = 1
    assert (mean, std) == (2.0, 1.0) and (lo, hi) == pytest.approx((2 - half, 2 + half))
    assert np.isnan(mean_std_interval([0.5])[1]) and np.isnan(mean_std_interval([])[0])
