"""sed_eval's segment-based and event-based metrics, and the fast event-based path equal to them.

``sed_eval_segment`` runs sed_eval's SegmentBasedMetrics itself (``sedbench score --engine
sed_eval``, the equality tests). :func:`event_based` gives sed_eval's EventBasedMetrics (onset
collar 200 ms, offset collar max(200 ms, 20 % of the reference event), as DCASE): by default
through the fast path, which makes the same decisions with numpy instead of Python loops over
every pair of events and feeds them to sed_eval's own counters, so that sed_eval's formulas
give the scores:

* a system event is a hit for a reference event of the same class when
  ``|onset difference| <= t_collar`` and ``|offset difference| <= max(t_collar, pct x reference
  length)``, in the same float64 expressions;
* true positives are a maximum matching of hits, found by sed_eval's own ``bipartite_match`` on
  the hit graph built in sed_eval's order (which events it matches decides the substitutions);
* substitutions pair the remaining reference and system events in list order, first fit,
  ignoring labels; class-wise true positives are each class's maximum matching.

``engine="sed_eval"`` runs sed_eval's ``evaluate`` instead; tests/test_metrics_event.py proves
the two equal, on random lists and on events placed exactly on the collars.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
    return _result(m, resolution, _evaluate(m, reference, estimated, ("Ntp", "Nref", "Nsys", "S", "D", "I")))


def event_based(reference: dict[str, Sequence[Event]], estimated: dict[str, Sequence[Event]],
                classes: Sequence[str] | None = None, t_collar: float = 0.2,
                percentage_of_length: float = 0.2, engine: str = "fast") -> SegmentScores:
    """Event-based F1 and ER (sed_eval ``EventBasedMetrics``): overall, class-wise (with counts) and
    class-averaged, in the result form of the segment scores (``resolution`` 0: events, not segments).

    A system event matches a reference event of its class when its onset is within ``t_collar``
    of the reference onset and its offset within max(``t_collar``, ``percentage_of_length`` x the
    reference's length) of the reference offset (DCASE: 200 ms and 20 %).
    """
    import sed_eval

    classes = _classes(reference, estimated, classes)
    m = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=t_collar,
                                               percentage_of_length=percentage_of_length)
    # substitutions, then the deletions (Nfn) and insertions (Nfp) left after them: ER = (S + D + I) / Nref
    keys = ("Ntp", "Nref", "Nsys", "Nsubs", "Nfn", "Nfp")
    if engine == "sed_eval":
        return _result(m, 0.0, _evaluate(m, reference, estimated, keys))
    return _result(m, 0.0, _evaluate(m, reference, estimated, keys, lambda ref, est: _fast_evaluate(
        m, ref, est, list(classes), t_collar, percentage_of_length)))


def _hits(ref: np.ndarray, est: np.ndarray, t_collar: float, pct: float) -> np.ndarray:
    """``(Nref, Nsys)``: onset and offset conditions (labels aside), as sed_eval's validate_onset/offset."""
    onset = np.abs(ref[:, None, 0] - est[None, :, 0]) <= t_collar
    collar = np.maximum(t_collar, pct * (ref[:, 1] - ref[:, 0]))
    return onset & (np.abs(ref[:, None, 1] - est[None, :, 1]) <= collar[:, None])


def _matching(hit: np.ndarray) -> dict:
    """sed_eval's maximum matching of a hit matrix: its own bipartite_match on the graph built its way."""
    from sed_eval import util

    graph: dict = {}
    for ref_i, est_i in zip(*np.where(hit), strict=True):
        graph.setdefault(est_i, []).append(ref_i)
    return util.bipartite_match(graph)


def _fast_evaluate(m, reference: Sequence[Event], estimated: Sequence[Event], classes: list[str],
                   t_collar: float, pct: float) -> None:
    """What ``EventBasedMetrics.evaluate`` adds to ``m``'s counters for one file, decided with numpy."""
    index = {c: k for k, c in enumerate(classes)}
    ref = np.array([(e.onset, e.offset) for e in reference], np.float64).reshape(-1, 2)
    est = np.array([(e.onset, e.offset) for e in estimated], np.float64).reshape(-1, 2)
    ref_cls = np.array([index.get(e.label, -1) for e in reference], np.int64)
    est_cls = np.array([index.get(e.label, -2) for e in estimated], np.int64)
    m.evaluated_length += max((e.offset for e in reference), default=0)
    m.evaluated_files += 1
    timing = _hits(ref, est, t_collar, pct)
    same = np.array([[a.label == b.label for b in estimated] for a in reference], bool).reshape(timing.shape)
    matching = _matching(same & timing)
    ref_ok, sys_ok = np.zeros(len(ref), bool), np.zeros(len(est), bool)
    for r, s in matching.items():
        ref_ok[r], sys_ok[s] = True, True
    n_tp, n_subs = len(matching), 0
    free = ~sys_ok  # substitutions: leftover pairs that meet the collars, first fit in list order
    for j in np.flatnonzero(~ref_ok):
        candidates = np.flatnonzero(free & timing[j])
        if len(candidates):
            free[candidates[0]] = False
            n_subs += 1
    o = m.overall
    o["Nref"] += len(ref)
    o["Nsys"] += len(est)
    o["Ntp"] += n_tp
    o["Nsubs"] += n_subs
    o["Nfp"] += len(est) - n_tp - n_subs
    o["Nfn"] += len(ref) - n_tp - n_subs
    for k, label in enumerate(classes):
        r, s = ref_cls == k, est_cls == k
        n_ref, n_sys = int(r.sum()), int(s.sum())
        tp = len(_matching(timing[np.ix_(r, s)])) if n_ref and n_sys else 0
        c = m.class_wise[label]
        c["Nref"] += n_ref
        c["Nsys"] += n_sys
        c["Ntp"] += tp
        c["Nfp"] += n_sys - tp
        c["Nfn"] += n_ref - tp


def _evaluate(m, reference, estimated, keys: Sequence[str], evaluate=None) -> list[tuple[int, ...]]:
    """Feed ``m`` file by file (sed_eval's ``evaluate``, or ``evaluate(ref, est)`` adding to its counters);
    each file's counts (what it added to the overall ones) in FILE_COUNTS order."""
    per_file = []
    for name in sorted(set(reference) | set(estimated)):
        before = [m.overall[k] for k in keys]
        if evaluate is None:
            m.evaluate(_as_dicts(name, reference.get(name, [])), _as_dicts(name, estimated.get(name, [])))
        else:
            evaluate(reference.get(name, []), estimated.get(name, []))
        per_file.append(tuple(int(round(m.overall[k] - b)) for k, b in zip(keys, before, strict=True)))
    return per_file


def _result(m, resolution: float, file_counts: list[tuple[int, ...]]) -> SegmentScores:
    o = m.results_overall_metrics()
    overall = {**o["f_measure"], **o["error_rate"]}
    class_wise = {}
    for label, r in m.results_class_wise_metrics().items():
        class_wise[label] = {**r["f_measure"], **r["error_rate"], **{k: float(v) for k, v in r["count"].items()}}
    avg = m.results_class_wise_average_metrics()
    average = {**avg["f_measure"], **avg["error_rate"]}
    counts = {k: float(v) for k, v in m.overall.items()}
    return SegmentScores(float(resolution), overall, class_wise, average, counts, m.evaluated_files,
                         float(getattr(m, "evaluated_length_seconds", 0.0)), file_counts)
