"""Segment-based metrics, vectorized, equal to ``sed_eval.sound_event.SegmentBasedMetrics``.

Definitions (Mesaros et al. 2016; Cakir et al. 2017, Sec. III-B): the reference and the
system output are rasterized into segments of ``resolution`` seconds; in every segment
and class a system activity is a true positive when the reference is active too.
Per segment, with ``Nref``/``Nsys`` active classes and ``Ntp`` matches,
S = min(Nref, Nsys) - Ntp, D = max(0, Nref - Nsys), I = max(0, Nsys - Nref);
ER = (S + D + I) / Nref and F1 = 2PR / (P + R), accumulated over all segments of all
files (micro-average), never averaged per file.

What makes it exactly sed_eval's (each trap proven by tests/test_metrics_segment.py):

* rasterization of an event list uses ``floor(onset * 1 / res)`` and
  ``ceil(offset * 1 / res)`` in floating point, so a prediction written as events at
  ``k * hop`` can come back one frame wider; :func:`frames_rolled` reproduces that;
* segments restart at t = 0 in every file;
* a file's evaluated length is the largest offset of its reference or estimate;
* overlapping same-class events are merged (a segment is active or not);
* P and R are NaN when there is nothing to divide by, F1 is 0 when P = R = 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sedbench.data.annotations import Event

EPS = np.spacing(1)
COUNTS = ("Ntp", "Ntn", "Nfp", "Nfn", "Nref", "Nsys")
FILE_COUNTS = ("Ntp", "Nref", "Nsys", "S", "D", "I")  # one file's overall counts: its F1 and ER add up over files


def _fill(on: np.ndarray, off: np.ndarray, cls: np.ndarray, length: int, n_classes: int) -> np.ndarray:
    """Boolean roll with ``roll[on[i]:off[i], cls[i]] = True`` for every i (empty slices allowed).

    Built class-major (contiguous along time, where the cumulative sum runs) and returned
    as a ``(length, n_classes)`` view.
    """
    diff = np.zeros((n_classes, length + 1), np.int32)
    np.add.at(diff, (cls, on), 1)
    np.add.at(diff, (cls, off), -1)
    return (np.cumsum(diff[:, :length], axis=1) > 0).T


def rasterize(onsets: np.ndarray, offsets: np.ndarray, cls: np.ndarray, n_classes: int,
              resolution: float) -> np.ndarray:
    """sed_eval's ``event_list_to_event_roll``: length ``ceil(max offset / res)``, same float expressions."""
    onsets, offsets = np.asarray(onsets, np.float64), np.asarray(offsets, np.float64)
    if len(offsets) == 0:
        return np.zeros((0, n_classes), bool)
    res = float(resolution)
    length = int(math.ceil(float(offsets.max()) * 1 / res))
    on = np.floor(onsets * 1 / res).astype(np.int64)
    off = np.ceil(offsets * 1 / res).astype(np.int64)
    return _fill(on, off, np.asarray(cls, np.int64), length, n_classes)


def event_roll(events: Sequence[Event], classes: Sequence[str], resolution: float) -> np.ndarray:
    index = {c: k for k, c in enumerate(classes)}
    return rasterize([e.onset for e in events], [e.offset for e in events], [index[e.label] for e in events],
                     len(classes), resolution)


def runs(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Active runs of a ``(T, K)`` binary matrix: (start frame, end frame exclusive, class)."""
    b = np.asarray(frames) > 0
    padded = np.zeros((b.shape[0] + 2, b.shape[1]), np.int8)
    padded[1:-1] = b
    d = np.diff(padded, axis=0)
    s_t, s_k = np.nonzero(d == 1)
    e_t, e_k = np.nonzero(d == -1)
    so, eo = np.lexsort((s_t, s_k)), np.lexsort((e_t, e_k))  # pair starts and ends class by class
    return s_t[so], e_t[eo], s_k[so]


def frames_to_events(frames: np.ndarray, classes: Sequence[str], hop: float) -> list[Event]:
    """Binary activity ``(T, K)`` -> events ``[k*hop, m*hop)``: how a system writes its output."""
    start, end, cls = runs(frames)
    return sorted(Event(float(a * hop), float(b * hop), classes[k]) for a, b, k in
                  zip(start.tolist(), end.tolist(), cls.tolist(), strict=True))


def frames_rolled(frames: np.ndarray, hop: float, resolution: float) -> tuple[np.ndarray, float]:
    """The roll sed_eval builds from :func:`frames_to_events` of ``frames``, and its max offset."""
    start, end, cls = runs(frames)
    if len(start) == 0:
        return np.zeros((0, frames.shape[1]), bool), 0.0
    onsets, offsets = start * float(hop), end * float(hop)  # the same products as a * hop in Python
    return rasterize(onsets, offsets, cls, frames.shape[1], resolution), float(offsets.max())


@dataclass
class SegmentScores:
    """One result object: overall, class-wise and class-averaged figures (as sed_eval's results())."""

    resolution: float
    overall: dict[str, float]
    class_wise: dict[str, dict[str, float]]
    class_average: dict[str, float]
    counts: dict[str, float] = field(default_factory=dict)
    files: int = 0
    evaluated_seconds: float = 0.0
    file_counts: list[tuple[int, ...]] = field(default_factory=list)  # per file: FILE_COUNTS (intervals over files)

    @property
    def f1(self) -> float:
        return self.overall["f_measure"]

    @property
    def er(self) -> float:
        return self.overall["error_rate"]


def _precision(tp, nsys):
    return float("nan") if nsys == 0 else float(tp / float(nsys))


def _f_measure(p, r):
    return 0.0 if (p == 0 and r == 0) else float(2 * p * r / (p + r))


class SegmentAccumulator:
    """Accumulates segment statistics file by file; :meth:`result` gives sed_eval's numbers.

    ``add_events`` takes reference and estimate as event lists (the reference path);
    ``add_frames`` takes the estimate as a binary frame matrix at ``hop`` seconds and
    scores it exactly as sed_eval would score those frames written as events.
    """

    def __init__(self, classes: Sequence[str], resolution: float = 1.0):
        self.classes = list(classes)
        self.resolution = float(resolution)
        self.overall = dict.fromkeys((*COUNTS, "S", "D", "I"), 0)
        self.class_wise = np.zeros((len(self.classes), len(COUNTS)), np.int64)
        self.files = 0
        self.evaluated_seconds = 0.0
        self.file_counts: list[tuple[int, ...]] = []  # per file: FILE_COUNTS, for intervals over files

    def add_events(self, reference: Sequence[Event], estimated: Sequence[Event],
                   evaluated_length: float | None = None) -> None:
        ref = event_roll(reference, self.classes, self.resolution)
        est = event_roll(estimated, self.classes, self.resolution)
        longest = max([e.offset for e in (*reference, *estimated)], default=0)
        self._add(ref, est, longest if evaluated_length is None else evaluated_length)

    def add_frames(self, reference: Sequence[Event], estimated_frames: np.ndarray, hop: float,
                   evaluated_length: float | None = None) -> None:
        ref = event_roll(reference, self.classes, self.resolution)
        est, est_max = frames_rolled(np.asarray(estimated_frames), hop, self.resolution)
        longest = max([e.offset for e in reference] + [est_max])
        self._add(ref, est, longest if evaluated_length is None else evaluated_length)

    def _add(self, ref: np.ndarray, est: np.ndarray, evaluated_length: float) -> None:
        n = int(math.ceil(evaluated_length * 1 / self.resolution))
        ref, est = _fit(ref, n), _fit(est, n)
        self.files += 1
        self.evaluated_seconds += evaluated_length
        tp = ref & est
        # per class: FP = Nsys - TP, FN = Nref - TP, TN = segments - Nref - Nsys + TP
        ntp_c, nref_c, nsys_c = (np.count_nonzero(m, axis=0).astype(np.int64) for m in (tp, ref, est))
        per_class = np.stack([ntp_c, n - nref_c - nsys_c + ntp_c, nsys_c - ntp_c, nref_c - ntp_c, nref_c, nsys_c],
                             axis=1)
        self.class_wise += per_class
        nref, nsys, ntp = (m.sum(axis=1, dtype=np.int32) for m in (ref, est, tp))
        for key, col in zip(COUNTS, per_class.sum(axis=0).tolist(), strict=True):
            self.overall[key] += col
        sub, dele, ins = (int((np.minimum(nref, nsys) - ntp).sum()), int(np.maximum(0, nref - nsys).sum()),
                          int(np.maximum(0, nsys - nref).sum()))
        self.overall["S"] += sub
        self.overall["D"] += dele
        self.overall["I"] += ins
        self.file_counts.append((int(ntp_c.sum()), int(nref_c.sum()), int(nsys_c.sum()), sub, dele, ins))

    def result(self) -> SegmentScores:
        o = self.overall
        p, r = _precision(o["Ntp"], o["Nsys"]), _precision(o["Ntp"], o["Nref"])
        rates = {k: float(o[k] / (o["Nref"] + EPS)) for k in ("S", "D", "I")}
        overall = {"f_measure": _f_measure(p, r), "precision": p, "recall": r,
                   "error_rate": float(rates["S"] + rates["D"] + rates["I"]),
                   "substitution_rate": rates["S"], "deletion_rate": rates["D"], "insertion_rate": rates["I"]}
        class_wise = {}
        for label, row in zip(self.classes, self.class_wise.tolist(), strict=True):
            c = dict(zip(COUNTS, row, strict=True))
            cp, cr = _precision(c["Ntp"], c["Nsys"]), _precision(c["Ntp"], c["Nref"])
            d, i = float(c["Nfn"] / (c["Nref"] + EPS)), float(c["Nfp"] / (c["Nref"] + EPS))
            class_wise[label] = {"f_measure": _f_measure(cp, cr), "precision": cp, "recall": cr,
                                 "error_rate": float(0.0 + d + i), "deletion_rate": d, "insertion_rate": i,
                                 "Nref": float(c["Nref"]), "Nsys": float(c["Nsys"])}
        average = {}
        for key in ("f_measure", "precision", "recall", "error_rate", "deletion_rate", "insertion_rate"):
            vals = [cw[key] for cw in class_wise.values()]
            average[key] = float(np.nanmean(vals)) if vals and not np.all(np.isnan(vals)) else float("nan")
        return SegmentScores(self.resolution, overall, class_wise, average, {k: float(v) for k, v in o.items()},
                             self.files, self.evaluated_seconds, list(self.file_counts))


def _fit(roll: np.ndarray, n: int) -> np.ndarray:
    """sed_eval's ``match_event_roll_lengths`` to a given length: pad with zeros or cut."""
    if roll.shape[0] >= n:
        return roll[:n]
    out = np.zeros((roll.shape[1], n), bool)  # class-major like the rolls of _fill
    out[:, : roll.shape[0]] = roll.T
    return out.T


def segment_scores(reference: dict[str, Sequence[Event]], estimated: dict[str, Sequence[Event]],
                   classes: Sequence[str] | None = None, resolution: float = 1.0) -> SegmentScores:
    """Score event lists per file (a file missing on one side has no events there)."""
    if classes is None:
        classes = sorted({e.label for evs in (*reference.values(), *estimated.values()) for e in evs})
    acc = SegmentAccumulator(classes, resolution)
    for name in sorted(set(reference) | set(estimated)):
        acc.add_events(reference.get(name, []), estimated.get(name, []))
    return acc.result()


def group_by_file(rows: Iterable[tuple[str, Event | None]]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for name, ev in rows:
        out.setdefault(name, [])
        if ev is not None:
            out[name].append(ev)
    return out


def score_activity(references: Sequence[Sequence[Event]], probabilities: Sequence[np.ndarray],
                   classes: Sequence[str], hop: float, threshold: float = 0.5,
                   resolutions: Sequence[float] = (1.0,)) -> dict:
    """Per-file ``(frames, K)`` probabilities, thresholded at ``threshold``, scored against the reference
    events: ``f1_frm``/``er_frm`` on the frame grid (``hop``) and ``f1_<r>sec``/``er_<r>sec`` per other
    resolution, with frame precision/recall and class-wise frame F1 (``class_wise``), precision
    (``class_precision``) and recall (``class_recall``), and each file's counts (``file_counts``, per
    resolution tag) from which F1 and ER add up again: what a bootstrap over files resamples."""
    out: dict = {}
    counts = {}
    for res in (hop, *[r for r in resolutions if r != hop]):
        acc = SegmentAccumulator(classes, res)
        for ref, p in zip(references, probabilities, strict=True):
            acc.add_frames(ref, p > threshold, hop)
        r = acc.result()
        tag = "frm" if res == hop else f"{res:g}sec"
        out[f"f1_{tag}"], out[f"er_{tag}"] = r.f1, r.er
        counts[tag] = acc.file_counts
        if res == hop:
            out["precision_frm"], out["recall_frm"] = r.overall["precision"], r.overall["recall"]
            out["class_wise"] = {c: v["f_measure"] for c, v in r.class_wise.items()}
            out["class_precision"] = {c: v["precision"] for c, v in r.class_wise.items()}
            out["class_recall"] = {c: v["recall"] for c, v in r.class_wise.items()}
    out = {k: ({c: float(np.nan_to_num(x)) for c, x in v.items()} if isinstance(v, dict) else float(np.nan_to_num(v)))
           for k, v in out.items()}
    out["file_counts"] = counts  # {"frm" | "<r>sec": [FILE_COUNTS per file]}: intervals over files
    return out
