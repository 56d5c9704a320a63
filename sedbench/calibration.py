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

Scenarios span what sedbench's studies showed: seed spreads of 0.7 to 6.5 points (``claims`` on synth and
esc10_mix, 3 seeds per cell) and unequal spreads on the two sides. Designs cross 1-6 seeds with 3-40 files.
The studies of one design use one generator seed, so the table is the same on every run.

``python -m sedbench.calibration [--studies 1000]`` prints the table of docs/statistics.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from sedbench.stats import LEVEL, difference_parts, welch_files, welch_seeds


@dataclass(frozen=True)
class Scenario:
    name: str
    seed_sd: tuple[float, float]   # F1 points, configuration a and b
    interaction_sd: float          # configuration-by-file, F1 points
    noise_sd: float                # seed-by-file, F1 points


SCENARIOS = (Scenario("quiet", (0.7, 0.7), 0.5, 1.0),
             Scenario("typical", (2.0, 2.0), 2.0, 2.0),
             Scenario("noisy, unequal", (6.5, 0.7), 4.0, 3.0))
SEEDS = (1, 2, 3, 4, 5, 6)
FILES = (3, 4, 10, 20, 40)
EFFECTS = (0.0, 0.03, 0.05)        # true difference a - b in F1 (0: the null)
METHODS = {"welch_files": welch_files, "welch_seeds": welch_seeds}
LIMIT = 0.06                       # the false-verdict rate every design with >= 2 seeds a side must stay under


def simulate_counts(rng: np.random.Generator, studies: int, seeds: int, files: int, scenario: Scenario,
                    effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``studies`` simulated studies: counts of configuration a and b, each ``(studies, seeds, files, 6)``."""
    n_ref = np.round(3000 * np.exp(rng.normal(0, 0.5, (studies, 1, files)))).astype(np.int64)
    base_recall = rng.uniform(0.35, 0.75, (studies, 1, files))
    base_precision = rng.uniform(0.40, 0.80, (studies, 1, files))

    def side(true_effect: float, seed_sd: float) -> np.ndarray:
        quality = (true_effect
                   + rng.normal(0, seed_sd / 100, (studies, seeds, 1))
                   + rng.normal(0, scenario.interaction_sd / 100, (studies, 1, files))
                   + rng.normal(0, scenario.noise_sd / 100, (studies, seeds, files)))
        recall = np.clip(base_recall + quality, 0.01, 0.99)
        precision = np.clip(base_precision + quality, 0.01, 0.99)
        tp = rng.binomial(np.broadcast_to(n_ref, recall.shape), recall)
        n_sys = np.maximum(tp, np.round(tp / precision).astype(np.int64))
        misses, false_alarms = n_ref - tp, n_sys - tp
        subs = np.minimum(misses, false_alarms) // 2
        return np.stack([tp, np.broadcast_to(n_ref, tp.shape), n_sys, subs, misses - subs, false_alarms - subs], -1)

    return side(effect, scenario.seed_sd[0]), side(0.0, scenario.seed_sd[1])


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
    a, b = simulate_counts(rng, studies, seeds, files, scenario, effect)
    parts = difference_parts(a, b, "f1")
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
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
