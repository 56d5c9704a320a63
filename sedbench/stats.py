"""Uncertainty of scores: bootstrap intervals over test files, and differences over seeds and files.

A run's segment-based F1 and ER are ratios of counts summed over its test files (micro-average,
sed_eval's way), so resampling files means resampling rows of per-file counts
(:data:`sedbench.metrics.segment.FILE_COUNTS`: Ntp, Nref, Nsys, S, D, I) and summing again:

    F1 = 2 Ntp / (Nref + Nsys)            ER = (S + D + I) / Nref

The comparison of two configurations, each trained with several seeds and scored on the same test
files, is a **hierarchical (two-level) bootstrap**: every replicate draws the seeds of each
configuration with replacement (seed variance) and one set of test files with replacement (file
variance; the same draw for both sides, since both score the same files: a paired comparison),
then takes the difference of the mean scores over the drawn seeds. The 95 % interval is the 2.5th
and 97.5th percentile of 2000 replicates (percentile method, fixed generator seed: the same data
give the same interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def f1(counts: np.ndarray) -> np.ndarray:
    """F1 of summed counts; ``counts`` is ``(..., files, 6)``, the result ``(...)``."""
    c = np.asarray(counts, np.float64).sum(axis=-2)
    denom = c[..., 1] + c[..., 2]
    return np.divide(2 * c[..., 0], denom, out=np.zeros_like(denom), where=denom > 0)


def er(counts: np.ndarray) -> np.ndarray:
    """Error rate of summed counts (S + D + I) / Nref; ``(..., files, 6)`` -> ``(...)``."""
    c = np.asarray(counts, np.float64).sum(axis=-2)
    return (c[..., 3] + c[..., 4] + c[..., 5]) / np.maximum(c[..., 1], np.spacing(1))


def f1_change(counts: np.ndarray) -> np.ndarray:
    """Mean change of F1 under a perturbation (e.g. pitch shift): ``counts`` is ``(..., files, conditions, 6)``
    with the unperturbed condition first; the result ``(...)`` is the mean F1 of the other conditions minus
    the F1 of the first (negative: F1 lost)."""
    per_condition = f1(np.swapaxes(np.asarray(counts), -2, -3))  # (..., conditions)
    return per_condition[..., 1:].mean(axis=-1) - per_condition[..., 0]


def precision(counts: np.ndarray) -> np.ndarray:
    """Ntp / Nsys of summed counts (0 when nothing was detected); ``(..., files, 6)`` -> ``(...)``."""
    c = np.asarray(counts, np.float64).sum(axis=-2)
    return np.divide(c[..., 0], c[..., 2], out=np.zeros_like(c[..., 0]), where=c[..., 2] > 0)


def recall(counts: np.ndarray) -> np.ndarray:
    """Ntp / Nref of summed counts (0 when there is no reference); ``(..., files, 6)`` -> ``(...)``."""
    c = np.asarray(counts, np.float64).sum(axis=-2)
    return np.divide(c[..., 0], c[..., 1], out=np.zeros_like(c[..., 0]), where=c[..., 1] > 0)


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"f1": f1, "er": er, "precision": precision,
                                                             "recall": recall, "f1_change": f1_change}


@dataclass(frozen=True)
class Interval:
    value: float   # the statistic on the data as they are
    low: float
    high: float

    def excludes_zero(self) -> int:
        """+1 when the whole interval is above 0, -1 when below, 0 when it holds 0."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def file_draws(n_files: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_files)`` file indices drawn with replacement: the draws of every interval over files."""
    return np.random.default_rng(seed).integers(0, n_files, size=(n_boot, n_files))


def percentile_interval(samples: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The percentile-method ``level`` interval of bootstrap samples."""
    return _percentiles(np.asarray(samples, np.float64), level)


def bootstrap_files(counts: Sequence[Sequence[int]], statistic: str = "f1", n_boot: int = N_BOOT,
                    level: float = LEVEL, seed: int = 0) -> Interval:
    """The ``level`` interval of one run's score over its test files (files drawn with replacement)."""
    c = np.asarray(counts, np.int64)
    stat = STATISTICS[statistic]
    return Interval(float(stat(c)), *_percentiles(stat(c[file_draws(len(c), n_boot, seed)]), level))


# ---------------------------------------------------------------------------------------------- comparisons
METHOD = "welch_files"  # the method compare() uses, chosen by the calibration study (sedbench/calibration.py)


@dataclass(frozen=True)
class Comparison:
    """Configuration ``a`` minus configuration ``b`` on one statistic (``f1``: test F1 in [0, 1]), each
    configuration trained with ``n_seeds`` seeds and scored on the same ``n_files`` test files.

    ``difference`` is the mean over ``a``'s seeds minus the mean over ``b``'s; ``low`` and ``high`` its
    ``level`` interval, a t interval ``difference +/- t(df) * se`` (see :func:`compare`); both are NaN when a
    side has one seed: seed-to-seed variance is then unknown, and the comparison draws no verdict."""

    statistic: str
    difference: float
    low: float
    high: float
    level: float
    se: float
    df: float
    n_seeds: tuple[int, int]
    n_files: int
    mean: tuple[float, float]      # each side's mean over its seeds
    std: tuple[float, float]       # each side's standard deviation over its seeds (NaN with one seed)
    variance: tuple[float, float, float] = (float("nan"),) * 3  # se^2's parts: seeds of a, seeds of b, files
    method: str = METHOD

    @property
    def value(self) -> float:
        return self.difference

    @property
    def seed_variance_known(self) -> bool:
        """Both sides have at least two seeds: the only case in which the interval means anything."""
        return min(self.n_seeds) >= 2

    def excludes(self, margin: float = 0.0) -> int:
        """+1 when the whole interval lies above ``margin``, -1 when below, 0 when it holds it or is unknown."""
        return 1 if self.low > margin else -1 if self.high < margin else 0

    def excludes_zero(self) -> int:
        return self.excludes(0.0)

    def p_value(self, margin: float = 0.0) -> float:
        """Two-sided p value of ``difference == margin`` with the same t statistic and degrees of freedom as the
        interval (so ``p < 1 - level`` exactly when the interval excludes ``margin``); 1 without seed variance."""
        if not self.seed_variance_known or not math.isfinite(self.se):
            return 1.0
        if self.se == 0:
            return 1.0 if self.difference == margin else 0.0
        from scipy import stats

        return float(2 * stats.t.sf(abs(self.difference - margin) / self.se, self.df))

    def at_level(self, level: float) -> Comparison:
        """The same comparison with its interval at another level (e.g. a Holm-adjusted one)."""
        half = _t_half(self.se, self.df, level)
        return replace(self, low=self.difference - half, high=self.difference + half, level=level)

    def swapped(self) -> Comparison:
        """``b`` minus ``a``: the interval negated exactly."""
        return replace(self, difference=-self.difference, low=-self.high, high=-self.low,
                       n_seeds=self.n_seeds[::-1], mean=self.mean[::-1], std=self.std[::-1],
                       variance=(self.variance[1], self.variance[0], self.variance[2]))

    def verdict(self, direction: int = +1, margin: float = 0.0) -> str:
        """``holds`` when the interval lies beyond ``margin`` on the claimed side (``direction`` +1: the claim says
        ``difference > margin``; -1: ``difference < margin``), ``contradicted`` when it lies beyond it on the
        other side, ``inconclusive`` when it holds ``margin``; ``no verdict`` with one seed on a side."""
        if not self.seed_variance_known:
            return NO_VERDICT
        side = self.excludes(margin)
        return "inconclusive" if side == 0 else "holds" if side == direction else "contradicted"


NO_VERDICT = "no verdict"
ONE_SEED = ("one seed on a side: seed-to-seed variance is unknown, so no interval and no verdict. Fix: train every "
            "compared configuration with at least 2 seeds (5 or more for useful power: docs/statistics.md)")


def _t_half(se: float, df: float, level: float) -> float:
    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df) * se)


def files_axis(statistic: str) -> int:
    """The axis of the test files in a side's ``(seeds, files, [conditions,] 6)`` counts."""
    return -3 if statistic == "f1_change" else -2


def difference_parts(a: np.ndarray, b: np.ndarray, statistic: str = "f1") -> dict[str, np.ndarray]:
    """The pieces of :func:`compare`, vectorized over any leading axes (many simulated studies at once):
    ``a`` ``(..., seeds_a, files, [conditions,] 6)``, ``b`` likewise with the same files. Returns per-seed
    statistics ``sa`` and ``sb``, the ``difference`` of their means, the seed variance of each mean (``var_a``,
    ``var_b``; NaN with one seed) and ``var_files``, the delete-one-file jackknife variance of the difference."""
    stat, axis = STATISTICS[statistic], files_axis(statistic)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa, sb = stat(a), stat(b)                                   # (..., seeds)
    n_a, n_b, n_files = sa.shape[-1], sb.shape[-1], a.shape[axis]
    with np.errstate(invalid="ignore", divide="ignore"):
        var_a = sa.var(axis=-1, ddof=1) / n_a if n_a > 1 else np.full(sa.shape[:-1], np.nan)
        var_b = sb.var(axis=-1, ddof=1) / n_b if n_b > 1 else np.full(sb.shape[:-1], np.nan)

    def left_out(x):  # (..., seeds, files): the statistic of every seed with each file left out in turn
        rest = x.sum(axis=axis, keepdims=True) - x
        return stat(np.expand_dims(rest, axis))

    jack = left_out(a).mean(axis=-2) - left_out(b).mean(axis=-2)  # (..., files)
    var_files = (n_files - 1) / n_files * ((jack - jack.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1) \
        if n_files > 1 else np.zeros(jack.shape[:-1])
    return {"sa": sa, "sb": sb, "difference": sa.mean(axis=-1) - sb.mean(axis=-1), "var_a": var_a, "var_b": var_b,
            "var_files": var_files, "n": (n_a, n_b, n_files)}


def welch_files(parts: dict, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The chosen method: ``se^2 = var_a + var_b + var_files`` (seed variance of each side's mean, and the
    jackknife variance over test files of the difference), degrees of freedom by Welch-Satterthwaite from
    ``seeds_a - 1``, ``seeds_b - 1`` and ``files - 1``, but never more than the Welch-Satterthwaite degrees of
    freedom of the two seed parts alone: with 2-3 seeds a side whose seed variance came out small by chance
    would otherwise hand the files' many degrees of freedom to the whole (the calibration measured 11 % false
    verdicts at 2 seeds x 40 files with unequal seed spreads without that cap, 1.7 % with it).
    Returns (low, high, se, df)."""
    n_a, n_b, n_files = parts["n"]
    va, vb, vf = parts["var_a"], parts["var_b"], parts["var_files"]
    se2 = va + vb + vf
    with np.errstate(invalid="ignore", divide="ignore"):
        seeds = va ** 2 / max(n_a - 1, 1) + vb ** 2 / max(n_b - 1, 1)
        denom = seeds + (vf ** 2 / (n_files - 1) if n_files > 1 else 0)
        df = np.minimum(np.where(denom > 0, se2 ** 2 / denom, np.inf),
                        np.where(seeds > 0, (va + vb) ** 2 / seeds, np.inf))
        from scipy import stats

        half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(se2)
    half = np.where(se2 > 0, half, 0.0)
    d = parts["difference"]
    return d - half, d + half, np.sqrt(se2), df


def welch_seeds(parts: dict, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A candidate the calibration rejects as the default: Welch's t interval over the per-seed statistics alone
    (the test files taken as fixed: their sampling variance is ignored)."""
    return welch_files({**parts, "var_files": np.zeros_like(parts["difference"]), "n": (*parts["n"][:2], 1)}, level)


def compare(a: Sequence[np.ndarray], b: Sequence[np.ndarray], statistic: str = "f1",
            level: float = LEVEL) -> Comparison:
    """Configuration ``a`` minus configuration ``b``: the difference of their mean ``statistic`` over seeds, with
    its ``level`` interval, from per-file counts.

    ``a`` and ``b`` hold one array per seed of per-file counts ``(files, 6)``, columns Ntp, Nref, Nsys, S, D, I
    as in ``file_counts.csv`` (``(files, conditions, 6)`` for ``f1_change``), every run scored on the same test
    files in the same order (one dataset). The interval is a t interval whose variance has two parts, each
    estimated from the data: how much each side's mean moves from seed to seed (sample variance over seeds / n),
    and how much the difference moves with the choice of test files (delete-one-file jackknife of the
    difference, paired: both sides score the same files); degrees of freedom by Welch-Satterthwaite. Its
    false-verdict rate and power were measured by simulation before it drew any verdict (docs/statistics.md,
    ``python -m sedbench.calibration``); swapping ``a`` and ``b`` negates the interval exactly. With one seed on
    a side the seed variance is unknown: ``low`` and ``high`` are NaN and :meth:`Comparison.verdict` says
    ``no verdict``."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}: one of {', '.join(STATISTICS)}")
    if a.ndim < 3 or b.ndim < 3 or len(a) == 0 or len(b) == 0:
        raise ValueError("each side needs at least one seed's per-file counts, shaped (seeds, files, 6)")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"the two configurations were scored on different test files ({a.shape[1]} vs "
                         f"{b.shape[1]} files): a paired comparison needs the same files")
    parts = difference_parts(a, b, statistic)
    sa, sb = parts["sa"], parts["sb"]
    std = tuple(float(s.std(ddof=1)) if len(s) > 1 else float("nan") for s in (sa, sb))
    common = dict(statistic=statistic, difference=float(parts["difference"]), level=level,
                  n_seeds=(len(sa), len(sb)), n_files=int(parts["n"][2]), mean=(float(sa.mean()), float(sb.mean())),
                  std=std, variance=(float(parts["var_a"]), float(parts["var_b"]), float(parts["var_files"])))
    if min(len(sa), len(sb)) < 2:
        return Comparison(low=float("nan"), high=float("nan"), se=float("nan"), df=float("nan"), **common)
    low, high, se, df = welch_files(parts, level)
    return Comparison(low=float(low), high=float(high), se=float(se), df=float(df), **common)


def holm(p_values: Sequence[float], alpha: float = 1 - LEVEL) -> list[tuple[bool, float]]:
    """Holm's step-down adjustment of ``p_values`` (family-wise error ``alpha``): for each, in the given order,
    whether it is rejected and the level its interval is shown at, ``1 - alpha / (m - k)`` at its rank ``k``
    (0-based, smallest p first); once a step fails, every later one is kept and shown at the failing step's
    level, so that a shown interval excludes its null value exactly when the hypothesis is rejected."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out: list[tuple[bool, float]] = [(False, 1 - alpha)] * m
    stopped_at = None
    for k, i in enumerate(order):
        level = 1 - alpha / (m - k)
        if stopped_at is None and p_values[i] < alpha / (m - k):
            out[i] = (True, level)
        else:
            stopped_at = stopped_at if stopped_at is not None else level
            out[i] = (False, stopped_at)
    return out


def hierarchical_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], statistic: str = "f1",
                            n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """The percentile hierarchical bootstrap sedbench used before its calibration (seeds and files drawn with
    replacement, 2000 draws). Kept only so that the calibration study can show its false-verdict rate beside the
    chosen method's (76 % with one seed a side and 4 files; 9-17 % with 3-5 seeds): never for a verdict."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    stat = STATISTICS[statistic]
    axis = files_axis(statistic)
    point = float(stat(a).mean() - stat(b).mean())
    rng = np.random.default_rng(seed)
    n_files = a.shape[axis]
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        files = rng.integers(0, n_files, n_files)
        sa, sb = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
        diffs[i] = stat(np.take(a[sa], files, axis=axis)).mean() - stat(np.take(b[sb], files, axis=axis)).mean()
    return Interval(point, *_percentiles(diffs, level))


def verdict(difference, direction: int, margin: float = 0.0) -> str:
    """The verdict rule, written down once: ``holds`` when the interval of (claimed winner - other) lies beyond
    ``margin`` on the claimed side (``direction`` +1: positive; -1: negative), ``contradicted`` when it lies
    beyond it on the other side, ``inconclusive`` when it holds ``margin``; ``no verdict`` for a
    :class:`Comparison` with one seed on a side."""
    if isinstance(difference, Comparison):
        return difference.verdict(direction, margin)
    side = 1 if difference.low > margin else -1 if difference.high < margin else 0
    return "inconclusive" if side == 0 else "holds" if side == direction else "contradicted"


def mean_std_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, tuple[float, float]]:
    """Mean, sample standard deviation and the t interval of the mean over ``values`` (seeds); with one value
    the std is NaN and the interval is (NaN, NaN)."""
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), (float("nan"), float("nan"))
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), (float("nan"), float("nan"))
    from scipy import stats

    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * std / np.sqrt(len(v)))
    return mean, std, (mean - half, mean + half)
