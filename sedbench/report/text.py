"""Plain-text tables for the terminal (scores, summaries)."""

from __future__ import annotations

import math

from sedbench.metrics.segment import SegmentScores


def _fmt(v: float, pct: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def score_table(r: SegmentScores, title: str) -> str:
    """Overall and class-wise F1 / precision / recall (%) and error rate, as sed_eval reports them."""
    o = r.overall
    lines = [title, f"  files {r.files}, evaluated {r.evaluated_seconds / 60:.1f} min",
             f"  F1 {_fmt(o['f_measure'])} %   P {_fmt(o['precision'])} %   R {_fmt(o['recall'])} %   "
             f"ER {_fmt(o['error_rate'], False)} (S {_fmt(o['substitution_rate'], False)}, "
             f"D {_fmt(o['deletion_rate'], False)}, I {_fmt(o['insertion_rate'], False)})",
             f"  class-wise average: F1 {_fmt(r.class_average['f_measure'])} %   ER {_fmt(r.class_average['error_rate'], False)}",
             f"  {'class':<28}{'F1 %':>8}{'P %':>8}{'R %':>8}{'ER':>8}{'Nref':>8}{'Nsys':>8}"]
    for label, c in r.class_wise.items():
        lines.append(f"  {label:<28}{_fmt(c['f_measure']):>8}{_fmt(c['precision']):>8}{_fmt(c['recall']):>8}"
                     f"{_fmt(c['error_rate'], False):>8}{int(c['Nref']):>8}{int(c['Nsys']):>8}")
    return "\n".join(lines)
