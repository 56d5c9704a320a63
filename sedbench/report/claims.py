"""``claims.md``: the paper's claims that a sweep's trials can test, each with a verdict and its numbers.

Every claim compares two groups of completed trials on test F1_frm; a group is one configuration
(its trials differ only by seed or fold). The difference (claimed winner minus the other) and its
95 % interval come from the hierarchical bootstrap over seeds and test files of
:func:`sedbench.stats.hierarchical_difference`, on the runs' ``file_counts.csv`` artifacts; the verdict
follows :func:`sedbench.stats.verdict`: ``holds`` when the interval excludes 0 in the paper's
direction, ``contradicted`` when it excludes 0 the other way, ``inconclusive`` otherwise. A claim the
trials cannot test says what to run. The rules below were fixed before any study was run.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sedbench.report.collect import TrialRow, completed, file_counts

PAPER = "Cakir et al. 2017"


@dataclass
class Verdict:
    claim: str
    source: str
    compared: str = ""
    difference: object = None   # sedbench.stats.Interval of the F1_frm difference, or None
    n: str = ""
    verdict: str = "not tested"
    todo: str = ""


def groups(rows: list[TrialRow]) -> dict[tuple[str, str], list[TrialRow]]:
    """(family, configuration without seed and fold) -> its completed trials."""
    out: dict[tuple[str, str], list[TrialRow]] = defaultdict(list)
    for r in completed(rows):
        out[(r.family, r.config_key())].append(r)
    return out


def _mean(trials: list[TrialRow], key: str) -> float:
    return statistics.fmean(t.get(key) for t in trials)


def best_group(rows: list[TrialRow], family: str, where=lambda r: True) -> list[TrialRow] | None:
    """The configuration of ``family`` (among trials passing ``where``) with the best mean validation score."""
    cands = [trials for (fam, _), trials in groups([r for r in rows if where(r)]).items() if fam == family]
    return max(cands, key=lambda ts: _mean(ts, "val/f1_frm")) if cands else None


def compare(claim: Verdict, a: list[TrialRow], b: list[TrialRow], counts, direction: int = +1) -> Verdict:
    """Fill ``claim`` with the difference of group ``a`` minus ``b`` (per-run counts from ``counts(row)``)."""
    import numpy as np

    from sedbench.stats import hierarchical_difference, verdict

    ca, cb = [counts(r) for r in a], [counts(r) for r in b]
    claim.compared = f"{_describe(a)} vs {_describe(b)}"
    claim.n = f"{len(a)} vs {len(b)}"
    if any(c is None for c in (*ca, *cb)):
        claim.todo = "the runs have no file_counts.csv artifact (recorded by an older sedbench, or no MLflow store)"
        return claim
    if any(np.shape(c) != np.shape(ca[0]) for c in (*ca, *cb)):
        claim.todo = "the runs were scored on different test files"
        return claim
    claim.difference = hierarchical_difference(ca, cb)
    claim.verdict = verdict(claim.difference, direction)
    return claim


def _describe(trials: list[TrialRow]) -> str:
    r = trials[0]
    params = f", {int(r.attrs['n_params']):,} params" if r.attrs.get("n_params") else ""
    return f"{r.family.upper()} `{r.config_key() or 'base'}`{params}, F1 {100 * _mean(trials, 'test/f1_frm'):.1f} %"


def family_claims(rows, counts) -> list[Verdict]:
    out = []
    crnn = best_group(rows, "crnn")
    for other in ("cnn", "rnn"):
        claim = Verdict(f"CRNN beats {other.upper()}", f"{PAPER}, Fig. 4 and Table II")
        rival = best_group(rows, other)
        if crnn is None or rival is None:
            claim.todo = f"needs completed CRNN and {other.upper()} trials: `sedbench sweep claims` (or seeds)"
            out.append(claim)
        else:
            out.append(compare(claim, crnn, rival, counts))
    return out


def _kernel(r: TrialRow) -> str:
    return r.params.get("model.kernel", "").replace(" ", "")


def filter_shape_claims(rows, counts) -> list[Verdict]:
    out = []
    for fam in ("crnn", "cnn"):
        shapes = {k: best_group(rows, fam, lambda r, k=k: _kernel(r) == k)
                  for k in sorted({_kernel(r) for r in completed(rows) if r.family == fam and _kernel(r)})}
        worst = Verdict(f"{fam.upper()}: filter shape (1,5) is the worst", f"{PAPER}, Table IV")
        best = Verdict(f"{fam.upper()}: filter shape (5,5) is among the best", f"{PAPER}, Table IV")
        for claim, shape, direction in ((worst, "[1,5]", +1), (best, "[5,5]", -1)):
            if shape not in shapes or len(shapes) < 2:
                claim.todo = f"needs {fam.upper()} trials over model.kernel including {shape}: `sedbench sweep claims`"
                out.append(claim)
                continue
            # worst: every other shape minus (1,5) must be > 0; among the best: no shape may beat (5,5)
            results = [compare(Verdict(claim.claim, claim.source), g, shapes[shape], counts, direction)
                       for k, g in shapes.items() if k != shape]
            if any(r.difference is None for r in results):
                claim.todo = next(r.todo for r in results if r.difference is None)
            else:
                verdicts = {r.verdict for r in results}
                if shape == "[1,5]":
                    claim.verdict = ("holds" if verdicts == {"holds"} else
                                     "contradicted" if "contradicted" in verdicts else "inconclusive")
                else:  # "among the best": contradicted when some shape is better beyond noise
                    claim.verdict = "contradicted" if "contradicted" in verdicts else "holds"
                # the row shown is the comparison that decides: one with the claim's verdict, the closest to 0
                deciding = min((r for r in results if r.verdict == claim.verdict or claim.verdict == "holds"),
                               key=lambda r: min(abs(r.difference.low), abs(r.difference.high)))
                claim.compared, claim.difference, claim.n = deciding.compared, deciding.difference, deciding.n
            out.append(claim)
    return out


def seq_len_claim(rows, counts) -> Verdict:
    claim = Verdict("CRNN gains from sequences longer than 128 frames", f"{PAPER}, Sec. III-D and Table I")
    lengths = {int(r.params["data.seq_len"]) for r in completed(rows)
               if r.family == "crnn" and "data.seq_len" in r.params}
    short = best_group(rows, "crnn", lambda r: r.params.get("data.seq_len") == "128")
    longer = best_group(rows, "crnn", lambda r: int(r.params.get("data.seq_len", 0)) > 128)
    if short is None or longer is None:
        claim.todo = (f"needs CRNN trials at data.seq_len=128 and longer (found {sorted(lengths) or 'none'}): "
                      "`sedbench sweep claims`")
        return claim
    return compare(claim, longer, short, counts)


def pitch_shift_claim(rows) -> Verdict:
    claim = Verdict("CRNN and CNN lose less F1 under pitch shift than RNN", f"{PAPER}, Fig. 5")
    evaluated = sorted({r.family for r in rows if r.pitch_shift})
    claim.todo = ("an interval needs the shifted scores of several seeds per family, with per-file counts; "
                  f"evaluated now: {', '.join(evaluated) or 'none'} (one run each). Run `sedbench evaluate "
                  "RUN_ID ... --pitch-shift=-2,-1,1,2` on every seed of each family's best configuration")
    return claim


def write_claims(rows: list[TrialRow], out: Path, fetch) -> str:
    def counts(r: TrialRow):
        return file_counts(r, fetch).get("frm")

    claims = [*family_claims(rows, counts), *filter_shape_claims(rows, counts), seq_len_claim(rows, counts),
              pitch_shift_claim(rows)]
    lines = ["# The paper's claims, tested on this sweep", "",
             "Difference of test F1_frm (percentage points, claimed winner minus the other) with its 95 % interval "
             "from a hierarchical bootstrap over seeds and test files (2000 resamples; sedbench/stats.py). "
             "Verdict: **holds** when the interval excludes 0 in the paper's direction, **contradicted** when it "
             "excludes 0 the other way, **inconclusive** when it holds 0. Groups are the best configuration "
             "(mean validation score) of each side; n = trials (seeds, folds) per side.", "",
             "| claim | source | verdict | difference [95 % interval] | n | compared |", "|---|---|---|---:|---|---|"]
    for c in claims:
        diff = (f"{100 * c.difference.value:+.1f} [{100 * c.difference.low:+.1f}, {100 * c.difference.high:+.1f}]"
                if c.difference is not None else "–")
        lines.append(f"| {c.claim} | {c.source} | **{c.verdict}** | {diff} | {c.n or '–'} | {c.compared or '–'} |")
    todo = [c for c in claims if c.todo]
    if todo:
        lines += ["", "Not tested (yet):", ""] + [f"- {c.claim}: {c.todo}" for c in todo]
    (out / "claims.md").write_text("\n".join(lines) + "\n")
    return "claims.md"
