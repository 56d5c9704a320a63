"""``claims.md``: the claims a sweep's trials can test, declared once, each with a verdict whose error rate
was measured.

**The list** (:data:`CLAIMS`) is fixed before any study runs: each claim has its source, whether the paper makes
it or it is sedbench's extension, the comparisons that test it (claimed winner minus the other, on test F1_frm
or its change under pitch shift), for "among the best" a non-inferiority margin (:data:`MARGIN`), and whether it
is declared to hold on every dataset of a study. One claim is **primary**; the others are **secondary**.

**Multiplicity**, declared with the claims (:data:`GATE`, :data:`FAMILY`): the primary claim is decided at 95 %; a
serial gate opens the secondary claims only when it holds (on every dataset of the family); they are then decided
together by Holm's step-down (family-wise error 5 %). Behind a closed gate they read **gate closed**.

**The rule**, written down once. Runs that failed by the validation-only rule fixed in advance
(:func:`sedbench.stats.failed_runs`) are left out and counted. Each comparison is :func:`sedbench.stats.compare` on
the other runs' per-file counts (``file_counts.csv``, with the test files' sources where recorded): a t interval
over seeds and test files whose false-verdict rate was measured by simulation in the designs real studies have
(docs/statistics.md). A claim made of several comparisons holds when every one of them lies beyond its threshold
on the claimed side (0, or minus the margin for non-inferiority: an intersection-union test, which needs no
adjustment), and is contradicted when one of them lies beyond it on the other side (that direction is adjusted
over the claim's comparisons, Bonferroni). Anything else is **inconclusive**. Fewer than two runs on a side: no
interval, **no verdict**. Each claim shows its design's **power** for :data:`DIFFERENCE` at its level and the
seeds a side for 80 %; under :data:`UNDERPOWERED` it is marked **underpowered by design**. A claim one of whose
compared configurations mostly did not converge (``sedbench.training.callbacks.convergence``; judged per side)
is marked **budget-limited**, whatever its verdict: it speaks for that budget only.

**Groups.** Families are compared at their primary configuration: the one with the most completed trials
(seeds), ties broken by mean validation score, so a study's many-seed cells are what the primary claim compares;
their parameter counts are shown, and differences over 15 % are flagged. Filter shapes and sequence lengths are
compared all else equal (:func:`sedbench.report.collect.matched_groups`), as the paper varies them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sedbench.report.collect import (
    REPEATS,
    TrialRow,
    completed,
    configurations,
    file_counts,
    file_sources,
    matched_controls,
    matched_groups,
    mean_of,
    primary_group,
    shift_counts,
)

PAPER = "Cakir et al. 2017"
ALPHA = 0.05
# "(5,5) is among the best" means: no other shape beats it by more than this (F1, 2 points). Chosen before any
# run of `sweeps/claims.yaml` from the paper's Table IV: its three best shapes (5,5) 68.3, (3,11) 67.4 and (3,3)
# 67.2 lie within 1.1 points; the next, (11,11) 62.6, lies 4.6 points below (3,3), then (11,3) 61.2, (5,1) 60.6
# and (1,5) 28.5. A 2-point margin keeps the top three together and every other shape outside.
MARGIN = 0.02
PARAMS_TOLERANCE = 0.15   # parameter counts within 15 % count as matched
# The difference each superiority claim is planned for (F1, 5 points): power and the seeds needed for 80 % are
# computed for it; a non-inferiority claim is planned for shapes that are truly equal (the margin away).
DIFFERENCE = 0.05
UNDERPOWERED = 0.20       # a design under 20 % power for its planned difference is "underpowered by design"
# Multiplicity, declared with the claims: the secondary claims are tested only when the primary claim holds
# (serial gatekeeping), then together by Holm's step-down; the family is one dataset (one sweep's claims.md).
GATE = "serial"   # or "none": the secondary claims are decided whatever the primary claim's verdict
FAMILY = "dataset"


@dataclass
class Test:
    """One comparison inside a claim: group ``a`` minus group ``b``, claimed to exceed ``threshold``."""
    label: str
    a: list[TrialRow]
    b: list[TrialRow]
    statistic: str = "f1"
    threshold: float = 0.0
    comparison: object = None      # sedbench.stats.Comparison, at the level the claim is decided at
    todo: str = ""
    failed: tuple[list, list] = field(default_factory=lambda: ([], []))  # each side's failed runs: not compared
    two_sided: bool = False        # claimed to differ from ``threshold`` either way (no side claimed)

    def side(self, level: float, against_level: float) -> str:
        """This comparison's own reading: ``holds`` when its interval at ``level`` lies beyond the threshold on
        the claimed side (either side if two-sided), ``against`` when its interval at ``against_level`` lies
        beyond it on the other side, else ``undecided``."""
        c = self.comparison.at_level(level)
        if c.low > self.threshold or (self.two_sided and c.high < self.threshold):
            return "holds"
        if not self.two_sided and self.comparison.at_level(against_level).high < self.threshold:
            return "against"
        return "undecided"

    def kept(self, side: int) -> list[TrialRow]:
        group = (self.a, self.b)[side]
        return [r for r in group if r not in self.failed[side]]

    def not_converged(self, side: int) -> tuple[int, int]:
        """Runs of one side that did not converge, of those that record it: a failed run never converged."""
        known = [r for r in (self.a, self.b)[side] if r.attrs.get("converged") is not None]
        return sum(r in self.failed[side] or not r.attrs["converged"] for r in known), len(known)


@dataclass(frozen=True)
class Claim:
    name: str
    source: str
    paper: bool          # the paper's claim; False: sedbench's extension
    primary: bool
    statement: str       # what is tested, in symbols
    tests: Callable      # (rows, counts, shifts) -> list[Test], or a str saying what to run
    every_dataset: bool = False   # declared to hold on every dataset of a study (intersection-union over them)


@dataclass
class Result:
    claim: Claim
    tests: list[Test] = field(default_factory=list)
    verdict: str = "not tested"
    level: float = 1 - ALPHA
    p: float = 1.0
    todo: str = ""
    power: float = float("nan")        # at its level, for DIFFERENCE (or the margin), with the design it had
    seeds_80: int | None = None        # seeds a side for 80 % power at that level (None: more than 100)
    shared_sources: bool = False       # the intervals account for test files sharing source instances
    mixed: list[str] = field(default_factory=list)  # what differed among the compared runs' code and libraries
    look: tuple[int, int, int] | None = None  # seeds added in rounds: (look, of looks, seeds a configuration had)

    @property
    def not_converged(self) -> list[tuple[str, int, int]]:
        """Per compared configuration: (label, runs that did not converge, runs that record it)."""
        out = {}
        for t in self.tests:
            for side, group in ((0, t.a), (1, t.b)):
                out.setdefault(id(group[0]), (describe(group), *t.not_converged(side)))
        return list(out.values())

    @property
    def budget_limited(self) -> bool:
        """Most runs of some compared configuration did not converge: judged for each side, not pooled."""
        return any(known > 0 and bad > known / 2 for _, bad, known in self.not_converged)

    @property
    def underpowered(self) -> bool:
        return self.power < UNDERPOWERED


NO_COUNTS = "the runs have no file_counts.csv artifact (recorded by an older sedbench, or no MLflow store)"
PITCH_TODO = ("needs the pitch-shifted scores of every seed of the primary CRNN, CNN and RNN configurations: "
              "`sedbench evaluate --sweep NAME --pitch-shift=-2,-1,1,2`, then the report again")


# ---------------------------------------------------------------------------------------------- groups
def _n_params(trials: list[TrialRow]) -> int:
    return int(trials[0].attrs.get("n_params") or 0)


def describe(trials: list[TrialRow]) -> str:
    r = trials[0]
    params = f", {_n_params(trials):,} params" if _n_params(trials) else ""
    return f"{r.family.upper()} `{r.config_key() or 'base'}`{params}"


def _kernel_groups(rows, family: str) -> dict[str, list[TrialRow]]:
    return matched_groups(rows, family, "model.kernel", lambda values: "[1,5]" in values and "[5,5]" in values)


# ---------------------------------------------------------------------------------------------- the claims
def families_tests(rows, counts, shifts):
    groups = {fam: primary_group(rows, fam) for fam in ("crnn", "cnn", "rnn")}
    if any(g is None for g in groups.values()):
        return "needs completed CRNN, CNN and RNN trials: `sedbench sweep claims`"
    return [Test(f"CRNN − {o.upper()}", groups["crnn"], groups[o]) for o in ("cnn", "rnn")]


def shape_tests(family: str, shape: str, worst: bool):
    """``worst``: every other filter shape minus ``shape`` > 0; else ``shape`` minus every other > -MARGIN
    (non-inferiority: "among the best"). Shapes all else equal."""
    def tests(rows, counts, shifts):
        shapes = _kernel_groups(rows, family)
        if not shapes:
            where = ("`sedbench sweep claims`" if family == "crnn" else
                     "`sedbench sweep claims` has none; e.g. `sedbench sweep demo`, or a grid with model=cnn and "
                     "model.kernel=[1,5],[5,5],[3,3]")
            return f"needs {family.upper()} trials over model.kernel including [1,5] and [5,5], all else equal: {where}"
        if shape not in shapes:
            return (f"needs {family.upper()} trials with model.kernel={shape} beside the other shapes, all else equal: "
                    "`sedbench sweep table4`")
        mine, others = shapes[shape], {k: g for k, g in shapes.items() if k != shape}
        if worst:
            return [Test(f"{_shape(k)} − {_shape(shape)}", g, mine) for k, g in others.items()]
        return [Test(f"{_shape(shape)} − {_shape(k)}", mine, g, threshold=-MARGIN) for k, g in others.items()]
    return tests


def matched_shape_tests(rows, counts, shifts):
    """(5,5) against a (1,5) CRNN with about as many parameters (more maps), everything else equal."""
    shapes = _kernel_groups(rows, "crnn")
    if not shapes:
        return "needs CRNN trials over model.kernel including [1,5] and [5,5]: `sedbench sweep claims`"
    base = shapes["[5,5]"]
    target, context = _n_params(base), _context(base[0], ("model.maps", "model.kernel"))
    controls = [ts for (fam, _), ts in configurations(rows).items()
                if fam == "crnn" and ts[0].params.get("model.kernel", "").replace(" ", "") == "[1,5]"
                and _context(ts[0], ("model.maps", "model.kernel")) == context and target and _n_params(ts)
                and abs(_n_params(ts) / target - 1) <= PARAMS_TOLERANCE]
    if not controls:
        return (f"needs a (1,5) CRNN with about the (5,5) model's {target:,} parameters (more maps), all else "
                "equal: `sedbench sweep claims`")
    control = min(controls, key=lambda ts: abs(_n_params(ts) - target))
    return [Test(f"(5,5) − (1,5) at {_n_params(control):,} params", base, control)]


def matched_worst_tests(rows, counts, shifts):
    """Table IV at matched parameter counts (sedbench's extension): every shape's capacity control (the shape at
    the maps whose parameter count is within ``MATCHED_PARAMS`` of the (5,5) model's; the (5,5) model is its own)
    minus (1,5)'s control, all else equal."""
    shapes = _kernel_groups(rows, "crnn")
    controls = {**matched_controls(rows, "crnn", shapes), "[5,5]": shapes["[5,5]"]} if shapes else {}
    if "[1,5]" not in controls or len(controls) < 2:
        return ("needs the (1,5) CRNN and other shapes at the maps that match the (5,5) model's parameter count "
                "within 5 %, all else equal: `sedbench sweep table4`")
    mine = controls["[1,5]"]
    return [Test(f"{_shape(k)} at {_n_params(g):,} − (1,5) at {_n_params(mine):,} params", g, mine)
            for k, g in controls.items() if k != "[1,5]"]


def _by_size(rows, family: str) -> dict[str, list[TrialRow]]:
    """A family's configurations that differ only in size (``model.maps``: maps or units), all else equal."""
    return matched_groups(rows, family, "model.maps")


def sizes(rows) -> list[tuple[list[TrialRow], list[TrialRow], list[TrialRow]]]:
    """Fig. 4's sizes: each CRNN configuration of the CRNN series (configurations differing only in size), with
    the CNN and the RNN of their own series whose parameter counts are nearest to it and within
    ``PARAMS_TOLERANCE``; (crnn, cnn, rnn) from the smallest size up. A size lacking a match is left out."""
    series = {fam: list(_by_size(rows, fam).values()) for fam in ("crnn", "cnn", "rnn")}
    out = []
    for crnn in sorted(series["crnn"], key=_n_params):
        n, mates = _n_params(crnn), []
        for fam in ("cnn", "rnn"):
            near = [g for g in series[fam] if n and _n_params(g) and abs(_n_params(g) / n - 1) <= PARAMS_TOLERANCE]
            if near:
                mates.append(min(near, key=lambda g: abs(_n_params(g) - n)))
        if len(mates) == 2:
            out.append((crnn, *mates))
    return out


def _size_label(n: int) -> str:
    return f"{n / 1000:.1f}k" if n < 10_000 else f"{n / 1000:.0f}k"


def sizes_tests(rows, counts, shifts):
    """Fig. 4, the paper's first statement: at each matched size, CRNN − CNN and CRNN − RNN."""
    found = sizes(rows)
    if len(found) < 2:
        return ("needs CRNN, CNN and RNN configurations at two or more sizes (model.maps), matched within "
                f"{100 * PARAMS_TOLERANCE:.0f} % in parameters at each size: `sedbench sweep fig4`")
    return [Test(f"at {_size_label(_n_params(crnn))}: CRNN − {other[0].family.upper()}", crnn, other)
            for crnn, *others in found for other in others]


def depth_width_tests(rows, counts, shifts):
    """Fig. 4, the paper's second statement: a CRNN whose conv stack differs in depth (``model.pool``: one
    pooling factor per conv layer) from a CRNN of the size series with about as many parameters (within
    ``PARAMS_TOLERANCE``), all else equal; the difference either way (two-sided)."""
    series = _by_size(rows, "crnn")
    leave = (*REPEATS, "model.maps", "model.pool")
    others = [ts for (fam, _), ts in configurations(rows).items() if fam == "crnn" and "model.pool" in ts[0].params
              and not any(ts is g for g in series.values())]
    pairs = [(ts, base) for ts in others for base in series.values()
             if _context(ts[0], leave) == _context(base[0], leave) and ts[0].params["model.pool"] !=
             base[0].params.get("model.pool") and _n_params(base)
             and abs(_n_params(ts) / _n_params(base) - 1) <= PARAMS_TOLERANCE]
    if not pairs:
        return ("needs a CRNN with another conv depth (model.pool) at about the parameter count of a CRNN of the "
                "size series, all else equal: `sedbench sweep fig4`")
    ts, base = min(pairs, key=lambda p: abs(_n_params(p[0]) - _n_params(p[1])))
    pool = ts[0].params["model.pool"].replace(" ", "").strip("[]")
    return [Test(f"pool ({pool}), {ts[0].params['model.maps']} maps − {base[0].params['model.maps']} maps "
                 "(the series' pooling)", ts, base, two_sided=True)]


def seq_len_tests(rows, counts, shifts):
    lengths = matched_groups(rows, "crnn", "data.seq_len",
                             lambda values: "128" in values and any(int(v) > 128 for v in values))
    if not lengths:
        found = sorted({int(r.params["data.seq_len"]) for r in completed(rows)
                        if r.family == "crnn" and "data.seq_len" in r.params})
        return (f"needs CRNN trials at data.seq_len=128 and longer, all else equal (found {found or 'none'}): "
                "`sedbench sweep claims`")
    longest = max(lengths, key=int)
    return [Test(f"{longest} − 128 frames", lengths[longest], lengths["128"])]


def pitch_tests(family: str):
    def tests(rows, counts, shifts):
        mine, rnn = primary_group(rows, family), primary_group(rows, "rnn")
        if mine is None or rnn is None:
            return PITCH_TODO
        return [Test(f"{family.upper()} − RNN, change of F1 under shift", mine, rnn, statistic="f1_change")]
    return tests


def _shape(kernel: str) -> str:
    return "(" + kernel.strip("[]").replace(" ", "") + ")"


def _context(r: TrialRow, leave: tuple[str, ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(r.params.items()) if k not in (*REPEATS, *leave))


NON_INFERIOR = f"(5,5) − every other shape > −{100 * MARGIN:g} points (non-inferiority)"
CLAIMS = (
    Claim("CRNN beats CNN and RNN at matched parameter counts", f"{PAPER}, Fig. 4 and Table II", True, True,
          "CRNN − CNN > 0 and CRNN − RNN > 0", families_tests, every_dataset=True),
    Claim("CRNN: filter shape (1,5) is the worst", f"{PAPER}, Table IV", True, False,
          "every other shape − (1,5) > 0", shape_tests("crnn", "[1,5]", worst=True)),
    Claim("CRNN: filter shape (5,5) is among the best", f"{PAPER}, Table IV", True, False,
          NON_INFERIOR, shape_tests("crnn", "[5,5]", worst=False)),
    Claim("CRNN gains from sequences longer than 128 frames", f"{PAPER}, Sec. III-D and Table I", True, False,
          "longest − 128 frames > 0, at equal frames per step and steps", seq_len_tests),
    Claim("CRNN loses less F1 under pitch shift than RNN", f"{PAPER}, Fig. 5", True, False,
          "change(CRNN) − change(RNN) > 0", pitch_tests("crnn")),
    Claim("CNN loses less F1 under pitch shift than RNN", f"{PAPER}, Fig. 5", True, False,
          "change(CNN) − change(RNN) > 0", pitch_tests("cnn")),
    Claim("CRNN: (5,5) beats (1,5) at a matched parameter count", "sedbench: Table IV's capacity control", False,
          False, "(5,5) − (1,5) with more maps > 0", matched_shape_tests),
    Claim("CNN: filter shape (1,5) is the worst", "sedbench: Table IV extended to the CNN", False, False,
          "every other shape − (1,5) > 0", shape_tests("cnn", "[1,5]", worst=True)),
    Claim("CNN: filter shape (5,5) is among the best", "sedbench: Table IV extended to the CNN", False, False,
          NON_INFERIOR, shape_tests("cnn", "[5,5]", worst=False)),
)
# `sweeps/table4.yaml` (issue 38): the seven shapes of Table IV at one number of maps, and their capacity controls.
TABLE4 = (
    Claim("CRNN: filter shape (1,5) is the worst", f"{PAPER}, Table IV and Sec. IV-B2", True, True,
          "every other shape − (1,5) > 0", shape_tests("crnn", "[1,5]", worst=True)),
    Claim("CRNN: filter shape (5,5) is among the best", f"{PAPER}, Table IV and Sec. IV-B2", True, False,
          NON_INFERIOR, shape_tests("crnn", "[5,5]", worst=False)),
    Claim("CRNN: filter shape (3,3) is among the best", f"{PAPER}, Table IV and Sec. IV-B2", True, False,
          NON_INFERIOR.replace("(5,5)", "(3,3)"), shape_tests("crnn", "[3,3]", worst=False)),
    Claim("CRNN: (1,5) is the worst at matched parameter counts", "sedbench: Table IV's capacity control", False,
          False, "every shape's control − (1,5)'s control > 0", matched_worst_tests),
)
# `sweeps/fig4.yaml` (issue 38): the three families at four matched sizes, and two CRNNs of one size.
FIG4 = (
    Claim("CRNN beats CNN and RNN at every size", f"{PAPER}, Fig. 4 and Sec. IV-B3", True, True,
          "at each size: CRNN − CNN > 0 and CRNN − RNN > 0", sizes_tests, every_dataset=True),
    Claim("CRNNs of equal parameter count but different depth and width differ", f"{PAPER}, Fig. 4 and Sec. IV-B3",
          True, False, "shallow and wide − deep and narrow ≠ 0 (two-sided)", depth_width_tests),
)
CLAIM_SETS = {"claims": CLAIMS, "table4": TABLE4, "fig4": FIG4}


def claim_set(name: str) -> tuple[Claim, ...]:
    """The claims a study declared (``sweep.claims``)."""
    from sedbench.errors import ConfigError

    if name not in CLAIM_SETS:
        raise ConfigError(f"sweep.claims={name}: no such set of claims. Fix: one of {', '.join(CLAIM_SETS)} "
                          "(sedbench/report/claims.py: CLAIM_SETS)")
    return CLAIM_SETS[name]


# ---------------------------------------------------------------------------------------------- deciding
def failed_in(group: list[TrialRow]) -> list[TrialRow]:
    """The runs of one configuration that failed by the rule fixed in advance (``sedbench.stats.FAIL_RULE``): it
    reads each run's best validation score (its objective) against the configuration's other seeds."""
    from sedbench.stats import failed_runs

    flags = failed_runs([r.score for r in group])
    return [r for r, bad in zip(group, flags, strict=True) if bad]


def failure_records(rows: list[TrialRow]) -> dict[int, str]:
    """Every completed trial's failure by the rule, judged within its configuration: ``{trial number: reason}``
    with an empty reason for a run that did not fail (what the report records on each run)."""
    out = {}
    for group in configurations(rows).values():
        failed = failed_in(group)
        for r in group:
            out[r.number] = f"best {failure_reason(r, group)} (sedbench.stats.FAIL_RULE)" if r in failed else ""
    return out


def failure_reason(run: TrialRow, group: list[TrialRow]) -> str:
    """Why a failed run failed: its best validation score against its configuration's other seeds' median."""
    median = statistics.median(x.score for x in group if x is not run)
    return f"validation {100 * run.score:.1f} against the other seeds' median {100 * median:.1f}"


def _common_sources(runs: list[TrialRow], sources) -> list[list[str]] | None:
    """The test files' source ids, when every compared run recorded the same ones (None otherwise)."""
    if sources is None:
        return None
    found = [sources(r) for r in runs]
    return found[0] if found and found[0] and all(f == found[0] for f in found) else None


MIXED_DATA = ("the compared runs read different copies of the dataset ({}): no verdict across them. Fix: compare "
              "runs of one copy (rerun the others), or decide anyway with --allow-mixed")


def provenance_mix(runs: list[TrialRow]) -> dict[str, list[str]]:
    """What differs among runs' recorded provenance (sedbench.provenance): ``{"dataset"|"code"|"libraries":
    the distinct values}`` for each part with more than one; runs that recorded none are left out."""
    from sedbench.provenance import distinct

    return {k: v for k, v in distinct([r.attrs.get("provenance") for r in runs]).items() if len(v) > 1}


def _run_tests(claim: Claim, rows, counts, shifts, sources=None, allow_mixed: bool = False) -> Result:
    from sedbench.stats import compare

    result = Result(claim)
    tests = claim.tests(rows, counts, shifts)
    if isinstance(tests, str):
        result.todo = tests
        return result
    result.tests = tests
    source = {"f1": counts, "f1_change": shifts}
    for t in tests:
        t.failed = (failed_in(t.a), failed_in(t.b))
        ka, kb = t.kept(0), t.kept(1)
        ca, cb = [source[t.statistic](r) for r in ka], [source[t.statistic](r) for r in kb]
        missing = sum(c is None for c in (*ca, *cb))
        if missing:
            result.todo = (f"{PITCH_TODO if t.statistic == 'f1_change' else NO_COUNTS} ({missing} of "
                           f"{len(ca) + len(cb)} runs lack them)")
            return result
        shapes = {tuple(len(x) for x in (c, c[0])) for c in (*ca, *cb)}
        if len(shapes) > 1:
            result.todo = "the compared runs were scored on different test files"
            return result
        mix = provenance_mix([*ka, *kb])
        if "dataset" in mix and not allow_mixed:
            result.todo = MIXED_DATA.format(", ".join(mix["dataset"]))
            result.verdict = "no verdict"
            return result
        result.mixed += [f"{part}: {len(values)} versions among the compared runs" for part, values in mix.items()
                         if f"{part}: {len(values)} versions among the compared runs" not in result.mixed]
        files = _common_sources([*ka, *kb], sources)
        t.comparison = compare(ca, cb, t.statistic, 1 - ALPHA, sources=files)
    result.shared_sources = any(t.comparison.shared_sources for t in tests)
    if any(not t.comparison.seed_variance_known for t in tests):
        result.verdict = "no verdict"
        failed = sum(len(f) for t in tests for f in t.failed)
        result.todo = ("fewer than 2 runs that did not fail on a side of a comparison: seed variance unknown. "
                       "Fix: at least 2 seeds per side" + (f" ({failed} failed by the rule)" if failed else ""))
        return result
    above = [t for t in tests if t.comparison.difference > t.threshold]
    below = [t for t in tests if t.comparison.difference < t.threshold]
    if all(t.two_sided for t in tests):  # differ (either way): every comparison must exclude its threshold
        result.p = max(t.comparison.p_value(t.threshold) for t in tests)
    elif len(above) == len(tests):   # every comparison on the claimed side: the p of holding is the largest
        result.p = max(t.comparison.p_value(t.threshold) for t in tests)
    elif below:                    # a comparison on the other side: the smallest p, Bonferroni over the tests
        result.p = min(1.0, len(tests) * min(t.comparison.p_value(t.threshold) for t in below))
    return result


def claim_power(result: Result, level: float, seeds: tuple[int, int] | None = None,
                difference: float = DIFFERENCE) -> float:
    """The chance that the claim holds at ``level`` if it is true by ``difference`` (non-inferiority: the shapes
    exactly equal, the margin away), with its comparisons' seed spreads and files' variance and ``seeds`` runs a
    side (default: as compared). The product over its comparisons (every one must hold; they share a side, so
    the true chance is somewhat higher)."""
    from sedbench.stats import power

    out = 1.0
    for t in result.tests:
        delta = difference - t.threshold if t.threshold >= 0 else -t.threshold
        out *= power(t.comparison, delta, level, seeds)
    return out


def seeds_for(result: Result, level: float, target: float = 0.8, difference: float = DIFFERENCE,
              most: int = 100) -> int | None:
    """The fewest seeds a side (equal on every side) for :func:`claim_power` to reach ``target``; None past
    ``most``."""
    from sedbench.stats import fewest_seeds

    return fewest_seeds(lambda n: claim_power(result, level, (n, n), difference), target, most)


def _plan(result: Result) -> None:
    result.power = claim_power(result, result.level)
    result.seeds_80 = seeds_for(result, result.level)


def _decide(result: Result, level: float, rejected: bool) -> None:
    """The verdict at ``level`` (the primary claim at 95 %, a secondary one at its Holm level)."""
    result.level = level
    for t in result.tests:
        t.comparison = t.comparison.at_level(level)
    _plan(result)
    if not rejected:
        result.verdict = "inconclusive"
        return
    sides = [t.side(level, 1 - (1 - level) / len(result.tests)) for t in result.tests]
    result.verdict = ("holds" if all(s == "holds" for s in sides) else
                      "contradicted" if "against" in sides else "inconclusive")


GATE_CLOSED = "gate closed"


def _decide_family(family: list[list[Result]], alpha: float = ALPHA, held_before: bool = False) -> None:
    """Decide one family of claims, from one dataset or several decided together: each primary claim at
    ``1 - alpha`` (95 %); the gate opens when the primary claim holds on every dataset of the family (or held at
    an earlier look: ``held_before``); then every secondary claim of the family by one Holm's step-down at
    ``alpha``. Behind a closed gate the secondary claims get no verdict. A study that adds seeds in rounds
    decides the claims still open at each look with that look's share of the 5 % (sedbench.report.rounds)."""
    from sedbench.stats import holm

    decidable = [r for results in family for r in results if r.tests and r.verdict == "not tested" and not r.todo]
    primary = [r for r in decidable if r.claim.primary]
    for r in primary:
        _decide(r, 1 - alpha, r.p < alpha)
    secondary = [r for r in decidable if not r.claim.primary]
    primaries = [r for results in family for r in results if r.claim.primary]
    gate_open = GATE == "none" or held_before or (bool(primaries) and all(r.verdict == "holds" for r in primaries))
    if not gate_open:
        for r in secondary:   # shown at 95 % for information only: no verdict is drawn behind a closed gate
            _decide(r, 1 - ALPHA, False)
            r.verdict = GATE_CLOSED
        return
    for r, (rejected, level) in zip(secondary, holm([r.p for r in secondary], alpha), strict=True):
        _decide(r, level, rejected)


def evaluate_claims(rows: list[TrialRow], counts, shifts, claims=CLAIMS, sources=None,
                    allow_mixed: bool = False) -> list[Result]:
    """Every declared claim tested on ``rows`` (one dataset): ``counts(row)`` gives a run's per-file counts (or
    None), ``shifts(row)`` its per-file counts under pitch shift ``(files, shifts, 6)``, the unshifted first (or
    None), ``sources(row)`` its test files' source ids (or None). Multiplicity as declared (``GATE``): the
    primary claim at 95 %; the secondary claims only when it holds, then by Holm's step-down over them."""
    results = [_run_tests(c, rows, counts, shifts, sources, allow_mixed) for c in claims]
    _decide_family([results])
    return results


def evaluate_study(datasets: dict[str, tuple[list[TrialRow], dict]], claims=CLAIMS, family: str = FAMILY,
                   allow_mixed: bool = False) -> dict[str, list[Result]]:
    """The declared claims on several datasets (``{name: (rows, readers)}``, readers as :func:`run_readers`
    gives them), with the family as declared: ``dataset`` decides each dataset's claims as a family of its own,
    ``study`` all datasets' claims together (one gate over every dataset's primary claim, one Holm over every
    secondary claim of every dataset)."""
    if family not in ("dataset", "study"):
        raise ValueError(f"family {family!r}: 'dataset' or 'study'")
    per = {name: [_run_tests(c, rows, readers["counts"], readers["shifts"], readers.get("sources"), allow_mixed)
                  for c in claims] for name, (rows, readers) in datasets.items()}
    for group in ([list(per.values())] if family == "study" else [[results] for results in per.values()]):
        _decide_family(group)
    return per


def on_every_dataset(per: dict[str, list[Result]]) -> list[tuple[Claim, str, list[str]]]:
    """Each claim declared to hold on every dataset (``Claim.every_dataset``), as an intersection-union over the
    datasets' verdicts (no adjustment needed): ``holds`` when it holds on every dataset, ``contradicted`` when
    contradicted on one, else the weakest of the others. Returns (claim, verdict, per-dataset verdicts)."""
    out = []
    names = list(per)
    for i, claim in enumerate(next(iter(per.values()), [])):
        if not claim.claim.every_dataset:
            continue
        verdicts = [per[n][i].verdict for n in names]
        if all(v == "holds" for v in verdicts):
            verdict = "holds"
        elif "contradicted" in verdicts:
            verdict = "contradicted"
        else:
            verdict = next(v for v in ("not tested", "no verdict", GATE_CLOSED, "inconclusive") if v in verdicts)
        out.append((claim.claim, verdict, [f"{n}: {v}" for n, v in zip(names, verdicts, strict=True)]))
    return out


# ---------------------------------------------------------------------------------------------- writing
def _tests_cell(r: Result) -> str:
    out = []
    for t in r.tests:
        c = t.comparison
        if c is None:
            continue
        interval = (f"[{100 * c.low:+.1f}, {100 * c.high:+.1f}]" if c.seed_variance_known
                    else "[no interval: 1 seed]")
        reading = ""
        if len(r.tests) > 1 and c.seed_variance_known and r.verdict not in ("not tested", "no verdict"):
            reading = f" ({t.side(r.level, 1 - (1 - r.level) / len(r.tests))})"  # each size's or shape's own
        out.append(f"{t.label}: {100 * c.difference:+.1f} {interval}{reading}")
    return "<br>".join(out) or "–"


def _converged_cell(r: Result) -> str:
    sides = [(label, bad, known) for label, bad, known in r.not_converged if known]
    if not sides:
        return "–"
    text = "; ".join(f"{known - bad} of {known}" + (" ⚠" if bad > known / 2 else "") for _, bad, known in sides)
    return text + (" budget-limited" if r.budget_limited else "")


def _compared_cell(r: Result) -> str:
    groups, failed = {}, {}
    for t in r.tests:
        for side, g in ((0, t.a), (1, t.b)):
            groups.setdefault(id(g[0]), g)
            failed.setdefault(id(g[0]), t.failed[side])

    def one(key, g):
        kept = [x for x in g if x not in failed[key]]
        bad = f", {len(failed[key])} failed" if failed[key] else ""
        return f"{describe(g)}: F1 {100 * mean_of(kept or g, 'test/f1_frm'):.1f} % (n = {len(kept)}{bad})"

    described = [one(key, g) for key, g in groups.items()]
    # each comparison's two sides (a claim over several sizes compares within a size, not across sizes)
    pairs = [(_n_params(t.a), _n_params(t.b)) for t in r.tests if _n_params(t.a) and _n_params(t.b)]
    unmatched = sum(max(p) > (1 + PARAMS_TOLERANCE) * min(p) for p in pairs)
    if r.claim.primary and unmatched:
        described.append(f"⚠ parameter counts differ by more than {100 * PARAMS_TOLERANCE:.0f} % in {unmatched} of "
                         f"{len(pairs)} comparison{'s' if len(pairs) != 1 else ''}")
    return "<br>".join(described) or "–"


def _power_cell(r: Result) -> str:
    if r.power != r.power:   # NaN: no design to plan from
        return "–"
    seeds = f"{r.seeds_80} seeds a side for 80 %" if r.seeds_80 else "over 100 seeds a side for 80 %"
    return f"{100 * r.power:.0f} % ({seeds})" + (" ⚠ underpowered by design" if r.underpowered else "")


def _table(results: list[Result]) -> list[str]:
    lines = ["| claim | source | verdict | tested | differences (points) [interval] | level | design | power "
             "| converged | compared |", "|---|---|---|---|---|---:|---|---|---|---|"]
    for r in results:
        level = f"{100 * r.level:.2f} %" if r.tests and r.verdict not in ("not tested", "no verdict") else "–"
        if r.look and level != "–":
            level += f" (look {r.look[0]} of {r.look[1]}, {r.look[2]} seeds)"
        verdict = f"**{r.verdict}**" + (" (budget-limited)" if r.budget_limited and r.verdict != "not tested" else "")
        if r.underpowered and r.verdict not in ("not tested", "no verdict"):
            verdict += " (underpowered by design)"
        lines.append(f"| {r.claim.name} | {r.claim.source} | {verdict} | {r.claim.statement} | {_tests_cell(r)} | "
                     f"{level} | {_design_cell(r)} | {_power_cell(r)} | {_converged_cell(r)} | {_compared_cell(r)} |")
    return lines


def _design_cell(r: Result) -> str:
    parts = {f"{c.n_seeds[0]} vs {c.n_seeds[1]} seeds" for t in r.tests if (c := t.comparison) is not None}
    files = {t.comparison.n_files for t in r.tests if t.comparison is not None}
    text = ", ".join(sorted(parts)) + (f"; {files.pop()} files" if len(files) == 1 else "") if parts else "–"
    text += "; files share sources (accounted for)" if r.shared_sources else ""
    return text + "".join(f"; ⚠ {m}" for m in r.mixed)


def _failures(results: list[Result]) -> list[str]:
    """Each configuration's failed runs (the rule, validation only) and where two compared sides fail unequally."""
    from sedbench.stats import FAIL_RULE

    seen, lines, unequal = set(), [], {}
    for r in results:
        for t in r.tests:
            for side, g in ((0, t.a), (1, t.b)):
                if id(g[0]) in seen:
                    continue
                seen.add(id(g[0]))
                lines += [f"- {describe(g)}: trial {x.number} (seed {x.seed}) failed: {failure_reason(x, g)}"
                          for x in t.failed[side]]
            if len(t.failed[0]) != len(t.failed[1]):
                unequal.setdefault((id(t.a[0]), id(t.b[0])), f"- {describe(t.a)}: {len(t.failed[0])} of {len(t.a)} "
                                   f"runs failed; {describe(t.b)}: {len(t.failed[1])} of {len(t.b)}")
    head = ["## Failed runs", "", f"Rule, fixed before any run: {FAIL_RULE}. Claims compare the runs that did not "
            "fail; the *compared* column shows each configuration's failures.", ""]
    if unequal:
        lines += ["", "Compared configurations that fail unequally (the verdicts compare the runs that did not fail; "
                  "the one that fails more often is itself less reliable to train):", "", *unequal.values()]
    return head + (lines or ["- none"])


RULES = ("Each difference is the claimed winner minus the other, in points of test F1_frm (for pitch shift: of its "
         "change under shift), with its interval from `sedbench.stats.compare`: a t interval over seeds and test "
         "files (per-file counts; files that share source instances count as dependent when the runs recorded "
         "their sources), whose false-verdict rate was measured by simulation in the designs real studies have "
         "(docs/statistics.md). A claim **holds** when every difference lies beyond its threshold on the claimed "
         "side, is **contradicted** when one lies beyond it on the other side, and is **inconclusive** otherwise; "
         "with fewer than two runs on a side there is no interval and **no verdict**. \"Among the best\" is "
         f"non-inferiority within {100 * MARGIN:g} points, a margin fixed before any study from the paper's Table IV. "
         f"*power*: the chance this design had to decide a claim that is true by {100 * DIFFERENCE:g} points (for "
         "non-inferiority: shapes exactly equal), at its level, from its own seed spreads and files' variance; under "
         f"{100 * UNDERPOWERED:.0f} % the verdict is marked **underpowered by design**. *converged*: runs of each "
         "compared configuration that converged (early stopping, or under 1 point gained over the last quarter of "
         "the budget; a failed run never did); a claim is **budget-limited** when most runs of one of its "
         "configurations did not: it speaks for that budget only.")
MULTIPLICITY = ("Multiplicity, declared with the claims (`sedbench/report/claims.py`: GATE, FAMILY): the family is "
                + ("**one dataset**: each dataset's claims are a family of their own. " if FAMILY == "dataset" else
                   "**every dataset of the study together** (`sedbench claims NAME...` decides them). ")
                + "The primary claim is decided at 95 %. A **serial gate** stands before the secondary claims: they "
                "are tested only when the primary claim holds (on every dataset of the family), and then together, "
                "paper claims and extensions, at the levels Holm's step-down gives them (family-wise error "
                f"{100 * ALPHA:.0f} % with the primary claim; the column *level*). Behind a closed gate their "
                "differences are shown at 95 % for information, with no verdict (**gate closed**). A claim declared "
                "to hold on every dataset (the primary claim) holds only where it holds on each of them, an "
                "intersection-union that needs no adjustment: `sedbench claims NAME1 NAME2` writes that verdict.")


def run_readers(fetch) -> dict[str, Callable]:
    """What :func:`evaluate_claims` reads of each run, from its MLflow artifacts (``fetch(run_id, path)``): its
    per-file counts, its counts under pitch shift ``(files, shifts, 6)`` (the unshifted re-score first) and its
    test files' sources; each None where the run has none. Each is read once per run, however many comparisons
    the run takes part in."""
    import functools

    def counts(r: TrialRow):
        return file_counts(r, fetch).get("frm")

    def shifts(r: TrialRow):
        by_shift = shift_counts(r, fetch)
        if 0 not in by_shift or len(by_shift) < 2:
            return None
        order = [0, *sorted(q for q in by_shift if q != 0)]
        return [list(per_shift) for per_shift in zip(*(by_shift[q] for q in order), strict=True)]

    def once(read):
        cache = {}
        return lambda r: cache[r.number] if r.number in cache else cache.setdefault(r.number, read(r))

    return {"counts": once(counts), "shifts": once(shifts),
            "sources": once(functools.partial(file_sources, fetch=fetch))}


def _sections(results: list[Result], level: int = 2) -> list[str]:
    """The primary, paper and extension tables of one dataset's results, the notes, and its failed runs."""
    h = "#" * level
    primary = [r for r in results if r.claim.primary]
    paper = [r for r in results if not r.claim.primary and r.claim.paper]
    extensions = [r for r in results if not r.claim.primary and not r.claim.paper]
    lines = []
    if any(r.verdict == GATE_CLOSED for r in results):
        lines += ["**The gate is closed**: the primary claim did not hold, so no secondary claim is decided.", ""]
    lines += [f"{h} Primary claim (the paper's)", "", *_table(primary),
              "", f"{h} Secondary claims: the paper's", "", *_table(paper), "",
              f"{h} Secondary claims: sedbench's extensions (not claims of the paper)", "", *_table(extensions)]
    tested = [r for r in results if r.tests]
    if tested and not any(r.shared_sources for r in tested):
        lines += ["", "The runs recorded no source instances for their test files (metadata/sources.tsv): the "
                  "intervals count the test files as independent."]
    todo = [r for r in results if r.todo]
    if todo:
        lines += ["", "Not tested or no verdict:", ""] + [f"- {r.claim.name}: {r.todo}" for r in todo]
    failures = _failures(results)
    return lines + ["", failures[0].replace("##", h, 1), *failures[1:]]


def write_claims(results: list[Result], out: Path, notes: tuple[str, ...] = ()) -> str:
    """``claims.md`` of one sweep from its decided claims (sedbench.report.rounds.study_claims decides them),
    with ``notes`` (e.g. where the rounds of seeds stand) before the tables."""
    lines = ["# Claims tested on this sweep", "", RULES, "", MULTIPLICITY, "", *(x for n in notes for x in (n, "")),
             *_sections(results)]
    (out / "claims.md").write_text("\n".join(lines) + "\n")
    return "claims.md"


def write_claims_across(per: dict[str, list[Result]], out: Path, family: str = FAMILY) -> Path:
    """One claims Markdown for a study on several datasets: the claims declared to hold on every dataset first
    (intersection-union), then each dataset's tables."""
    joined = ", ".join(f"`{n}`" for n in per)
    lines = [f"# Claims tested on {joined}", "", RULES, "", MULTIPLICITY, "",
             f"Family applied: **{'all datasets together' if family == 'study' else 'each dataset on its own'}**.",
             "", "## Claims declared to hold on every dataset", "",
             "| claim | source | verdict on every dataset | per dataset |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.source} | **{v}** | {'; '.join(each)} |" for c, v, each in on_every_dataset(per)]
    for name, results in per.items():
        lines += ["", f"## Dataset `{name}`", "", *_sections(results, level=3)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out
