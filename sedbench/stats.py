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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def hierarchical_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], statistic: str = "f1",
                            n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """Mean score of configuration ``a`` minus that of ``b``, with its interval over seeds and files.

    ``a`` and ``b`` are per-seed arrays of per-file counts ``(files, 6)`` (``(files, conditions, 6)`` for
    ``f1_change``), every run on the same test files in the same order (one sweep, one dataset)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)  # (seeds, files, [conditions,] 6)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"the two configurations were scored on different test files ({a.shape[1]} vs "
                         f"{b.shape[1]}): a paired comparison needs the same files")
    stat = STATISTICS[statistic]
    point = float(stat(a).mean() - stat(b).mean())
    rng = np.random.default_rng(seed)
    n_files = a.shape[1]
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        files = rng.integers(0, n_files, n_files)
        sa, sb = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
        diffs[i] = stat(a[sa][:, files]).mean() - stat(b[sb][:, files]).mean()
    return Interval(point, *_percentiles(diffs, level))


def verdict(difference: Interval, direction: int) -> str:
    """``holds`` when the interval of (claimed winner - other) excludes 0 on the claimed side (``direction``
    +1: the claim says the difference is positive; -1: negative), ``contradicted`` when it excludes 0 on the
    other side, ``inconclusive`` when it holds 0."""
    side = difference.excludes_zero()
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
