"""``sedbench score``: a system's event list scored against a reference event list, as sed_eval does."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path


def score_event_files(reference: str | Path, estimated: str | Path, resolutions: Sequence[float] = (0.02, 1.0),
                      engine: str = "fast") -> dict[float, tuple[object, float]]:
    """``{resolution: (SegmentScores, seconds taken)}`` for two event tables (filename onset offset label),
    scored by the vectorized path (``fast``, equal to sed_eval) or by ``sed_eval`` itself."""
    from sedbench.data.annotations import read_event_table
    from sedbench.metrics.segment import group_by_file, segment_scores

    ref = group_by_file((name, ev) for _, name, ev in read_event_table(reference))
    est = group_by_file((name, ev) for _, name, ev in read_event_table(estimated))
    classes = sorted({e.label for evs in (*ref.values(), *est.values()) for e in evs})
    if engine == "sed_eval":
        from sedbench.metrics.event import sed_eval_segment as score
    else:
        score = segment_scores
    results = {}
    for res in resolutions:
        t0 = time.perf_counter()
        results[res] = (score(ref, est, classes, res), time.perf_counter() - t0)
    return results


def as_json(results: dict[float, tuple[object, float]]) -> str:
    import json

    return json.dumps({f"{res:g}": {"overall": r.overall, "class_wise": r.class_wise, "class_average": r.class_average,
                                    "files": r.files, "evaluated_seconds": r.evaluated_seconds,
                                    "seconds": round(t, 4)}
                       for res, (r, t) in results.items()}, indent=2, default=float)


def as_text(results: dict[float, tuple[object, float]], engine: str) -> str:
    from sedbench.report.text import score_table

    return "\n".join(score_table(r, f"segment-based, {res:g}-s segments ({engine}, {t:.3f} s)")
                     for res, (r, t) in results.items())
