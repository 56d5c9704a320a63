"""``claims.md``: the paper's claims that a sweep's trials can test, each with a verdict and its numbers.

Every claim compares two groups of completed trials on test F1_frm; a group is one configuration
(its trials differ only by seed or fold). The difference (claimed winner minus the other) and its
95 % interval come from the hierarchical bootstrap over seeds and test files of
:func:`sedbench.stats.hierarchical_difference`, on the runs' ``file_counts.csv`` artifacts; the verdict
follows :func:`sedbench.stats.verdict`: ``holds`` when the interval excludes 0 in the paper's
direction, ``contradicted`` when it excludes 0 the other way, ``inconclusive`` otherwise. A claim the
trials cannot test says what to run. The rules below were fixed before any study was run, with one
correction made after the first ``claims`` report: filter shapes and sequence lengths had been compared
as each value's best configuration anywhere in the sweep, which set the 60k-parameter (5,5) CRNN against
5k-parameter (1,5) ones; they are now compared all else equal (:func:`matched_groups`), as the paper
varies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sedbench.report.collect import TrialRow, best_group, completed, file_counts, matched_groups, mean_of, shift_counts

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


NO_COUNTS = "the runs have no file_counts.csv artifact (recorded by an older sedbench, or no MLflow store)"


def compare(claim: Verdict, a: list[TrialRow], b: list[TrialRow], counts, direction: int = +1,
            statistic: str = "f1", missing: str = NO_COUNTS) -> Verdict:
    """Fill ``claim`` with the difference of ``statistic`` of group ``a`` minus ``b`` (per-run counts from
    ``counts(row)``, None for a run that has none: then ``missing`` says what to run)."""
    import numpy as np

    from sedbench.stats import hierarchical_difference, verdict

    ca, cb = [counts(r) for r in a], [counts(r) for r in b]
    claim.compared = f"{_describe(a)} vs {_describe(b)}"
    claim.n = f"{len(a)} vs {len(b)}"
    if any(c is None for c in (*ca, *cb)):
        claim.todo = f"{missing} ({sum(c is None for c in (*ca, *cb))} of {len(ca) + len(cb)} runs lack them)"
        return claim
    if any(np.shape(c) != np.shape(ca[0]) for c in (*ca, *cb)):
        claim.todo = "the runs were scored on different test files"
        return claim
    claim.difference = hierarchical_difference(ca, cb, statistic)
    claim.verdict = verdict(claim.difference, direction)
    return claim


def _describe(trials: list[TrialRow]) -> str:
    r = trials[0]
    params = f", {int(r.attrs['n_params']):,} params" if r.attrs.get("n_params") else ""
    return f"{r.family.upper()} `{r.config_key() or 'base'}`{params}, F1 {100 * mean_of(trials, 'test/f1_frm'):.1f} %"


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


def filter_shape_claims(rows, counts) -> list[Verdict]:
    out = []
    for fam in ("crnn", "cnn"):
        shapes = matched_groups(rows, fam, "model.kernel", lambda values: "[1,5]" in values or "[5,5]" in values)
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
    lengths = matched_groups(rows, "crnn", "data.seq_len",
                             lambda values: "128" in values and any(int(v) > 128 for v in values))
    if not lengths:
        found = sorted({int(r.params["data.seq_len"]) for r in completed(rows)
                        if r.family == "crnn" and "data.seq_len" in r.params})
        claim.todo = (f"needs CRNN trials at data.seq_len=128 and longer, all else equal (found {found or 'none'}): "
                      "`sedbench sweep claims`")
        return claim
    short = lengths["128"]
    longer = max((ts for v, ts in lengths.items() if int(v) > 128), key=lambda ts: mean_of(ts, "val/f1_frm"))
    return compare(claim, longer, short, counts)


def pitch_shift_claims(rows, counts) -> list[Verdict]:
    """Fig. 5: the change of F1_frm under pitch shift (mean over the evaluated shifts minus the unshifted
    score, from the same re-scoring) of the CRNN and of the CNN is larger (less F1 lost) than the RNN's."""
    out = []
    rnn = best_group(rows, "rnn")
    for fam in ("crnn", "cnn"):
        claim = Verdict(f"{fam.upper()} loses less F1 under pitch shift than RNN", f"{PAPER}, Fig. 5")
        mine = best_group(rows, fam)
        todo = ("needs the pitch-shifted scores of every seed of the best CRNN, CNN and RNN configurations: "
                "`sedbench evaluate --sweep NAME --pitch-shift=-2,-1,1,2`, then the report again")
        if mine is None or rnn is None:
            claim.todo = todo
            out.append(claim)
        else:
            out.append(compare(claim, mine, rnn, counts, +1, statistic="f1_change", missing=todo))
    return out


def write_claims(rows: list[TrialRow], out: Path, fetch) -> str:
    def counts(r: TrialRow):
        return file_counts(r, fetch).get("frm")

    def shifts(r: TrialRow):
        """(files, shifts, 6), the unshifted re-score first; None without pitch-shifted counts."""
        by_shift = shift_counts(r, fetch)
        if 0 not in by_shift or len(by_shift) < 2:
            return None
        order = [0, *sorted(q for q in by_shift if q != 0)]
        return [list(per_shift) for per_shift in zip(*(by_shift[q] for q in order), strict=True)]

    claims = [*family_claims(rows, counts), *filter_shape_claims(rows, counts), seq_len_claim(rows, counts),
              *pitch_shift_claims(rows, shifts)]
    lines = ["# The paper's claims, tested on this sweep", "",
             "Difference of test F1_frm (percentage points, claimed winner minus the other) with its 95 % interval "
             "from a hierarchical bootstrap over seeds and test files (2000 resamples; sedbench/stats.py). "
             "Verdict: **holds** when the interval excludes 0 in the paper's direction, **contradicted** when it "
             "excludes 0 the other way, **inconclusive** when it holds 0. Groups are the best configuration "
             "(mean validation score) of each side; filter shapes and sequence lengths are compared all else equal "
             "(configurations that differ only in that setting); n = trials (seeds, folds) per side. For the "
             "pitch-shift claims the statistic is each side's change of F1_frm under shift (mean over the shifts "
             "minus the unshifted re-score), so the difference is how much less F1 the claimed winner loses.", "",
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
