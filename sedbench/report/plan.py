"""``sedbench plan``: how many seeds a study needs, from a finished pilot or study.

For each configuration: its runs, how many failed (the validation-only rule, ``sedbench.stats.FAIL_RULE``), and
how far its test F1 spreads from seed to seed. For each declared claim (:data:`sedbench.report.claims.CLAIMS`),
compared as ``claims.md`` compares it: the share of the comparison's variance that comes from the test files
(more seeds cannot shrink that part), the power the design had at the level the claim would be decided at for
its planned difference (or, for non-inferiority, with the shapes exactly equal), and the seeds a side that would
give the target power. The spreads are estimates from the pilot's seeds (with 2-3 seeds they are rough); the
planning level of a secondary claim is Holm's first step, ``1 - 0.05 / m`` over the ``m`` secondary claims that
can be tested, the strictest level it can meet.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace

from sedbench.report.claims import (
    ALPHA,
    CLAIMS,
    DIFFERENCE,
    UNDERPOWERED,
    Result,
    claim_power,
    describe,
    evaluate_claims,
    failed_in,
    run_readers,
    seeds_for,
)
from sedbench.report.collect import TrialRow, configurations


@dataclass
class ConfigPlan:
    label: str
    runs: int
    failed: int
    mean: float          # test F1 over the runs that did not fail
    std: float           # its standard deviation over those runs (NaN with fewer than two)
    judged: bool         # enough runs for the failure rule to judge them against each other


@dataclass
class ClaimPlan:
    result: Result
    level: float
    power: float
    seeds: int | None
    files_share: float   # the largest share of a comparison's variance that the test files contribute
    note: str = ""
    power_at: dict[int, float] = field(default_factory=dict)  # power with N seeds a side (e.g. the last round's)


def plan_configurations(rows: list[TrialRow]) -> list[ConfigPlan]:
    from sedbench.stats import FAIL_MIN_OTHERS

    out = []
    for (_, _), group in sorted(configurations(rows).items()):
        failed = failed_in(group)
        kept = [r.get("test/f1_frm") for r in group if r not in failed]
        kept = [v for v in kept if math.isfinite(v)]
        out.append(ConfigPlan(describe(group), len(group), len(failed),
                              statistics.fmean(kept) if kept else float("nan"),
                              statistics.stdev(kept) if len(kept) > 1 else float("nan"),
                              len(group) - 1 >= FAIL_MIN_OTHERS))
    return out


def with_files(result: Result, files: int) -> None:
    """Plan ``result`` as if its test split had ``files`` files like the pilot's: each comparison's files' variance
    scaled by the pilot's files / ``files`` (the per-file variance unchanged), its degrees of freedom likewise."""
    for t in result.tests:
        c = t.comparison
        scale = files / c.n_files
        variance = (*c.variance[:2], c.variance[2] / scale, *c.variance[3:])
        t.comparison = replace(c, variance=variance, df_files=(c.df_files + 1) * scale - 1, n_files=files)


def plan_claims(rows: list[TrialRow], fetch, difference: float = DIFFERENCE, target: float = 0.8,
                claims=CLAIMS, alpha: float = ALPHA, files: int | None = None,
                seeds_at: tuple[int, ...] = ()) -> list[ClaimPlan]:
    """Each declared claim's plan (``claims``: the study's set). ``alpha``: what the claim's final test spends
    (5 %; a study that adds seeds in rounds: its last look's share, :func:`sedbench.stats.look_levels`).
    ``files``: planned as if the test split had that many files (:func:`with_files`); ``seeds_at``: the power
    also at these seeds a side (e.g. the last round's)."""
    results = evaluate_claims(rows, **run_readers(fetch), claims=claims)
    if files:
        for r in results:
            if r.tests and all(t.comparison is not None for t in r.tests):
                with_files(r, files)
    planned = [r for r in results if r.tests and all(t.comparison is not None for t in r.tests)]
    m = max(1, sum(not r.claim.primary for r in planned))
    out = []
    for r in results:
        if r not in planned:
            out.append(ClaimPlan(r, float("nan"), float("nan"), None, float("nan"), r.todo or "not tested"))
            continue
        level = 1 - alpha if r.claim.primary else 1 - alpha / m
        shares = [c.variance[2] / sum(c.variance) for t in r.tests if sum((c := t.comparison).variance) > 0]
        if any(not t.comparison.seed_variance_known for t in r.tests):
            out.append(ClaimPlan(r, level, float("nan"), None, max(shares, default=float("nan")),
                                 "fewer than 2 runs that did not fail on a side: no seed spread to plan from. "
                                 "Fix: a pilot with at least 2 seeds (better 3) of each compared configuration"))
            continue
        out.append(ClaimPlan(r, level, claim_power(r, level, difference=difference),
                             seeds_for(r, level, target, difference), max(shares, default=float("nan")),
                             power_at={n: claim_power(r, level, (n, n), difference) for n in seeds_at}))
    return out


def as_markdown(configs: list[ConfigPlan], claims: list[ClaimPlan], difference: float, target: float) -> str:
    at = sorted({n for p in claims for n in p.power_at})

    def pts(v: float) -> str:
        return "–" if not math.isfinite(v) else f"{100 * v:.1f}"

    lines = ["## Configurations", "", "| configuration | runs | failed | test F1 (mean, points) | seed spread (sd, "
             "points) |", "|---|---:|---:|---:|---:|"]
    for c in configs:
        failed = f"{c.failed}" if c.judged else f"{c.failed} (rule needs 4 runs)"
        lines.append(f"| {c.label} | {c.runs} | {failed} | {pts(c.mean)} | {pts(c.std)} |")
    lines += ["", f"## Claims: power for a true difference of {100 * difference:g} points (non-inferiority: the "
              f"shapes equal), seeds a side for {100 * target:.0f} %", "",
              "| claim | level | design | files' share of the variance | power now | "
              + "".join(f"power at {n} seeds | " for n in at)
              + f"seeds a side for {100 * target:.0f} % | note |", "|---|---:|---|---:|---:|" + "---:|" * len(at)
              + "---:|---|"]
    for p in claims:
        r = p.result
        design = "; ".join(sorted({f"{t.comparison.n_seeds[0]} vs {t.comparison.n_seeds[1]} seeds, "
                                   f"{t.comparison.n_files} files" for t in r.tests if t.comparison is not None}))
        level = f"{100 * p.level:.2f} %" if math.isfinite(p.level) else "–"
        share = f"{100 * p.files_share:.0f} %" if math.isfinite(p.files_share) else "–"
        power = f"{100 * p.power:.0f} %" if math.isfinite(p.power) else "–"
        seeds = (str(p.seeds) if p.seeds else "over 100") if math.isfinite(p.power) else "–"
        note = p.note or ("underpowered by design as it stands" if p.power < UNDERPOWERED else "")
        if math.isfinite(p.files_share) and p.files_share > 0.5 and not p.note:
            note = (note + "; " if note else "") + "the test files dominate: more or larger test files, not seeds"
        extra = "".join(f"{100 * p.power_at[n]:.0f} % | " if math.isfinite(p.power_at.get(n, math.nan)) else "– | "
                        for n in at)
        lines.append(f"| {r.claim.name} | {level} | {design or '–'} | {share} | {power} | {extra}{seeds} | {note} |")
    return "\n".join(lines)
