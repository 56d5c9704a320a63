"""Seeds added in rounds (``sweep.rounds``, issue 38): which claims a study decided at which look, and how many
seeds each configuration needs next.

A study declares its rounds, e.g. ``[3, 5, 8]`` seeds a configuration, and how its 5 % is spent over the looks
(``sweep.spending``; :func:`sedbench.stats.look_levels`). Every configuration of the grid starts with its first
``rounds[0]`` seeds (the smallest seed values). At each look the claims still open are decided exactly as
``claims.md`` decides them, on each configuration's first ``n`` seeds, with the look's share ``alpha_k`` of the
5 %: the primary claim at ``1 - alpha_k``, the secondary ones (behind the serial gate, which stays open once the
primary claim has held) by Holm's step-down at ``alpha_k``. A claim that holds or is contradicted is decided
at that look and keeps its verdict; the configurations of the claims still open get the next round's seeds.
The looks' alphas sum to 5 %, so by Bonferroni's inequality any false verdict over all looks has at most a 5 %
chance; sedbench.calibration measures it in the designs of real studies (docs/statistics.md).

:func:`replay` derives all of this from the finished trials alone, so the sweeper (which runs the next round)
and the report (which shows each verdict with its look) agree, and a stopped study resumes where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sedbench.report.claims import (
    ALPHA,
    GATE,
    GATE_CLOSED,
    Claim,
    Result,
    _decide_family,
    _run_tests,
    claim_set,
    evaluate_claims,
    run_readers,
    write_claims,
)
from sedbench.report.collect import REPEATS, TrialRow, completed

DECIDED = ("holds", "contradicted")


def config_of(params: dict[str, str]) -> str:
    """A configuration's key from a trial's or grid cell's parameters: every setting but the seed and fold, the
    values without spaces (``[5, 5]`` and ``[5,5]`` are one configuration)."""
    return " ".join(f"{k}={str(v).replace(' ', '')}" for k, v in sorted(params.items()) if k not in REPEATS)


@dataclass
class Rounds:
    """Where a study that adds seeds in rounds stands."""
    rounds: tuple[int, ...]
    levels: list[float]                    # each look's confidence level (1 - its share of the 5 %)
    results: list[Result]                  # per declared claim: its verdict at the look that decided it, else
    #                                        as at the last look taken (or not tested yet)
    wanted: dict[str, int] = field(default_factory=dict)   # configuration -> the seeds it needs now
    looks_taken: int = 0                   # looks whose seeds were all there
    done: bool = False                     # no configuration needs more seeds

    def describe(self) -> str:
        """One line: the looks taken and what the next round trains."""
        n = len(self.rounds)
        if self.done:
            return f"rounds: done after look {self.looks_taken} of {n}"
        k = self.looks_taken
        growing = sum(1 for v in self.wanted.values() if v == self.rounds[k])
        return (f"round {k + 1} of {n}: {self.rounds[k]} seeds for {growing} configuration"
                f"{'s' if growing != 1 else ''}" + (f" (after look {k})" if k else ""))


def first_seeds(rows: list[TrialRow], n: int) -> list[TrialRow]:
    """Each configuration's completed runs with its ``n`` smallest seeds (the runs a look at ``n`` seeds sees)."""
    by: dict[str, list[TrialRow]] = {}
    for r in completed(rows):
        by.setdefault(config_of(r.params), []).append(r)
    return [r for group in by.values() for r in sorted(group, key=lambda x: int(x.params.get("seed", 0)))[:n]]


def _compared(result: Result) -> set[str]:
    return {config_of(g[0].params) for t in result.tests for g in (t.a, t.b)}


def replay(rows: list[TrialRow], claims: tuple[Claim, ...], readers: dict, rounds, spending: str,
           expected=None, allow_mixed: bool = False) -> Rounds:
    """The looks a study has taken, from its trials (``rows``; ``readers`` as
    :func:`sedbench.report.claims.run_readers` gives them): which claims each look decided, and the seeds each
    configuration needs now (``wanted``). ``expected``: the configurations of the study's grid (:func:`config_of`
    of each cell); by default the configurations the completed trials show."""
    from sedbench.stats import look_levels

    rounds = tuple(int(n) for n in rounds)
    levels = look_levels(rounds, ALPHA, spending)
    have: dict[str, int] = {}
    for r in completed(rows):
        have[config_of(r.params)] = have.get(config_of(r.params), 0) + 1
    growing = set(expected) if expected is not None else set(have)
    wanted = dict.fromkeys(growing, rounds[0])
    final: dict[int, Result] = {}
    last: dict[int, Result] = {}
    held_before = False
    state = Rounds(rounds, levels, [], wanted)
    for k, (n, level) in enumerate(zip(rounds, levels, strict=True)):
        for c in growing:
            wanted[c] = n
        if any(have.get(c, 0) < n for c in growing):   # this round still trains
            break
        view = first_seeds(rows, n)
        open_ = [i for i in range(len(claims)) if i not in final]
        results = [_run_tests(claims[i], view, readers["counts"], readers["shifts"], readers.get("sources"),
                              allow_mixed) for i in open_]
        _decide_family([results], alpha=1 - level, held_before=held_before)
        state.looks_taken = k + 1
        for i, r in zip(open_, results, strict=True):
            r.look = (k + 1, len(rounds), n)
            last[i] = r
            if r.verdict in DECIDED:
                final[i] = r
                held_before |= r.claim.primary and r.verdict == "holds"
        primary_failed = any(r.claim.primary and r.verdict == "contradicted" for r in final.values())
        still = [r for i, r in last.items() if i not in final and r.tests and not r.todo
                 and not (r.verdict == GATE_CLOSED and primary_failed and GATE == "serial")]
        growing = set().union(*(_compared(r) for r in still)) if still else set()
        if not growing or k == len(rounds) - 1:
            state.done = True
            break
    state.results = [final.get(i) or last.get(i) or Result(c, todo="no look taken yet: the first round trains")
                     for i, c in enumerate(claims)]
    return state


def study_claims(rows: list[TrialRow], attrs: dict, fetch, allow_mixed: bool = False) -> tuple[list[Result], list[str]]:
    """A sweep's claims decided as its study declared them (its ``claims`` and ``rounds`` attributes, set by the
    sweeper): with rounds, look by look (:func:`replay`); else once, on every run. Returns the results and the
    notes that say how they were decided."""
    claims = claim_set(str(attrs.get("claims") or "claims"))
    readers = run_readers(fetch)
    rounds = attrs.get("rounds")
    if not rounds:
        return evaluate_claims(rows, **readers, claims=claims, allow_mixed=allow_mixed), []
    state = replay(rows, claims, readers, rounds["seeds"], rounds["spending"], allow_mixed=allow_mixed)
    levels = ", ".join(f"{100 * v:.2f} %" for v in state.levels)
    note = (f"**Seeds added in rounds** (`sweep.rounds`: {', '.join(map(str, state.rounds))} seeds a "
            f"configuration; {rounds['spending'].replace('_', '-')} spending, the looks at {levels}): "
            f"{state.describe()}. A claim is decided at the first look where it holds or is contradicted, on each "
            "configuration's first seeds of that round; the claims still open at a look get the next round's seeds "
            "(sedbench/report/rounds.py; false verdicts over the looks measured in docs/statistics.md).")
    return state.results, [note]


def write_sweep_claims(rows: list[TrialRow], out, fetch, allow_mixed: bool = False, attrs: dict | None = None) -> str:
    """``claims.md`` of one sweep, its claims decided as its study declared them (``attrs``: the study's)."""
    results, notes = study_claims(rows, attrs or {}, fetch, allow_mixed)
    return write_claims(results, out, tuple(notes))


def write_study_claims(ctx) -> str:
    """``claims.md`` of a report (``ctx``: sedbench.report.items.Context)."""
    return write_sweep_claims(ctx.rows, ctx.out, ctx.fetch, ctx.allow_mixed, dict(ctx.study.user_attrs))
