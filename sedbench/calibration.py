"""How often a comparison's verdict is wrong: the calibration study of :func:`sedbench.stats.compare`.

A method that turns per-file counts into ``holds`` / ``contradicted`` is trusted only after simulation has
measured its **false-verdict rate** (two equally good configurations: how often the 95 % interval excludes 0)
and its **power** (a true difference of 3 or 5 F1 points: how often the interval excludes 0 on the right side).

Each simulated study has two configurations, ``seeds`` runs each, scored on the same ``files`` test files.
Per-file counts are drawn the way a run's ``file_counts.csv`` arises, with every effect in F1 points:

* each file has its reference size (about 3,000 active frame-class pairs, log-normal) and its difficulty (a
  base recall in [0.35, 0.75] and a base precision in [0.40, 0.80]), shared by both configurations;
* a run's quality on a file is ``effect + seed + interaction + noise``: the configuration's true advantage
  (0 under the null), a per-seed effect (``seed_sd``: the spread of a configuration's score over seeds), a
  configuration-by-file effect (``interaction_sd``: one configuration suits some files better) and a
  seed-by-file effect (``noise_sd``); recall and precision are the file's base plus that quality;
* true positives are binomial; the system's count follows from the precision; substitutions are half of the
  smaller of misses and false alarms (the rest deletions and insertions).

Three tables. **The grid** (:func:`calibrate`): scenarios spanning what sedbench's studies showed (seed spreads of
0.7 to 6.5 points, unequal spreads on the two sides), 1-6 seeds a side crossed with 3-40 files. **The designs
real studies have** (:data:`STUDIES`, :func:`calibrate_studies`): unequal seed counts and spreads, one dominant
file, seeds that collapse (the failure rule of :func:`sedbench.stats.failed_runs` applied first), test files
mixed from shared source instances (given to the comparison as ``claims.md`` gives them), Holm's levels, the
intersection-union rule and ``f1_change``, each decided exactly as ``claims.md`` decides, with contrasts that
are not sedbench's procedure. **Seeds added in rounds** (:data:`SEQUENTIAL`, :func:`calibrate_sequential`): those
designs looked at after each round of seeds, each look at the level of :func:`sedbench.stats.look_levels`. Every cell
uses one generator seed, so the tables are the same on every run.

A fourth table, **costs** (:data:`COST_DESIGNS`, :func:`calibrate_costs`): the ratio of two configurations' measured
costs (training energy, memory, time: ``sedbench compare --statistic energy_train``, :func:`sedbench.stats.cost_ratio`),
each run's cost log-normal around its configuration's with the seed-to-seed spreads a real study measured (the
training times of the Table IV study on synth: 0.09-0.31 on the log scale), and runs that stop early.

``python -m sedbench.calibration [--studies 1000]`` prints the four tables of docs/statistics.md.
"""

from __future__ import annotations

import argparse
import time
import zlib
from dataclasses import dataclass, replace

import numpy as np

from sedbench.stats import LEVEL, difference_parts, failed_runs, look_levels, welch_files, welch_seeds


@dataclass(frozen=True)
class Scenario:
    name: str
    seed_sd: tuple[float, float]   # F1 points, configuration a and b
    interaction_sd: float          # configuration-by-file, F1 points
    noise_sd: float                # seed-by-file, F1 points
    collapse: tuple[float, float] = (0.0, 0.0)   # probability that a seed of a / b collapses (a failed run)
    collapse_points: float = 17.0  # how far a collapsed run falls, F1 points (validation and test)
    dominant: float = 1.0          # the first test file's reference size, times the others' typical size
    sources: tuple[int, int] | None = None       # (source instances in the test pool, placements per file)
    source_sd: float = 0.0         # configuration-by-source effect, F1 points (reaches every file holding it)


SCENARIOS = (Scenario("quiet", (0.7, 0.7), 0.5, 1.0),
             Scenario("typical", (2.0, 2.0), 2.0, 2.0),
             Scenario("noisy, unequal", (6.5, 0.7), 4.0, 3.0))
SEEDS = (1, 2, 3, 4, 5, 6)
FILES = (3, 4, 10, 20, 40)
EFFECTS = (0.0, 0.03, 0.05)        # true difference a - b in F1 (0: the null)
METHODS = {"welch_files": welch_files, "welch_seeds": welch_seeds}
LIMIT = 0.06                       # the false-verdict rate every design with >= 2 seeds a side must stay under
SHIFT_LOSS = 0.08                  # f1_change designs: F1 lost under a perturbation by both sides under the null
SHIFTS = 4                         # perturbed conditions besides the unperturbed one (pitch shift: -2, -1, +1, +2)


def _draw_files(rng: np.random.Generator, studies: int, files: int, scenario: Scenario):
    n_ref = np.round(3000 * np.exp(rng.normal(0, 0.5, (studies, 1, files)))).astype(np.int64)
    if scenario.dominant != 1.0:
        n_ref[..., 0] = np.round(3000 * scenario.dominant)
    placements = None
    if scenario.sources is not None:
        pool, per_file = scenario.sources
        placements = np.argsort(rng.random((studies, files, pool)), axis=-1)[..., :per_file]  # distinct per file
    return (n_ref, rng.uniform(0.35, 0.75, (studies, 1, files)), rng.uniform(0.40, 0.80, (studies, 1, files)),
            placements)


def _counts(rng: np.random.Generator, quality: np.ndarray, n_ref, base_recall, base_precision) -> np.ndarray:
    recall = np.clip(base_recall + quality, 0.01, 0.99)
    precision = np.clip(base_precision + quality, 0.01, 0.99)
    n_ref = np.broadcast_to(n_ref, recall.shape)
    tp = rng.binomial(n_ref, recall)
    n_sys = np.maximum(tp, np.round(tp / precision).astype(np.int64))
    misses, false_alarms = n_ref - tp, n_sys - tp
    subs = np.minimum(misses, false_alarms) // 2
    return np.stack([tp, n_ref, n_sys, subs, misses - subs, false_alarms - subs], -1)


def simulate_sides(rng: np.random.Generator, studies: int, files: int, scenario: Scenario,
                   sides: list[tuple[int, float, float, float]], conditions: int = 0
                   ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
    """Configurations scored on the same simulated test files: ``sides`` holds (seeds, true effect, seed spread in
    points, collapse probability) per configuration. Returns, per side, its counts ``(studies, seeds, files, 6)``
    (``(studies, seeds, files, 1 + conditions, 6)`` with perturbed ``conditions``, whose F1 falls by
    ``SHIFT_LOSS`` minus the true effect) and its runs' best validation scores ``(studies, seeds)``; and the
    files' source placements ``(studies, files, per file)`` (None without shared sources)."""
    n_ref, base_recall, base_precision, placements = _draw_files(rng, studies, files, scenario)
    out = []
    for seeds, effect, seed_sd, collapse in sides:
        seed = rng.normal(0, seed_sd / 100, (studies, seeds, 1))
        seed = seed - np.where(rng.random((studies, seeds, 1)) < collapse, scenario.collapse_points / 100, 0.0)
        val = 0.55 + seed[..., 0] + rng.normal(0, 0.01, (studies, seeds))
        file_effect = rng.normal(0, scenario.interaction_sd / 100, (studies, 1, files))
        if placements is not None:
            by_source = rng.normal(0, scenario.source_sd / 100, (studies, scenario.sources[0]))
            file_effect = file_effect + np.take_along_axis(
                by_source[:, None, :], placements, axis=-1).mean(axis=-1)[:, None, :]
        quality = seed + file_effect + rng.normal(0, scenario.noise_sd / 100, (studies, seeds, files))
        if conditions:   # the perturbed conditions: the side loses SHIFT_LOSS - effect, varying by file and seed
            loss = (SHIFT_LOSS - effect + rng.normal(0, scenario.interaction_sd / 100, (studies, 1, files, conditions))
                    + rng.normal(0, scenario.noise_sd / 100, (studies, seeds, files, conditions)))
            quality = np.concatenate([quality[..., None], quality[..., None] - loss], axis=-1)
            counts = _counts(rng, quality, n_ref[..., None], base_recall[..., None], base_precision[..., None])
        else:
            counts = _counts(rng, quality + effect, n_ref, base_recall, base_precision)
        out.append((counts, val))
    return out, placements


def simulate_counts(rng: np.random.Generator, studies: int, seeds: int, files: int, scenario: Scenario,
                    effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``studies`` simulated studies: counts of configuration a and b, each ``(studies, seeds, files, 6)``."""
    sides, _ = simulate_sides(rng, studies, files, scenario,
                              [(seeds, effect, scenario.seed_sd[0], 0.0), (seeds, 0.0, scenario.seed_sd[1], 0.0)])
    return sides[0][0], sides[1][0]


@dataclass
class Cell:
    """One design under one scenario and one true effect: how often each method's interval excluded 0."""
    seeds: int
    files: int
    scenario: str
    effect: float
    studies: int
    excluded: dict[str, float]     # method -> share of studies whose interval excludes 0 (any side)
    right_side: dict[str, float]   # method -> share excluding 0 on the true effect's side (power)
    seed_sd: float                 # realized spread of a configuration's F1 over seeds, points (side a)


def run_cell(seeds: int, files: int, scenario: Scenario, effect: float, studies: int, seed: int = 0) -> Cell:
    rng = np.random.default_rng([seed, seeds, files, SCENARIOS.index(scenario), int(round(effect * 1000))])
    (a, val_a), (b, val_b) = simulate_sides(rng, studies, files, scenario, [(seeds, effect, scenario.seed_sd[0], 0.0),
                                                                           (seeds, 0.0, scenario.seed_sd[1], 0.0)])[0]
    parts = difference_parts(a, b, "f1", ~failed_runs(val_a), ~failed_runs(val_b))  # as claims.md decides
    excluded, right = {}, {}
    for name, method in METHODS.items():
        if seeds < 2:  # compare() gives no interval: no verdict is ever drawn
            excluded[name] = right[name] = 0.0
            continue
        low, high, _, _ = method(parts, LEVEL)
        excluded[name] = float(np.mean((low > 0) | (high < 0)))
        right[name] = float(np.mean(low > 0)) if effect > 0 else excluded[name]
    spread = float(np.nanmean(parts["sa"].std(axis=-1, ddof=1)) * 100) if seeds > 1 else float("nan")
    return Cell(seeds, files, scenario.name, effect, studies, excluded, right, spread)


NULL_FACTOR = 4  # null cells get 4x the studies: a 6 % bound needs a Monte Carlo error well under 1 point


def calibrate(studies: int = 1000, seeds=SEEDS, files=FILES, scenarios=SCENARIOS, effects=EFFECTS,
              seed: int = 0) -> list[Cell]:
    """Every design x scenario x effect; ``studies`` per power cell and ``NULL_FACTOR`` times as many per null
    cell (at 1,000 studies a true rate of 5 % reads anywhere from 3.6 to 6.4 %; at 4,000, 4.3 to 5.7 %)."""
    return [run_cell(s, f, sc, e, studies * (NULL_FACTOR if e == 0 else 1), seed)
            for s in seeds for f in files for sc in scenarios for e in effects]


def worst_false_verdict_rate(cells: list[Cell], method: str = "welch_files") -> dict[tuple[int, int], float]:
    """Per design (seeds, files): the largest false-verdict rate over the scenarios."""
    out: dict[tuple[int, int], float] = {}
    for c in cells:
        if c.effect == 0:
            out[(c.seeds, c.files)] = max(out.get((c.seeds, c.files), 0.0), c.excluded[method])
    return out


def table(cells: list[Cell], method: str = "welch_files") -> str:
    """Markdown: per design, the false-verdict rate under each scenario and the power at 3 and 5 points."""
    names = [s.name for s in SCENARIOS if any(c.scenario == s.name for c in cells)]
    effects = sorted({c.effect for c in cells if c.effect > 0})
    by = {(c.seeds, c.files, c.scenario, c.effect): c for c in cells}
    head = ["seeds a side", "test files", *[f"false verdicts, {n}" for n in names],
            *[f"power at {100 * e:.0f} points, {n}" for e in effects for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for s, f in sorted({(c.seeds, c.files) for c in cells}):
        if s < 2:
            lines.append(f"| {s} | {f} | " + " | ".join(["no verdict"] * (len(head) - 2)) + " |")
            continue
        cells_null = [f"{100 * by[(s, f, n, 0.0)].excluded[method]:.1f} %" for n in names]
        cells_power = [f"{100 * by[(s, f, n, e)].right_side[method]:.0f} %" for e in effects for n in names]
        lines.append(f"| {s} | {f} | " + " | ".join(cells_null + cells_power) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- real designs
@dataclass(frozen=True)
class Study:
    """A design that real studies have, decided exactly as ``claims.md`` decides: the failure rule
    (:func:`sedbench.stats.failed_runs`) drops failed runs first, a side left with fewer than two runs gives no
    verdict, the claim holds when every one of its ``comparisons`` (the claimed winner against each other
    configuration) excludes 0 on the claimed side at ``level`` and is contradicted when one excludes it on the
    other side at the Bonferroni level ``1 - (1 - level) / comparisons``."""
    name: str
    scenario: Scenario
    seeds: tuple[int, int]                   # runs of a, and of each other configuration
    files: int = 20
    level: float = LEVEL
    statistic: str = "f1"
    comparisons: int = 1
    use_sources: bool = True                 # compare() is given the files' sources (as claims.md does)
    failure_rule: bool = True                # failed runs are dropped first (as claims.md does)
    sedbench: bool = True                    # False: a procedure sedbench does not use, shown for contrast

    @property
    def bound(self) -> float:
        """The false-verdict rate it must stay under: 6 % at 95 % (the issue's bound, 1.2 x nominal); at the higher
        levels of Holm's steps, twice the nominal rate (Welch's degrees of freedom are estimated, and near 2
        degrees of freedom the far tail is sensitive to them: measured, docs/statistics.md)."""
        return LIMIT if self.level <= LEVEL else 2 * (1 - self.level)


TYPICAL = SCENARIOS[1]
UNEQUAL = Scenario("spreads 2.4 / 7.2", (2.4, 7.2), 2.0, 2.0)
SHARED = Scenario("64 shared sources, 12 a file", (2.0, 2.0), 1.0, 2.0, sources=(64, 12), source_sd=8.0)
SHARED_QUIET = Scenario("64 shared sources, quiet seeds", (0.7, 0.7), 0.5, 1.0, sources=(64, 12), source_sd=8.0)
STUDIES = (
    Study("5 vs 3 seeds, spreads 2.4 / 7.2", UNEQUAL, (5, 3)),
    Study("3 vs 5 seeds, spreads 2.4 / 7.2", UNEQUAL, (3, 5)),
    Study("8 vs 3 seeds, spreads 2.4 / 7.2", UNEQUAL, (8, 3)),
    Study("3 vs 8 seeds, spreads 2.4 / 7.2", UNEQUAL, (3, 8)),
    Study("6 vs 6 seeds, 4 files, one 10x the others", replace(TYPICAL, name="one dominant file", dominant=10.0),
          (6, 6), files=4),
    Study("3 vs 3 seeds, 4 files, one 10x the others", replace(TYPICAL, name="one dominant file", dominant=10.0),
          (3, 3), files=4),
    Study("6 vs 6 quiet seeds, 4 files, one 10x the others, files differ by 4 points",
          Scenario("one dominant file, files dominate", (0.7, 0.7), 4.0, 1.0, dominant=10.0), (6, 6), files=4),
    Study("5 vs 5 seeds, a's seeds collapse 17 points 1 time in 6",
          replace(TYPICAL, name="collapse", collapse=(1 / 6, 0.0)), (5, 5)),
    Study("5 vs 3 seeds, spreads 7.2 / 2.4, b's 3 seeds collapse 17 points 1 time in 6",
          Scenario("collapse, 3 seeds", (7.2, 2.4), 2.0, 2.0, collapse=(0.0, 1 / 6)), (5, 3)),
    Study("4 vs 4 seeds, a's seeds collapse 17 points 1 time in 6",
          replace(TYPICAL, name="collapse", collapse=(1 / 6, 0.0)), (4, 4)),
    Study("5 vs 5 seeds, a's seeds collapse, no failure rule", replace(TYPICAL, name="collapse", collapse=(1 / 6, 0.0)),
          (5, 5), failure_rule=False, sedbench=False),
    Study("5 vs 5 seeds, 20 files sharing 64 sources", SHARED, (5, 5)),
    Study("5 vs 5 seeds, 20 files sharing 64 sources, quiet seeds", SHARED_QUIET, (5, 5)),
    Study("the same, sources not given to compare", SHARED_QUIET, (5, 5), use_sources=False, sedbench=False),
    Study("5 vs 3 seeds at Holm's 99.17 %", UNEQUAL, (5, 3), level=1 - 0.05 / 6),
    Study("3 vs 3 seeds at Holm's 99.38 %", TYPICAL, (3, 3), level=1 - 0.05 / 8),
    Study("CRNN vs CNN and RNN, 5 seeds each (intersection-union)", TYPICAL, (5, 5), comparisons=2),
    Study("change of F1 under 4 pitch shifts, 5 vs 5 seeds", TYPICAL, (5, 5), statistic="f1_change"),
)


@dataclass
class StudyCell:
    study: Study
    effect: float
    studies: int
    verdict: float      # null: share of false verdicts (holds or contradicted); else: share holding (power)
    no_verdict: float   # share of studies a failed run left with fewer than two runs on a side
    failed: float       # share of runs the failure rule dropped


def _overlap(placements: np.ndarray, pool: int) -> np.ndarray:
    """Per study, the files' :func:`sedbench.stats.source_overlap` from their placements."""
    a = np.zeros((*placements.shape[:2], pool))
    np.put_along_axis(a, placements, 1.0, axis=-1)
    a /= a.sum(axis=-1, keepdims=True)
    return a @ np.swapaxes(a, -1, -2)


def run_study(d: Study, effect: float, studies: int, seed: int = 0) -> StudyCell:
    rng = np.random.default_rng([seed, 35, zlib.crc32(d.name.encode()), int(round(effect * 1000))])
    sc = d.scenario
    sides = [(d.seeds[0], effect, sc.seed_sd[0], sc.collapse[0])]
    sides += [(d.seeds[1], 0.0, sc.seed_sd[1], sc.collapse[1])] * d.comparisons
    sims, placements = simulate_sides(rng, studies, d.files, sc, sides,
                                      conditions=SHIFTS if d.statistic == "f1_change" else 0)
    overlap = _overlap(placements, sc.sources[0]) if placements is not None and d.use_sources else None
    keeps = [~failed_runs(val) if d.failure_rule else np.ones(val.shape, bool) for _, val in sims]
    holds, against, decidable = decide([c for c, _ in sims], keeps, overlap, d.statistic, d.level, d.comparisons)
    verdict = holds | against if effect == 0 else holds
    runs = sum(k.size for k in keeps)
    return StudyCell(d, effect, studies, float(verdict.mean()), float((~decidable).mean()),
                     float(sum((~k).sum() for k in keeps) / runs))


def decide(counts: list[np.ndarray], keeps: list[np.ndarray], overlap, statistic: str, level: float,
           comparisons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per simulated study, as claims.md decides a claim: the first configuration against each other one; it
    ``holds`` when every interval at ``level`` excludes 0 on the claimed side, is contradicted (``against``) when
    one excludes it on the other side at the Bonferroni level, and is ``decidable`` when every side kept two runs."""
    a, keep_a = counts[0], keeps[0]
    n = a.shape[0]
    decidable, holds, against = np.ones(n, bool), np.ones(n, bool), np.zeros(n, bool)
    for b, keep_b in zip(counts[1:], keeps[1:], strict=True):
        parts = difference_parts(a, b, statistic, keep_a, keep_b, overlap)
        low, _, _, _ = welch_files(parts, level)
        _, high, _, _ = welch_files(parts, 1 - (1 - level) / comparisons)
        decidable &= (parts["n"][0] >= 2) & (parts["n"][1] >= 2)
        holds &= low > 0
        against |= high < 0
    holds &= decidable
    return holds, against & decidable & ~holds, decidable


def calibrate_studies(studies: int = 1000, designs=STUDIES, effects=EFFECTS, seed: int = 0) -> list[StudyCell]:
    return [run_study(d, e, studies * (NULL_FACTOR if e == 0 else 1), seed) for d in designs for e in effects]


def over_bound(cells: list[StudyCell]) -> list[StudyCell]:
    """The null cells of sedbench's own procedures whose false-verdict rate exceeds their bound."""
    return [c for c in cells if c.effect == 0 and c.study.sedbench and c.verdict > c.study.bound]


def studies_table(cells: list[StudyCell]) -> str:
    """Markdown: per design, its level, the false-verdict rate against its bound, and the power."""
    effects = sorted({c.effect for c in cells if c.effect > 0})
    head = ["design", "files", "level", "false verdicts (bound)", "no verdict", "runs failed",
            *[f"power at {100 * e:.0f} points" for e in effects]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    by = {(c.study, c.effect): c for c in cells}
    for d in dict.fromkeys(c.study for c in cells):
        null = by[(d, 0.0)]
        name = d.name if d.sedbench else f"{d.name} (not sedbench's procedure)"
        lines.append(f"| {name} | {d.files} | {100 * d.level:.2f} % | {100 * null.verdict:.1f} % "
                     f"({100 * d.bound:.1f} %) | {100 * null.no_verdict:.1f} % | {100 * null.failed:.1f} % | "
                     + " | ".join(f"{100 * by[(d, e)].verdict:.0f} %" for e in effects) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- seeds added in rounds
@dataclass(frozen=True)
class Sequential:
    """A study that adds seeds in rounds (issue 38): every configuration starts with ``rounds[0]`` seeds; at each
    look the claim is decided as claims.md decides it (:func:`decide`, failed runs dropped first) at the level
    :func:`sedbench.stats.look_levels` gives that look, and a decided claim stops; an undecided one gets the next
    round's seeds. Its false-verdict rate counts a verdict at any look."""
    name: str
    scenario: Scenario
    rounds: tuple[int, ...] = (3, 5, 8)
    files: int = 20
    comparisons: int = 1
    spending: str | None = "pocock"          # None: every look at 95 % (not sedbench's procedure: a contrast)
    use_sources: bool = True

    @property
    def sedbench(self) -> bool:
        return self.spending is not None

    def levels(self) -> list[float]:
        return look_levels(self.rounds, 1 - LEVEL, self.spending) if self.spending else [LEVEL] * len(self.rounds)


COLLAPSE = replace(TYPICAL, name="collapse", collapse=(1 / 6, 0.0))
SEQUENTIAL = (
    Sequential("3 -> 5 -> 8 seeds, typical spreads", TYPICAL),
    Sequential("3 -> 5 -> 8 seeds, spreads 2.4 / 7.2", UNEQUAL),
    Sequential("3 -> 5 -> 8 seeds, spreads 7.2 / 2.4", replace(UNEQUAL, seed_sd=(7.2, 2.4))),
    Sequential("3 -> 5 -> 8 seeds, quiet seeds", SCENARIOS[0]),
    Sequential("3 -> 5 -> 8 seeds, a's seeds collapse 1 time in 6", COLLAPSE),
    Sequential("3 -> 5 -> 8 seeds, 20 files sharing 64 sources", SHARED),
    Sequential("3 -> 5 -> 8 seeds, 4 files, one 10x the others",
               replace(TYPICAL, name="one dominant file", dominant=10.0), files=4),
    Sequential("3 -> 5 -> 8 seeds, CRNN vs CNN and RNN (intersection-union)", TYPICAL, comparisons=2),
    Sequential("3 -> 4 -> 5 -> 6 -> 8 seeds, spreads 2.4 / 7.2", UNEQUAL, rounds=(3, 4, 5, 6, 8)),
    Sequential("3 -> 5 -> 8 seeds, typical spreads, O'Brien-Fleming spending", TYPICAL, spending="obrien_fleming"),
    Sequential("3 -> 5 -> 8 seeds, spreads 2.4 / 7.2, O'Brien-Fleming spending", UNEQUAL, spending="obrien_fleming"),
    Sequential("3 -> 5 -> 8 seeds, spreads 2.4 / 7.2, every look at 95 %", UNEQUAL, spending=None),
)


@dataclass
class SequentialCell:
    design: Sequential
    effect: float
    studies: int
    verdict: float            # null: share with a verdict at any look; else: share holding (power)
    seeds: float              # mean seeds per configuration when the study stopped
    by_look: list[float]      # share of studies decided at each look


def run_sequential(d: Sequential, effect: float, studies: int, seed: int = 0) -> SequentialCell:
    rng = np.random.default_rng([seed, 38, zlib.crc32(d.name.encode()), int(round(effect * 1000))])
    sc, most = d.scenario, d.rounds[-1]
    sides = [(most, effect, sc.seed_sd[0], sc.collapse[0])] + [(most, 0.0, sc.seed_sd[1], sc.collapse[1])] * \
        d.comparisons
    sims, placements = simulate_sides(rng, studies, d.files, sc, sides)
    overlap = _overlap(placements, sc.sources[0]) if placements is not None and d.use_sources else None
    decided, holds_at_stop = np.zeros(studies, bool), np.zeros(studies, bool)
    stopped = np.full(studies, most, np.float64)
    by_look = []
    for n, level in zip(d.rounds, d.levels(), strict=True):
        counts = [c[:, :n] for c, _ in sims]
        keeps = [~failed_runs(val[:, :n]) for _, val in sims]
        holds, against, _ = decide(counts, keeps, overlap, "f1", level, d.comparisons)
        new = (holds | against) & ~decided
        holds_at_stop |= holds & new
        stopped[new] = n
        decided |= new
        by_look.append(float(new.mean()))
    verdict = decided if effect == 0 else holds_at_stop
    return SequentialCell(d, effect, studies, float(verdict.mean()), float(stopped.mean()), by_look)


def calibrate_sequential(studies: int = 1000, designs=SEQUENTIAL, effects=EFFECTS, seed: int = 0
                         ) -> list[SequentialCell]:
    return [run_sequential(d, e, studies * (NULL_FACTOR if e == 0 else 1), seed) for d in designs for e in effects]


def sequential_table(cells: list[SequentialCell]) -> str:
    """Markdown: per design, its looks' levels, the false-verdict rate over all looks against the 6 % bound, the
    power and the seeds a study used on average."""
    effects = sorted({c.effect for c in cells if c.effect > 0})
    head = ["design", "levels of the looks", "false verdicts (bound 6 %)", "seeds used (null)",
            *[f"power at {100 * e:.0f} points (seeds used)" for e in effects]]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    by = {(c.design, c.effect): c for c in cells}
    for d in dict.fromkeys(c.design for c in cells):
        null = by[(d, 0.0)]
        name = d.name if d.sedbench else f"{d.name} (not sedbench's procedure)"
        levels = ", ".join(f"{100 * v:.2f} %" for v in d.levels())
        lines.append(f"| {name} | {levels} | {100 * null.verdict:.1f} % | {null.seeds:.1f} | "
                     + " | ".join(f"{100 * by[(d, e)].verdict:.0f} % ({by[(d, e)].seeds:.1f})" for e in effects)
                     + " |")
    return "\n".join(lines)


def over_bound_sequential(cells: list[SequentialCell]) -> list[SequentialCell]:
    return [c for c in cells if c.effect == 0 and c.design.sedbench and c.verdict > LIMIT]


@dataclass(frozen=True)
class CostDesign:
    name: str
    seeds: tuple[int, int]
    sd_log: tuple[float, float]      # seed-to-seed spread of log cost, sides a and b
    early: float = 0.0               # probability that a run stops early, spending 30-70 % of a full run


# the spreads a real study measured: Table IV on synth, training time over 8 seeds per configuration, 0.09-0.31 on
# the log scale (its energies are CPU time x watts, so the same)
COST_DESIGNS = (CostDesign("3 vs 3 seeds, steady (0.10)", (3, 3), (0.10, 0.10)),
                CostDesign("3 vs 3 seeds, spread (0.30)", (3, 3), (0.30, 0.30)),
                CostDesign("2 vs 2 seeds, spread (0.30)", (2, 2), (0.30, 0.30)),
                CostDesign("3 vs 8 seeds", (3, 8), (0.20, 0.20)),
                CostDesign("2 vs 5 seeds (a failed seed of 3)", (2, 5), (0.20, 0.20)),
                CostDesign("3 vs 5 seeds, unequal spreads (0.10 vs 0.30)", (3, 5), (0.10, 0.30)),
                CostDesign("3 vs 3 seeds, a quarter stop early", (3, 3), (0.10, 0.10), 0.25),
                CostDesign("5 vs 5 seeds, a quarter stop early", (5, 5), (0.10, 0.10), 0.25))
COST_RATIOS = (1.0, 0.8, 0.67)       # true cost of a over b (1: the null)


@dataclass
class CostCell:
    design: CostDesign
    ratio: float
    studies: int
    verdict: float   # null: share with any verdict; else: share saying a costs less (power)


def run_costs(d: CostDesign, ratio: float, studies: int, seed: int = 0) -> CostCell:
    """``studies`` simulated comparisons of ``d`` with a true cost ratio a / b of ``ratio``, each decided by
    :func:`sedbench.stats.cost_ratio` as ``sedbench compare`` decides."""
    from sedbench.stats import cost_ratio

    rng = np.random.default_rng([seed, 40, zlib.crc32(d.name.encode()), int(round(ratio * 1000))])

    def runs(n: int, sd: float, scale: float) -> np.ndarray:
        cost = scale * np.exp(rng.normal(0.0, sd, (studies, n)))
        stops = rng.random((studies, n)) < d.early
        return np.where(stops, cost * rng.uniform(0.3, 0.7, (studies, n)), cost)

    a, b = runs(d.seeds[0], d.sd_log[0], ratio), runs(d.seeds[1], d.sd_log[1], 1.0)
    sides = np.array([cost_ratio(a[i], b[i]).excludes_one() for i in range(studies)])
    return CostCell(d, ratio, studies, float((sides != 0).mean() if ratio == 1 else (sides < 0).mean()))


def calibrate_costs(studies: int = 1000, designs=COST_DESIGNS, ratios=COST_RATIOS, seed: int = 0) -> list[CostCell]:
    return [run_costs(d, r, studies * (NULL_FACTOR if r == 1 else 1), seed) for d in designs for r in ratios]


def costs_table(cells: list[CostCell]) -> str:
    ratios = sorted({c.ratio for c in cells if c.ratio != 1}, reverse=True)
    head = ["design (spread of log cost)", "false verdicts (bound 6 %)",
            *[f"power at {100 * (1 - r):.0f} % less" for r in ratios]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    by = {(c.design, c.ratio): c for c in cells}
    for d in dict.fromkeys(c.design for c in cells):
        lines.append(f"| {d.name} | {100 * by[(d, 1.0)].verdict:.1f} % | "
                     + " | ".join(f"{100 * by[(d, r)].verdict:.0f} %" for r in ratios) + " |")
    return "\n".join(lines)


def over_bound_costs(cells: list[CostCell]) -> list[CostCell]:
    return [c for c in cells if c.ratio == 1 and c.verdict > LIMIT]


def _summary(cells: list, t0: float, over: list) -> None:
    """A table's last line: its cells, its seconds, and the designs over the 6 % bound."""
    print(f"\n{len(cells)} cells, {time.perf_counter() - t0:.0f} s; "
          + (f"over 6 %: {', '.join(c.design.name for c in over)}" if over else "every design within 6 %"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sedbench.calibration",
                                description="False-verdict rate and power of sedbench.stats.compare by simulation.")
    p.add_argument("--studies", type=int, default=1000,
                   help=f"simulated studies per design, scenario and true difference ({NULL_FACTOR}x for the null)")
    p.add_argument("--method", default="welch_files", choices=list(METHODS))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    cells = calibrate(args.studies)
    print(table(cells, args.method))
    worst = worst_false_verdict_rate(cells, args.method)
    bad = {k: v for k, v in worst.items() if k[0] >= 2 and v > LIMIT}
    largest = max(v for k, v in worst.items() if k[0] >= 2)
    print(f"\n{args.studies} studies per power cell ({NULL_FACTOR * args.studies} per null cell), {len(cells)} "
          f"cells, {time.perf_counter() - t0:.0f} s; largest false-verdict rate with >= 2 seeds: {100 * largest:.1f} %"
          + (f"; over {100 * LIMIT:.0f} %: {sorted(bad)}" if bad else ""))
    t0 = time.perf_counter()
    designs = calibrate_studies(args.studies)
    over = over_bound(designs)
    print("\nDesigns of real studies, decided as claims.md decides:\n\n" + studies_table(designs))
    print(f"\n{len(designs)} cells, {time.perf_counter() - t0:.0f} s; "
          + (f"over their bound: {', '.join(c.study.name for c in over)}" if over else "every design within its bound"))
    t0 = time.perf_counter()
    rounds = calibrate_sequential(args.studies)
    late = over_bound_sequential(rounds)
    print("\nSeeds added in rounds, decided at each look at the level the spending function gives it:\n\n"
          + sequential_table(rounds))
    _summary(rounds, t0, late)
    t0 = time.perf_counter()
    costs = calibrate_costs(args.studies)
    dear = over_bound_costs(costs)
    print("\nCosts (sedbench compare --statistic energy_train and the other measured costs):\n\n" + costs_table(costs))
    _summary(costs, t0, dear)
    return 1 if bad or over or late or dear else 0


if __name__ == "__main__":
    raise SystemExit(main())
