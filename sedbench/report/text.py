"""Plain-text tables for the terminal (scores, summaries)."""

from __future__ import annotations

from sedbench.metrics.segment import SegmentScores
from sedbench.report.common import fmt


def score_table(r: SegmentScores, title: str, events: bool = False) -> str:
    """Overall and class-wise F1 / precision / recall (%) and error rate, as sed_eval reports them
    (``events``: event-based scores, which count events rather than evaluated time)."""
    o = r.overall
    lines = [title, f"  files {r.files}" + ("" if events else f", evaluated {r.evaluated_seconds / 60:.1f} min"),
             f"  F1 {fmt(o['f_measure'], True)} %   P {fmt(o['precision'], True)} %   R {fmt(o['recall'], True)} %   "
             f"ER {fmt(o['error_rate'])} (S {fmt(o['substitution_rate'])}, "
             f"D {fmt(o['deletion_rate'])}, I {fmt(o['insertion_rate'])})",
             f"  class-wise average: F1 {fmt(r.class_average['f_measure'], True)} %   "
             f"ER {fmt(r.class_average['error_rate'])}",
             f"  {'class':<28}{'F1 %':>8}{'P %':>8}{'R %':>8}{'ER':>8}{'Nref':>8}{'Nsys':>8}"]
    for label, c in r.class_wise.items():
        er = fmt(c["error_rate"]) if c["Nref"] else "–"  # no reference: sed_eval divides by eps (about 1e16)
        lines.append(f"  {label:<28}{fmt(c['f_measure'], True):>8}{fmt(c['precision'], True):>8}"
                     f"{fmt(c['recall'], True):>8}{er:>8}{int(c['Nref']):>8}{int(c['Nsys']):>8}")
    if any(not c["Nref"] for c in r.class_wise.values()):
        lines.append("  –: a class without reference " + ("events" if events else "segments") + " has no error "
                     "rate (sed_eval's, in --json and in the class-wise average, divides by a tiny epsilon)")
    return "\n".join(lines)
