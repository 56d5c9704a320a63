"""Bootstrap intervals, the comparison of two configurations, Holm and the verdict rule, on cases worked out by hand."""

import numpy as np
import pytest

from sedbench.metrics.segment import FILE_COUNTS, SegmentAccumulator
from sedbench.stats import (
    Interval,
    bootstrap_files,
    compare,
    er,
    f1,
    holm,
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


def test_compare_by_hand_and_its_verdicts():
    same = [np.array([HIT, MISS, HIT])] * 3
    d = compare(same, same)
    assert (d.difference, d.low, d.high) == (0.0, 0.0, 0.0) and d.verdict(+1) == "inconclusive"
    assert d.n_seeds == (3, 3) and d.n_files == 3 and d.mean == (pytest.approx(2 / 3),) * 2
    better = [np.array([HIT] * 18 + [MISS] * 2)] * 3
    worse = [np.array([MISS] * 18 + [HIT] * 2)] * 3
    d = compare(better, worse)
    assert d.difference == pytest.approx(0.9 - 0.1) and d.low > 0.2
    assert d.verdict(+1) == "holds" and d.verdict(-1) == "contradicted" and verdict(d, +1) == "holds"
    # seed noise as large as the difference: the interval holds 0
    noisy_a = [np.array([HIT] * 4), np.array([MISS] * 4)]
    noisy_b = [np.array([HIT] * 3 + [MISS]), np.array([MISS] * 3 + [HIT])]
    assert compare(noisy_a, noisy_b).verdict(+1) == "inconclusive"
    with pytest.raises(ValueError, match="different test files"):
        compare(same, [np.array([HIT])])


def test_compare_is_a_t_interval_over_seeds_and_files_by_hand():
    """Two files, two seeds a side; every file's F1 is a whole number so the parts can be worked out by hand."""
    a = [np.array([HIT, HIT]), np.array([HIT, MISS])]      # per-seed F1 1.0 and 0.5
    b = [np.array([MISS, MISS]), np.array([HIT, MISS])]    # 0.0 and 0.5
    c = compare(a, b)
    assert c.difference == pytest.approx(0.5) and c.mean == pytest.approx((0.75, 0.25))
    var_a = var_b = 0.125 / 2                               # sample variance over 2 seeds (0.125) / 2
    # leave file 1 out: a 1.0, 1.0 and b 0.0, 1.0 -> 1.0 - 0.5 = 0.5; leave file 2 out: a 1.0, 0.0 and b 0.0, 0.0 ->
    # 0.5: the difference does not move with the files, so the jackknife variance is 0
    assert c.variance == pytest.approx((var_a, var_b, 0.0))
    df = min((var_a + var_b) ** 2 / (var_a ** 2 + var_b ** 2), (var_a + var_b) ** 2 / (var_a ** 2 + var_b ** 2))
    from scipy import stats

    half = stats.t.ppf(0.975, df) * np.sqrt(var_a + var_b)
    assert c.df == pytest.approx(2.0) and (c.low, c.high) == pytest.approx((0.5 - half, 0.5 + half))
    assert c.p_value() > 0.05 and c.verdict(+1) == "inconclusive"
    assert c.at_level(0.5).high < c.high and c.at_level(0.5).difference == c.difference


def test_swapping_sides_negates_the_interval_exactly():
    rng = np.random.default_rng(3)
    sides = [[np.stack([rng.integers(0, 50, 12)] * 3 + [rng.integers(0, 9, 12)] * 3, 1) for _ in range(n)]
             for n in (3, 5)]
    for a, b in ((sides[0], sides[1]), (sides[1], sides[0])):
        ab, ba = compare(a, b), compare(b, a)
        assert (ab.difference, ab.low, ab.high) == (-ba.difference, -ba.high, -ba.low)
        assert ab.swapped() == ba


def test_one_seed_on_a_side_gives_no_interval_and_no_verdict():
    one = [np.array([HIT] * 20)]
    three = [np.array([MISS] * 20)] * 3
    for a, b in ((one, three), (three, one), (one, one)):
        c = compare(a, b)
        assert np.isnan(c.low) and np.isnan(c.high) and not c.seed_variance_known
        assert c.verdict(+1) == c.verdict(-1) == "no verdict" and c.p_value() == 1.0
    assert abs(compare(one, three).difference) == 1.0  # the difference itself is still reported


def test_holm_by_hand():
    # m = 4: sorted 0.01 (< 0.05/4: rejected), 0.03 (>= 0.05/3: kept, and every later one with it)
    assert holm([0.01, 0.04, 0.03, 0.2]) == [(True, 1 - 0.05 / 4), (False, 1 - 0.05 / 3), (False, 1 - 0.05 / 3),
                                              (False, 1 - 0.05 / 3)]
    assert holm([0.001, 0.02]) == [(True, 1 - 0.025), (True, 1 - 0.05)]
    assert holm([]) == []


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


def _files(per_file_tp: list[int], n_ref: int = 100) -> np.ndarray:
    """Per-file counts with ``tp`` hits of ``n_ref`` reference segments and as many system segments (F1 = tp/n_ref)."""
    return np.array([[tp, n_ref, n_ref, n_ref - tp, 0, 0] for tp in per_file_tp])


def test_files_sharing_sources_widen_the_interval_and_cut_its_degrees_of_freedom():
    # 12 files in 3 groups of 4; each group's files are mixed from one source of each of two classes. Configuration a
    # suits the sources of group 0 and b those of group 2: the per-file differences move together within a group.
    sources = [[f"dog/{g}", f"rain/{g}"] for g in range(3) for _ in range(4)]
    tp_a = [70, 72, 69, 71, 60, 61, 59, 62, 50, 52, 49, 51]
    tp_b = [58, 60, 59, 57, 60, 59, 61, 60, 62, 60, 63, 61]
    a = [_files([t + s for t in tp_a]) for s in (0, 1, -1)]
    b = [_files([t + s for t in tp_b]) for s in (1, 0, -1)]
    plain, shared = compare(a, b), compare(a, b, sources=sources)
    assert shared.difference == plain.difference and not plain.shared_sources and shared.shared_sources
    assert shared.variance[2] > 3 * plain.variance[2]            # the files' part: 3 groups, not 12 files
    assert shared.df_files < 3 < plain.df_files == pytest.approx(11)
    assert shared.high - shared.low > plain.high - plain.low
    swapped = compare(b, a, sources=sources)                      # still an exact negation
    assert (swapped.low, swapped.high) == pytest.approx((-shared.high, -shared.low))
    # files that share nothing: exactly the independent files' interval
    alone = compare(a, b, sources=[[f"dog/{i}"] for i in range(12)])
    assert (alone.low, alone.high, alone.df_files) == (plain.low, plain.high, plain.df_files)
    with pytest.raises(ValueError, match="one entry per test file"):
        compare(a, b, sources=sources[:5])


def test_one_dominant_file_leaves_the_files_about_one_degree_of_freedom():
    sizes = [1000, 100, 100, 100]
    a = [np.array([[int(0.6 * n) + s, n, n, n - int(0.6 * n) - s, 0, 0] for n in sizes]) for s in (0, 2, 4)]
    b = [np.array([[int(0.5 * n) + s + (3 if i else 0), n, n, n - int(0.5 * n) - s - (3 if i else 0), 0, 0]
                   for i, n in enumerate(sizes)]) for s in (1, 3, 5)]
    c = compare(a, b)
    kish = (2 * sum(sizes)) ** 2 / sum((2 * n) ** 2 for n in sizes)   # Nref + Nsys per file, equal over runs
    assert c.df_files == pytest.approx(kish - 1) and c.df_files < 1


def test_failed_runs_read_validation_only_with_a_rule_fixed_in_advance():
    from sedbench.stats import FAIL_FLOOR, failed_runs

    # the claims study's CNN: one seed stopped at validation F1 25.9 against 42-47 for its four siblings
    assert failed_runs([0.259, 0.42, 0.45, 0.47, 0.44]).tolist() == [True, False, False, False, False]
    # a seed within the floor of its siblings' median, or among siblings that spread widely, did not fail
    assert not failed_runs([0.45 - FAIL_FLOOR + 0.01, 0.45, 0.45, 0.46]).any()
    assert not failed_runs([0.20, 0.30, 0.45, 0.60, 0.50]).any()
    # three runs cannot tell which one failed (two others are too few); a non-finite score always failed
    assert failed_runs([0.10, 0.45, 0.46]).tolist() == [False, False, False]
    assert failed_runs([float("nan"), 0.45, 0.46]).tolist() == [True, False, False]
    # vectorized over simulated studies
    many = failed_runs(np.array([[0.259, 0.42, 0.45, 0.47], [0.44, 0.42, 0.45, 0.47]]))
    assert many.tolist() == [[True, False, False, False], [False] * 4]


def test_power_of_a_design_agrees_with_the_simulated_rate():
    """The calibration measured 81 % power for 5 points with 5 seeds a side and 20 files in its 'typical' scenario
    (docs/statistics.md); the power computed from one such study's own seed spreads and files' variance is near
    it on average, grows with seeds and with the difference, and the seeds for 80 % follow from it."""
    from sedbench.calibration import SCENARIOS, simulate_counts
    from sedbench.stats import power, seeds_for_power

    a, b = simulate_counts(np.random.default_rng(7), 200, 5, 20, SCENARIOS[1], 0.0)
    comparisons = [compare(x, y) for x, y in zip(a, b, strict=True)]
    mean_power = np.mean([power(c, 0.05) for c in comparisons])
    assert 0.65 < mean_power < 0.95
    c = comparisons[0]
    assert power(c, 0.03) < power(c, 0.05) < power(c, 0.05, seeds=(10, 10))
    n = seeds_for_power(c, 0.05)
    assert power(c, 0.05, seeds=(n, n)) >= 0.8 > power(c, 0.05, seeds=(n - 1, n - 1))
    assert np.isnan(power(compare(a[0][:1], b[0][:1]), 0.05))  # one seed: no design to plan from


def test_equivalence_needs_a_margin_and_the_narrower_interval():
    """TOST at 95 %: the 90 % interval inside (-margin, +margin). An interval that merely holds 0 is not
    equivalence: with a margin of 1 point these noisy runs are not shown equivalent, with 40 points they are."""
    a = [np.array([HIT] * h + [MISS] * (20 - h)) for h in (12, 13, 11)]
    b = [np.array([HIT] * h + [MISS] * (20 - h)) for h in (12, 11, 13)]
    c = compare(a, b)
    assert c.verdict(+1) == "inconclusive"
    assert c.equivalence(0.01) == "not shown equivalent" and c.equivalence(0.40) == "equivalent"
    inner = c.at_level(0.90)
    assert c.low < inner.low and inner.high < c.high
    assert compare(a[:1], b).equivalence(0.40) == "no verdict"


def test_interaction_of_two_datasets_by_hand():
    """One dataset's difference +30 points, the other's +5: whether they differ is the interval of their difference,
    with the two comparisons' variances added and Welch-Satterthwaite degrees of freedom."""
    from scipy import stats as sps

    from sedbench.stats import interaction

    big = compare([np.array([HIT] * h + [MISS] * (20 - h)) for h in (16, 17, 15)],
                  [np.array([HIT] * h + [MISS] * (20 - h)) for h in (10, 11, 9)])
    small = compare([np.array([HIT] * h + [MISS] * (20 - h)) for h in (11, 12, 10)],
                    [np.array([HIT] * h + [MISS] * (20 - h)) for h in (10, 11, 10)])
    i = interaction(big, small)
    se = np.hypot(big.se, small.se)
    df = se ** 4 / (big.se ** 4 / big.df + small.se ** 4 / small.df)
    assert i.difference == pytest.approx(big.difference - small.difference) and i.se == pytest.approx(se)
    assert i.df == pytest.approx(df)
    assert i.high - i.difference == pytest.approx(sps.t.ppf(0.975, df) * se)
    assert i.verdict() == ("differs" if i.low > 0 else "no difference shown")
    same = interaction(big, big)
    assert same.difference == 0 and same.verdict() == "no difference shown"
