"""The reference implementation itself: sed_eval's segment-based and event-based metrics.

Used by ``sedbench score --engine sed_eval``, by the equality tests and for event-based
scores (onset collar 200 ms, offset collar 20 % of the event or 200 ms, as DCASE).
"""

from __future__ import annotations

from collections.abc import Sequence

from sedbench.data.annotations import Event
from sedbench.metrics.segment import SegmentScores


def _as_dicts(name: str, events: Sequence[Event]) -> list[dict]:
    return [{"filename": name, "onset": e.onset, "offset": e.offset, "event_label": e.label} for e in events]


def _classes(reference, estimated, classes):
    if classes is not None:
        return list(classes)
    return sorted({e.label for evs in (*reference.values(), *estimated.values()) for e in evs})


def sed_eval_segment(reference: dict[str, Sequence[Event]], estimated: dict[str, Sequence[Event]],
                     classes: Sequence[str] | None = None, resolution: float = 1.0) -> SegmentScores:
    """sed_eval's ``SegmentBasedMetrics`` file by file, returned in our result form."""
    import sed_eval

    classes = _classes(reference, estimated, classes)
    m = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=classes, time_resolution=resolution)
    for name in sorted(set(reference) | set(estimated)):
        m.evaluate(_as_dicts(name, reference.get(name, [])), _as_dicts(name, estimated.get(name, [])))
    o = m.results_overall_metrics()
    overall = {**o["f_measure"], **o["error_rate"]}
    class_wise = {}
    for label, r in m.results_class_wise_metrics().items():
        class_wise[label] = {**r["f_measure"], **r["error_rate"], **{k: float(v) for k, v in r["count"].items()}}
    avg = m.results_class_wise_average_metrics()
    average = {**avg["f_measure"], **avg["error_rate"]}
    counts = {k: float(v) for k, v in m.overall.items()}
    return SegmentScores(float(resolution), overall, class_wise, average, counts, m.evaluated_files,
                         float(m.evaluated_length_seconds))


def event_based(reference: dict[str, Sequence[Event]], estimated: dict[str, Sequence[Event]],
                classes: Sequence[str] | None = None, t_collar: float = 0.2,
                percentage_of_length: float = 0.2) -> dict:
    """Event-based F1 and ER (sed_eval ``EventBasedMetrics``): overall and class-wise."""
    import sed_eval

    classes = _classes(reference, estimated, classes)
    m = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=t_collar,
                                               percentage_of_length=percentage_of_length)
    for name in sorted(set(reference) | set(estimated)):
        m.evaluate(_as_dicts(name, reference.get(name, [])), _as_dicts(name, estimated.get(name, [])))
    o = m.results_overall_metrics()
    return {"overall": {**o["f_measure"], **o["error_rate"]},
            "class_wise": {c: {**r["f_measure"], **r["error_rate"]} for c, r in m.results_class_wise_metrics().items()}}
