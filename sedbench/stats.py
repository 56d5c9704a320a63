"""Uncertainty of scores: intervals over test files, and differences of configurations over seeds and files.

A run's segment-based F1 and ER are ratios of counts summed over its test files (micro-average,
sed_eval's way), so every statistic here is computed from rows of per-file counts
(:data:`sedbench.metrics.segment.FILE_COUNTS`: Ntp, Nref, Nsys, S, D, I) summed again:

    F1 = 2 Ntp / (Nref + Nsys)            ER = (S + D + I) / Nref

One run's interval over its test files (:func:`bootstrap_files`) is a percentile bootstrap of files.

The comparison of two configurations (:func:`compare`), each trained with several seeds and scored on the same
test files, is a **t interval** on the difference of their mean scores over seeds. Its variance has a part per
side for the seeds (sample variance over seeds / n) and a part for the test files (a delete-one-file jackknife of
the difference, paired; with files that share source instances, a per-source component estimated by moments).
Degrees of freedom by Welch-Satterthwaite, from median-unbiased seed variances, never more than the seeds' own,
and with the files' part reduced when one file dominates the counts (Kish) or files share sources. With one
seed on a side there is no interval and no verdict. Runs that failed by a validation-only rule fixed in advance
(:func:`failed_runs`) are left out before comparing. Its false-verdict rate and power were measured by
simulation, in the designs real studies have, before it drew any verdict (:mod:`sedbench.calibration`,
docs/statistics.md). Also: Holm's step-down (:func:`holm`), equivalence by two one-sided tests
(:meth:`Comparison.equivalence`), the interaction of two datasets' differences (:func:`interaction`) and the
power of a design (:func:`power`).
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
    df_files: float = float("nan")  # degrees of freedom of the files' part (files - 1, or fewer effective files)
    shared_sources: bool = False    # the files' part accounts for test files that share source instances

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

    def equivalence(self, margin: float) -> str:
        """Two one-sided tests (TOST) at this comparison's level: ``equivalent`` when the ``1 - 2 (1 - level)``
        interval (90 % for a 95 % comparison) lies inside ``(-margin, +margin)``, else ``not shown equivalent``;
        ``no verdict`` with one seed on a side. ``margin`` must be fixed before the runs: an interval that holds 0
        says nothing about equality without it."""
        if not self.seed_variance_known:
            return NO_VERDICT
        inner = self.at_level(1 - 2 * (1 - self.level))
        return "equivalent" if -margin < inner.low and inner.high < margin else "not shown equivalent"

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


def _seed_moments(s: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance of the mean (NaN with fewer than two) and count of the kept seeds of ``s`` ``(..., seeds)``."""
    keep = np.ones(s.shape, bool) if keep is None else np.broadcast_to(np.asarray(keep, bool), s.shape)
    n = keep.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(keep, s, 0.0).sum(axis=-1) / n
        ss = np.where(keep, (s - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        var = np.where(n > 1, ss / (n - 1) / n, np.nan)
    return mean, var, n


def source_overlap(sources: Sequence[Sequence[str]]) -> np.ndarray | None:
    """``K = A Aᵀ`` of test files that share source instances: ``A[f, s]`` is the share of file ``f``'s placed
    segments that come from source ``s`` (rows sum to 1). ``K[f, g] > 0`` where files ``f`` and ``g`` share a
    source. None when no two files share one (the files are then independent as far as sources go)."""
    ids = sorted({s for file in sources for s in file})
    index = {s: i for i, s in enumerate(ids)}
    a = np.zeros((len(sources), len(ids)))
    for f, file in enumerate(sources):
        for s in file:
            a[f, index[s]] += 1
    a /= np.maximum(a.sum(axis=1, keepdims=True), 1)
    k = a @ a.T
    return k if (np.count_nonzero(k) > np.count_nonzero(np.diag(k))) else None


def _shared_file_variance(pseudo: np.ndarray, overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variance of the mean of ``pseudo`` ``(..., files)`` (jackknife pseudo-values of the difference) when files
    share sources: the covariance of two files' values is ``sigma_e^2`` on the diagonal plus ``sigma_u^2 K[f, g]``
    (a configuration-by-source effect reaches every file that holds the source, in proportion to its share).
    Both components are estimated by the method of moments from the centred values (two quadratic forms whose
    expectations are exact, so the centring's bias is accounted for); a negative component is set to zero, and
    the result is never below the independent files' variance. Its degrees of freedom are Satterthwaite's for a
    quadratic form, ``V^2 / tr(M S M S)`` with ``S`` the estimated covariance: a variance read off 20 files that
    share 64 sources carries far fewer than 19. Returns (variance of the mean, its degrees of freedom)."""
    n = pseudo.shape[-1]
    k = np.broadcast_to(overlap, (*pseudo.shape[:-1], n, n))
    p_mat = np.eye(n) - 1.0 / n
    r = pseudo - pseudo.mean(axis=-1, keepdims=True)
    q1 = (r ** 2).sum(axis=-1)
    q2 = np.einsum("...f,...fg,...g->...", r, k, r)
    pk = p_mat @ k                                           # (..., n, n)
    pkp = pk @ p_mat
    t_p, t_pk = n - 1.0, np.trace(pk, axis1=-2, axis2=-1)
    t_pkpk = np.einsum("...fg,...gf->...", pk, pk)
    total = k.sum(axis=(-2, -1))
    det = t_p * t_pkpk - t_pk * t_pk
    with np.errstate(invalid="ignore", divide="ignore"):
        # sigma_e = (t_pkpk q1 - t_pk q2) / det, sigma_u = (t_p q2 - t_pk q1) / det;
        # V = (n sigma_e + total sigma_u) / n^2
        g1 = (n * t_pkpk - total * t_pk) / det / n ** 2       # V = g1 q1 + g2 q2
        g2 = (total * t_p - n * t_pk) / det / n ** 2
        sig_e = (q1 * t_pkpk - q2 * t_pk) / det
        sig_u = (t_p * q2 - t_pk * q1) / det
        bad = ~(np.abs(det) > 1e-12 * t_p * np.abs(t_pkpk)) | (sig_u <= 0)
        only_u = ~bad & (sig_e < 0)
        sig_u = np.where(bad, 0.0, np.where(only_u, q1 / t_pk, sig_u))
        sig_e = np.where(bad, q1 / t_p, np.where(only_u, 0.0, sig_e))
        g1 = np.where(bad, 1.0 / (n * (n - 1)), np.where(only_u, total / (n ** 2 * t_pk), g1))
        g2 = np.where(bad | only_u, 0.0, g2)
        shared = (n * sig_e + sig_u * total) / n ** 2
        independent = q1 / (n * (n - 1))
        g1 = np.where(shared < independent, 1.0 / (n * (n - 1)), g1)
        g2 = np.where(shared < independent, 0.0, g2)
        var = np.maximum(shared, independent)
        m = g1[..., None, None] * p_mat + g2[..., None, None] * pkp
        s = sig_e[..., None, None] * np.eye(n) + sig_u[..., None, None] * k
        ms = m @ s
        df = np.where(var > 0, var ** 2 / np.einsum("...fg,...gf->...", ms, ms), n - 1.0)
    return var, np.minimum(df, n - 1.0)


def difference_parts(a: np.ndarray, b: np.ndarray, statistic: str = "f1", keep_a: np.ndarray | None = None,
                     keep_b: np.ndarray | None = None, overlap: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The pieces of :func:`compare`, vectorized over any leading axes (many simulated studies at once):
    ``a`` ``(..., seeds_a, files, [conditions,] 6)``, ``b`` likewise with the same files; ``keep_a`` / ``keep_b``
    ``(..., seeds)`` the runs that take part (the others failed: :func:`failed_runs`); ``overlap`` the files'
    :func:`source_overlap` (``(..., files, files)``) when they share source instances.

    Returns per-seed statistics ``sa`` and ``sb``, the ``difference`` of their means over the kept runs, the seed
    variance of each mean (``var_a``, ``var_b``; NaN with fewer than two runs), ``var_files``, the variance over
    test files of the difference (delete-one-file jackknife; with ``overlap``, its pseudo-values' variance with
    a source component, at least the independent one), ``df_files``, the degrees of freedom of that part:
    ``files - 1``, reduced to Kish's effective number of files less one (each file's share of the counts: one
    dominating file leaves about one) and, with shared sources, to the Satterthwaite degrees of freedom of the
    shared-source variance; and ``n`` = (kept runs of a, of b, files)."""
    stat, axis = STATISTICS[statistic], files_axis(statistic)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa, sb = stat(a), stat(b)                                   # (..., seeds)
    mean_a, var_a, n_a = _seed_moments(sa, keep_a)
    mean_b, var_b, n_b = _seed_moments(sb, keep_b)
    n_files = a.shape[axis]

    def left_out(x, keep):  # (..., files): the kept seeds' mean statistic with each file left out in turn
        rest = x.sum(axis=axis, keepdims=True) - x
        s = stat(np.expand_dims(rest, axis))                        # (..., seeds, files)
        w = np.ones(s.shape[:-1], bool) if keep is None else np.broadcast_to(np.asarray(keep, bool), s.shape[:-1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return (s * w[..., None]).sum(axis=-2) / w.sum(axis=-1)[..., None]

    def size(x, keep):  # (..., files): each file's Nref + Nsys summed over the kept runs (and conditions)
        t = x[..., 1] + x[..., 2]
        if statistic == "f1_change":
            t = t.sum(axis=-1)
        w = np.ones(t.shape[:-1], bool) if keep is None else np.broadcast_to(np.asarray(keep, bool), t.shape[:-1])
        return (t * w[..., None]).sum(axis=-2)

    diff = mean_a - mean_b
    if n_files > 1:
        jack = left_out(a, keep_a) - left_out(b, keep_b)            # (..., files)
        pseudo = n_files * diff[..., None] - (n_files - 1) * jack
        var_files = ((pseudo - pseudo.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1) / (n_files * (n_files - 1))
        df_shared = np.full(var_files.shape, n_files - 1.0)
        if overlap is not None:
            var_files, df_shared = _shared_file_variance(pseudo, np.asarray(overlap, np.float64))
        w = size(a, keep_a) + size(b, keep_b)
        with np.errstate(invalid="ignore", divide="ignore"):
            kish = np.nan_to_num(w.sum(axis=-1) ** 2 / (w ** 2).sum(axis=-1), nan=n_files)
        df_files = np.maximum(np.minimum(kish - 1, df_shared), 0.0)
    else:
        var_files, df_files = np.zeros(diff.shape), np.zeros(diff.shape)
    return {"sa": sa, "sb": sb, "difference": diff, "var_a": var_a, "var_b": var_b, "var_files": var_files,
            "df_files": df_files, "n": (n_a, n_b, n_files)}


def welch_files(parts: dict, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The chosen method: ``se^2 = var_a + var_b + var_files`` (seed variance of each side's mean, and the
    variance over test files of the difference), degrees of freedom by Welch-Satterthwaite from ``seeds_a - 1``,
    ``seeds_b - 1`` and the files' ``df_files`` (``files - 1``, less when one file dominates the counts or files
    share sources), never more than the Welch-Satterthwaite degrees of freedom of the two seed parts alone: with
    2-3 seeds a side whose seed variance came out small by chance would otherwise hand the files' many degrees of
    freedom to the whole (the calibration measured 11 % false verdicts at 2 seeds x 40 files with unequal seed
    spreads without that cap, 1.7 % with it).

    In the degrees of freedom (not in ``se``) each seed variance is taken median-unbiased, times
    ``(n - 1) / median(chi2(n - 1))``: a side with few seeds underestimates its variance more often than not,
    and with 3 seeds of a wide spread against 5-8 of a narrow one plain Welch-Satterthwaite read 5.8-5.9 % false
    verdicts; with equal seed counts the factors cancel and nothing changes. Returns (low, high, se, df)."""
    from scipy import stats

    n_a, n_b, _ = parts["n"]
    n_a, n_b = np.asarray(n_a, np.float64), np.asarray(n_b, np.float64)
    va, vb, vf, df_f = parts["var_a"], parts["var_b"], parts["var_files"], parts["df_files"]
    se2 = va + vb + vf
    with np.errstate(invalid="ignore", divide="ignore"):
        wa = va * (n_a - 1) / stats.chi2.median(np.maximum(n_a - 1, 1))
        wb = vb * (n_b - 1) / stats.chi2.median(np.maximum(n_b - 1, 1))
        seeds = wa ** 2 / np.maximum(n_a - 1, 1) + wb ** 2 / np.maximum(n_b - 1, 1)
        files = np.where(vf > 0, vf ** 2 / np.where(df_f > 0, df_f, np.nan), 0.0)
        denom = seeds + np.nan_to_num(files, nan=np.inf)
        df = np.minimum(np.where(denom > 0, (wa + wb + vf) ** 2 / denom, np.inf),
                        np.where(seeds > 0, (wa + wb) ** 2 / seeds, np.inf))
        half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(se2)
    half = np.where(se2 > 0, half, 0.0)
    d = parts["difference"]
    return d - half, d + half, np.sqrt(se2), df


def welch_seeds(parts: dict, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A candidate the calibration rejects as the default: Welch's t interval over the per-seed statistics alone
    (the test files taken as fixed: their sampling variance is ignored)."""
    return welch_files({**parts, "var_files": np.zeros_like(parts["difference"]),
                        "df_files": np.zeros_like(parts["difference"])}, level)


def compare(a: Sequence[np.ndarray], b: Sequence[np.ndarray], statistic: str = "f1",
            level: float = LEVEL, sources: Sequence[Sequence[str]] | None = None) -> Comparison:
    """Configuration ``a`` minus configuration ``b``: the difference of their mean ``statistic`` over seeds, with
    its ``level`` interval, from per-file counts.

    ``a`` and ``b`` hold one array per seed of per-file counts ``(files, 6)``, columns Ntp, Nref, Nsys, S, D, I
    as in ``file_counts.csv`` (``(files, conditions, 6)`` for ``f1_change``), every run scored on the same test
    files in the same order (one dataset). The interval is a t interval whose variance has two parts, each
    estimated from the data: how much each side's mean moves from seed to seed (sample variance over seeds / n),
    and how much the difference moves with the choice of test files (delete-one-file jackknife of the
    difference, paired: both sides score the same files); degrees of freedom by Welch-Satterthwaite, the files'
    part reduced when one file holds most of the counts (Kish's effective number of files).

    ``sources``: per test file, the ids of the source instances (clips) mixed into it, one id per placed
    segment (``metadata/sources.tsv``). Files that share sources are not independent: a configuration that
    suits one source does better on every file holding it. The files' part then has a component per source,
    estimated from how the files' jackknife values move together with their shared sources, and its degrees of
    freedom shrink accordingly (:func:`difference_parts`). Without ``sources`` files count as
    independent.

    Its false-verdict rate and power were measured by simulation before it drew any verdict, in the designs real
    studies have (docs/statistics.md, ``python -m sedbench.calibration``); swapping ``a`` and ``b`` negates the
    interval exactly. With one seed on a side the seed variance is unknown: ``low`` and ``high`` are NaN and
    :meth:`Comparison.verdict` says ``no verdict``."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}: one of {', '.join(STATISTICS)}")
    if a.ndim < 3 or b.ndim < 3 or len(a) == 0 or len(b) == 0:
        raise ValueError("each side needs at least one seed's per-file counts, shaped (seeds, files, 6)")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"the two configurations were scored on different test files ({a.shape[1]} vs "
                         f"{b.shape[1]} files): a paired comparison needs the same files")
    if sources is not None and len(sources) != a.shape[1]:
        raise ValueError(f"sources lists {len(sources)} files, the counts {a.shape[1]}: one entry per test file")
    overlap = source_overlap(sources) if sources is not None else None
    parts = difference_parts(a, b, statistic, overlap=overlap)
    sa, sb = parts["sa"], parts["sb"]
    std = tuple(float(s.std(ddof=1)) if len(s) > 1 else float("nan") for s in (sa, sb))
    common = dict(statistic=statistic, difference=float(parts["difference"]), level=level,
                  n_seeds=(len(sa), len(sb)), n_files=int(parts["n"][2]), mean=(float(sa.mean()), float(sb.mean())),
                  std=std, variance=(float(parts["var_a"]), float(parts["var_b"]), float(parts["var_files"])),
                  df_files=float(parts["df_files"]), shared_sources=overlap is not None)
    if min(len(sa), len(sb)) < 2:
        return Comparison(low=float("nan"), high=float("nan"), se=float("nan"), df=float("nan"), **common)
    low, high, se, df = welch_files(parts, level)
    return Comparison(low=float(low), high=float(high), se=float(se), df=float(df), **common)


def power(c: Comparison, delta: float, level: float | None = None, seeds: tuple[int, int] | None = None) -> float:
    """The probability that a comparison of this design decides for the claimed side: that its ``level`` interval
    lies above the threshold when the true difference exceeds the threshold by ``delta`` (the stated difference,
    or for non-inferiority the margin when the two are truly equal). The design is ``c``'s: each side's seed
    spread (``c.std``), its files' variance and degrees of freedom, with ``seeds`` runs a side (default ``c``'s).
    A noncentral t with the degrees of freedom :func:`welch_files` would use. NaN without seed variance."""
    from scipy import stats

    n_a, n_b = seeds or c.n_seeds
    if min(n_a, n_b) < 2 or not all(math.isfinite(s) for s in c.std):
        return float("nan")
    level = c.level if level is None else level
    parts = {"var_a": np.float64(c.std[0] ** 2 / n_a), "var_b": np.float64(c.std[1] ** 2 / n_b),
             "var_files": np.float64(c.variance[2]), "df_files": np.float64(c.df_files),
             "n": (n_a, n_b, c.n_files), "difference": np.float64(0.0)}
    _, _, se, df = welch_files(parts, level)
    if not se > 0:
        return 1.0 if delta > 0 else 0.0
    crit = stats.t.ppf(0.5 + level / 2, df)
    return float(stats.nct.sf(crit, df, delta / se))


def fewest_seeds(power_at: Callable[[int], float], target: float = 0.8, most: int = 100) -> int | None:
    """The fewest seeds a side (2 to ``most``) at which ``power_at(seeds)`` reaches ``target``; None past it."""
    return next((n for n in range(2, most + 1) if power_at(n) >= target), None)


def seeds_for_power(c: Comparison, delta: float, level: float | None = None, target: float = 0.8,
                    most: int = 100) -> int | None:
    """The fewest seeds a side (equal on both) at which :func:`power` reaches ``target``; None past ``most``."""
    return fewest_seeds(lambda n: power(c, delta, level, (n, n)), target, most)


# ---------------------------------------------------------------------------------------------- failed runs
# A run "failed" by a rule that reads validation only, fixed before any study that uses it (issue 35): its best
# validation score is not finite, or lies far below its configuration's other seeds: more than
# max(FAIL_FLOOR, FAIL_MADS x the others' scaled MAD) under their median. It needs at least FAIL_MIN_OTHERS
# other seeds: with two, their MAD is too unstable to tell a collapse from a wide seed spread (the calibration
# measured 1.7 % of normal runs dropped and a biased comparison with a 10-point floor and two others).
FAIL_FLOOR = 0.15        # F1: 15 points
FAIL_MADS = 5.0          # scaled median absolute deviations (1.4826 x MAD estimates a normal's sd)
FAIL_MIN_OTHERS = 3
FAIL_RULE = (f"best validation score not finite, or more than max({100 * FAIL_FLOOR:g} points, {FAIL_MADS:g} x the "
             "scaled MAD of the configuration's other seeds) below their median (needs at least "
             f"{FAIL_MIN_OTHERS} other seeds)")


def failed_runs(val_scores: np.ndarray) -> np.ndarray:
    """Which runs of one configuration failed (``FAIL_RULE``): ``val_scores`` ``(..., seeds)`` are the runs' best
    validation scores (larger is better; NaN or inf for a run whose loss went non-finite); vectorized over
    leading axes (many simulated studies). Returns a boolean array of the same shape."""
    v = np.asarray(val_scores, np.float64)
    failed = ~np.isfinite(v)
    n = v.shape[-1]
    if n - 1 < FAIL_MIN_OTHERS:
        return failed
    import warnings

    out = failed.copy()
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # nanmedian of an all-NaN row: "not enough others"
        for j in range(n):
            others = np.delete(np.where(failed, np.nan, v), j, axis=-1)
            enough = np.isfinite(others).sum(axis=-1) >= FAIL_MIN_OTHERS
            med = np.nanmedian(others, axis=-1) if others.size else np.full(v.shape[:-1], np.nan)
            mad = 1.4826 * np.nanmedian(np.abs(others - med[..., None]), axis=-1)
            far = v[..., j] < med - np.maximum(FAIL_FLOOR, FAIL_MADS * mad)
            out[..., j] |= enough & far
    return out


@dataclass(frozen=True)
class Interaction:
    """Whether a difference changes between two datasets: ``first.difference - second.difference`` with its
    interval, the two comparisons being independent (other runs, other files)."""
    difference: float
    low: float
    high: float
    level: float
    se: float
    df: float

    def verdict(self) -> str:
        if not math.isfinite(self.low):
            return NO_VERDICT
        return "differs" if self.low > 0 or self.high < 0 else "no difference shown"


def interaction(first: Comparison, second: Comparison, level: float = LEVEL) -> Interaction:
    """The interaction test a claim such as "A beats B on one dataset and not on the other" needs: the difference
    of two datasets' differences, ``se^2 = se_1^2 + se_2^2``, degrees of freedom by Welch-Satterthwaite from the
    two comparisons' own. Two verdicts that differ (one holds, one inconclusive) are not such a test."""
    se2 = first.se ** 2 + second.se ** 2
    d = first.difference - second.difference
    if not (first.seed_variance_known and second.seed_variance_known) or not math.isfinite(se2):
        return Interaction(d, float("nan"), float("nan"), level, float("nan"), float("nan"))
    denom = (first.se ** 4 / first.df if first.df > 0 else 0.0) + (second.se ** 4 / second.df if second.df > 0 else 0.0)
    df = se2 ** 2 / denom if denom > 0 else float("inf")
    half = _t_half(math.sqrt(se2), df, level) if se2 > 0 else 0.0
    return Interaction(d, d - half, d + half, level, math.sqrt(se2), df)


SPENDING = ("pocock", "obrien_fleming")


def spent(fraction: float, alpha: float = 1 - LEVEL, kind: str = "pocock") -> float:
    """The share of ``alpha`` a study that adds seeds in rounds may have spent once it has ``fraction`` of its
    planned seeds (Lan-DeMets spending functions): ``pocock``, ``alpha ln(1 + (e - 1) t)``, spends it about evenly
    over the looks; ``obrien_fleming``, ``2 - 2 Phi(z_(1 - alpha/2) / sqrt(t))``, keeps nearly all of it for the
    last look."""
    from scipy import stats

    t = min(max(float(fraction), 0.0), 1.0)
    if kind == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    if kind == "obrien_fleming":
        return 0.0 if t == 0 else float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))
    raise ValueError(f"spending function {kind!r}: one of {', '.join(SPENDING)}")


def look_levels(rounds: Sequence[int], alpha: float = 1 - LEVEL, kind: str = "pocock") -> list[float]:
    """The confidence level of each look of a study that adds seeds in ``rounds`` (seeds per configuration at each
    look, increasing): look k spends ``spent(t_k) - spent(t_(k-1))`` of ``alpha``, ``t_k`` its share of the last
    round's seeds. The looks' alphas sum to ``alpha``, so by Bonferroni's inequality the chance of any false
    verdict over all looks is at most ``alpha`` if each look's interval holds its level, whatever the looks'
    correlation (sedbench.calibration measures it, and the power, in the designs of real studies)."""
    rounds = [int(r) for r in rounds]
    if not rounds or rounds != sorted(set(rounds)) or rounds[0] < 2:
        raise ValueError(f"rounds {rounds}: increasing seed counts, the first at least 2")
    fractions = [r / rounds[-1] for r in rounds]
    spends = [spent(t, alpha, kind) for t in fractions]
    return [1 - (s - prev) for s, prev in zip(spends, [0.0, *spends[:-1]], strict=True)]


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


@dataclass
class Ratio:
    """A measured cost of A over B's (energy, memory, time: positive, per run): the ratio of the two sides' geometric
    means and its interval on the logarithms (costs scale: a seed that trains twice as long spends twice the
    energy): Welch's degrees of freedom with the larger of Welch's and the pooled standard error (Welch's alone
    gave 6.4 % false verdicts with 2 seeds against 5: a 2-seed side's variance is often underestimated; the
    calibration, sedbench.calibration.COST_DESIGNS, in docs/statistics.md). NaN interval with one run on a side."""

    ratio: float
    low: float
    high: float
    df: float
    n: tuple[int, int]
    geometric_mean: tuple[float, float]

    def excludes_one(self) -> int:
        """+1: the interval lies above 1 (A costs more), -1: below 1, 0: it holds 1 (or there is none)."""
        return 1 if self.low > 1 else -1 if self.high < 1 else 0


def cost_ratio(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Ratio:
    """A's cost over B's with its ``level`` interval (:class:`Ratio`); the false-verdict rate and the power of
    this rule in the designs studies have are measured in tests/test_stats.py and docs/statistics.md."""
    la, lb = (np.log(np.asarray([x for x in v if np.isfinite(x) and x > 0], np.float64)) for v in (a, b))
    if not len(la) or not len(lb):
        raise ValueError("a side has no positive, finite cost")
    diff = float(la.mean() - lb.mean())
    gm = (float(np.exp(la.mean())), float(np.exp(lb.mean())))
    if len(la) < 2 or len(lb) < 2:
        return Ratio(math.exp(diff), math.nan, math.nan, math.nan, (len(la), len(lb)), gm)
    na, nb = len(la), len(lb)
    va, vb = la.var(ddof=1) / na, lb.var(ddof=1) / nb
    if va + vb == 0:  # every run of both sides cost exactly the same: the ratio is exact
        return Ratio(math.exp(diff), math.exp(diff), math.exp(diff), math.inf, (na, nb), gm)
    pooled = ((na - 1) * la.var(ddof=1) + (nb - 1) * lb.var(ddof=1)) / (na + nb - 2) * (1 / na + 1 / nb)
    se = math.sqrt(max(va + vb, pooled))
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    half = _t_half(se, df, level)
    return Ratio(math.exp(diff), math.exp(diff - half), math.exp(diff + half), df, (len(la), len(lb)), gm)
