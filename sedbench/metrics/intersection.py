"""sed_scores_eval's intersection-based intermediate statistics (the deltas PSDS is computed from), equal to
its ``intersection_based.intermediate_statistics_deltas`` and computed in time linear in a file's frames.

What sed_scores_eval computes, per file and class: for every distinct score u, the detections at threshold u
(maximal runs of frames with score >= u) and their true positives, false positives and cross triggers; then
the change of each at each u. It builds a (thresholds x detections x reference events) array per file, so its
time and memory grow with the square of a file's frames: on a fragmented output (an under-trained model,
nearly every frame a distinct score) one 60-s file of 16 classes took it 74.6 s, so the 5.7-minute files of
a paper-size test split would take about 40 minutes each (by the square law; docs/metrics.md).

Here: a run of frames is a detection for a whole range of thresholds. The run around frame i at threshold s_i
is [L, R) with L - 1 and R the nearest frames on each side scoring below s_i (a monotonic stack, one pass each
way); it appears when the threshold falls to its lowest score (its *birth*) and is replaced by a longer run
when the threshold falls to the higher of its two neighbours' scores (its *death*). Every run that is ever a
detection is one of these, at most one per frame. A run's overlap with each reference event, its detection
tolerance (DTC) and cross-trigger (CTTC) tests are computed once, with sed_scores_eval's own formulas and
rounding; a false positive or a cross trigger is then +1 at its run's birth and -1 at its death. A reference
event's coverage by relevant runs (the ground-truth criterion, GTC) is a running sum over the births and deaths
of the relevant runs that overlap it, tested after every distinct score.

Equal to sed_scores_eval: the same change-point scores and the same deltas, hence the same PSDS, on every case
of tests/test_psds.py (fragmented, smooth, tied and coarsely quantized scores, reference times on and off the
frame grid, files without events). One difference in arithmetic, not in method: a reference event's coverage
is summed in score order (adding and removing runs) where sed_scores_eval sums it afresh in time order; both
are rounded to ``time_decimals`` (6) before the test, so they could differ only where the exact coverage lies
within about 1e-13 s of a rounding boundary.
"""

from __future__ import annotations

import numpy as np

INTERSECTION_SETTINGS = ("dtc_threshold", "gtc_threshold", "cttc_threshold")


def runs(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every run of frames that is a detection at some threshold: ``(start, end, birth, death)``, frames
    ``[start, end)``, a detection for thresholds ``u`` with ``death < u <= birth`` (``death`` -inf: to the end)."""
    scores = np.asarray(scores, np.float64)
    s = scores.tolist()
    n = len(s)
    left, stack = [0] * n, []
    for i, v in enumerate(s):  # nearest frame to the left with a lower score
        while stack and s[stack[-1]] >= v:
            stack.pop()
        left[i] = stack[-1] if stack else -1
        stack.append(i)
    right, stack = [0] * n, []
    for i in range(n - 1, -1, -1):  # ... and to the right
        v = s[i]
        while stack and s[stack[-1]] >= v:
            stack.pop()
        right[i] = stack[-1] if stack else n
        stack.append(i)
    start, end = np.asarray(left) + 1, np.asarray(right)
    _, first = np.unique(start * (n + 1) + end, return_index=True)  # the frames at a run's lowest score share it
    start, end = start[first], end[first]
    padded = np.concatenate(([-np.inf], scores, [-np.inf]))  # padded[j + 1] is frame j's score
    return start, end, scores[first], np.maximum(padded[start], padded[end + 1])


def _overlaps(on: np.ndarray, off: np.ndarray, ref_on: np.ndarray, ref_off: np.ndarray) -> np.ndarray:
    """(runs, events) intersections, as sed_scores_eval computes them."""
    return np.maximum(np.minimum(off[:, None], ref_off) - np.maximum(on[:, None], ref_on), 0.)


def class_deltas(scores: np.ndarray, timestamps: np.ndarray, target: tuple[np.ndarray, np.ndarray],
                 others: dict[str, tuple[np.ndarray, np.ndarray]], settings: list[dict],
                 time_decimals: int = 6) -> list[tuple[np.ndarray, dict]]:
    """One file's deltas for one class, for each of ``settings`` (``dtc_threshold``, ``gtc_threshold``,
    ``cttc_threshold``): ``(change-point scores, {"tps", "fps", "cts" or "cts\\\\<class>"...})`` as
    sed_scores_eval's intersection-based deltas."""
    start, end, birth, death = runs(scores)
    on, off = timestamps[start], timestamps[end]
    length = off - on
    dies = np.isfinite(death)
    ref_on, ref_off = target
    target_overlap = _overlaps(on, off, ref_on, ref_off)                               # (runs, events)
    in_target = np.round(np.sum(target_overlap, axis=-1), decimals=time_decimals)
    other_overlap = {c: _overlaps(on, off, *times) for c, times in others.items() if len(times[0])}
    out = []
    for setting in settings:
        relevant = in_target >= np.round(setting["dtc_threshold"] * length, decimals=time_decimals)
        events: dict[str, tuple[list, list]] = {"tps": ([], []), "fps": ([], [])}

        _count(events, "fps", ~relevant, birth, death, dies)
        cttc = setting.get("cttc_threshold")
        if cttc is not None:
            for c in others:
                events[f"cts\\{c}"] = ([], [])
                if c in other_overlap:
                    total = np.round(np.sum((1 - relevant[:, None]) * other_overlap[c], axis=-1),
                                     decimals=time_decimals)
                    crossing = total >= np.round(cttc * length, decimals=time_decimals)
                    _count(events, f"cts\\{c}", crossing, birth, death, dies)
        gtc = np.round(setting["gtc_threshold"] * (ref_off - ref_on), decimals=time_decimals)
        for g in range(len(ref_on)):
            covering = relevant & (target_overlap[:, g] > 0)
            gone = covering & dies
            score = np.concatenate((birth[covering], death[gone]))
            if not len(score):
                continue
            change = np.concatenate((target_overlap[covering, g], -target_overlap[gone, g]))
            order = np.argsort(-score, kind="stable")
            score, coverage = score[order], np.cumsum(change[order])
            last = np.flatnonzero(np.append(score[1:] != score[:-1], True))  # after each distinct score
            found = (np.round(coverage[last], decimals=time_decimals) >= gtc[g]).astype(np.int64)
            step = np.diff(found, prepend=0)
            events["tps"][0].append(score[last][step != 0])
            events["tps"][1].append(step[step != 0])
        out.append(_collect(events, cttc is None))
    return out


def _count(events: dict, key: str, which: np.ndarray, birth: np.ndarray, death: np.ndarray,
           dies: np.ndarray) -> None:
    """+1 at the birth of each run ``which`` marks, -1 at its death."""
    events[key][0].extend((birth[which], death[which & dies]))
    events[key][1].extend((np.ones(int(which.sum()), np.int64), -np.ones(int((which & dies).sum()), np.int64)))


def _collect(events: dict, no_cross: bool) -> tuple[np.ndarray, dict]:
    """Per-event changes summed per score, the scores where something changes, ascending (sed_scores_eval's
    order of keys: tps, fps, then cts)."""
    keys = ["tps", "fps", *(k for k in events if k.startswith("cts"))]
    scores = {k: np.concatenate(events[k][0]) if events[k][0] else np.empty(0) for k in keys}
    changes = {k: np.concatenate(events[k][1]) if events[k][1] else np.empty(0, np.int64) for k in keys}
    unique, inverse = np.unique(np.concatenate([scores[k] for k in keys]), return_inverse=True)
    table = np.zeros((len(unique), len(keys)), np.int64)
    offset = 0
    for j, k in enumerate(keys):
        np.add.at(table[:, j], inverse[offset:offset + len(scores[k])], changes[k])
        offset += len(scores[k])
    keep = np.abs(table).sum(1) > 0
    deltas = {k: table[keep, j] for j, k in enumerate(keys)}
    if no_cross:
        deltas["cts"] = np.zeros(int(keep.sum()), np.int64)
    return unique[keep], deltas


class Files:
    """The score tables and reference events of a set of files, per file: frame timestamps, scores by class and
    each class's reference onsets and offsets (as sed_scores_eval reads them)."""

    def __init__(self, tables: dict, ground_truth: dict):
        from sed_scores_eval.base_modules.ground_truth import multi_label_to_single_label_ground_truths
        from sed_scores_eval.base_modules.scores import validate_score_dataframe

        self.tables, self.names = tables, list(tables)
        _, self.classes = validate_score_dataframe(tables[self.names[0]])
        self.single = multi_label_to_single_label_ground_truths(ground_truth, self.classes)
        self._read: dict = {}

    def file(self, name: str, keep: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
        """``(timestamps, scores (frames, classes), {class: (onsets, offsets)})``; with ``keep``, read once."""
        if name in self._read:
            return self._read[name]
        from sed_scores_eval.base_modules.scores import validate_score_dataframe

        timestamps, _ = validate_score_dataframe(self.tables[name], event_classes=self.classes)
        refs, empty = {}, np.empty(0)
        for c in self.classes:
            events = self.single[c][name]
            refs[c] = tuple(np.array(events, np.float64).T) if events else (empty, empty)
        out = np.asarray(timestamps, np.float64), self.tables[name][self.classes].to_numpy(), refs
        if keep:
            self._read[name] = out
        return out

    def deltas(self, file: tuple, k: int, settings: list[dict], time_decimals: int = 6) -> list[tuple]:
        """One file's (:meth:`file`) deltas for class ``k``, for each of ``settings``: sed_scores_eval's own
        shortcut where it takes one (no reference event of the class, no cross triggers), else
        :func:`class_deltas`."""
        from sed_scores_eval.intersection_based.intermediate_statistics import acceleration_fn

        timestamps, values, refs = file
        c = self.classes[k]
        others = {o: refs[o] for o in self.classes if o != c}
        scores = np.asarray(values[:, k], np.float64)
        out, full = [None] * len(settings), []
        for i, setting in enumerate(settings):
            _, cp, deltas = acceleration_fn(
                scores=scores, timestamps=timestamps, target_onset_times=refs[c][0], target_offset_times=refs[c][1],
                other_onset_times={o: v[0] for o, v in others.items()},
                other_offset_times={o: v[1] for o, v in others.items()}, time_decimals=time_decimals,
                **{key: setting.get(key) for key in INTERSECTION_SETTINGS})
            if cp is None:
                full.append(i)
            else:
                out[i] = (cp, deltas)
        if full:
            results = class_deltas(scores, timestamps, refs[c], others, [settings[i] for i in full], time_decimals)
            for i, result in zip(full, results, strict=True):
                out[i] = result
        return out


def intermediate_statistics_deltas(tables: dict, ground_truth: dict, settings: list[dict],
                                   time_decimals: int = 6) -> list[dict]:
    """For each of ``settings``: ``{file: {class: (change-point scores, deltas)}}``, what sed_scores_eval's
    ``intersection_based.intermediate_statistics_deltas(tables, ground_truth, **setting)`` returns; the runs of
    each file and class are found once for all settings."""
    files = Files(tables, ground_truth)
    out: list[dict] = [{} for _ in settings]
    for name in files.names:
        file = files.file(name)
        for d in out:
            d[name] = {}
        for k, c in enumerate(files.classes):
            for d, result in zip(out, files.deltas(file, k, settings, time_decimals), strict=True):
                d[name][c] = result
    return out


def psds_by_class(tables: dict, ground_truth: dict, durations: dict, settings: list[dict],
                  time_decimals: int = 6) -> list[float]:
    """PSDS for each of ``settings`` (:data:`sedbench.metrics.psds.PSDS1`-like: the intersection criteria and
    ``alpha_ct``, ``alpha_st``, ``max_efpr``), equal to sed_scores_eval's ``intersection_based.psds``, holding
    one class's statistics at a time: each class's deltas over all files, accumulated and turned into its
    PSD-ROC by sed_scores_eval's own functions, then dropped; the classes' ROCs combined as sed_scores_eval
    combines them. sed_scores_eval accumulates every class at once (float64, one column per other class for
    the cross triggers): on the paper's 113-minute test split with a fragmented output that alone took over
    a gigabyte."""
    from sed_scores_eval.base_modules import statistics
    from sed_scores_eval.base_modules.ground_truth import event_counts_and_durations
    from sed_scores_eval.intersection_based.psds import (
        _single_class_roc_from_intermediate_statistics,
        multi_class_psd_roc_from_single_class_psd_rocs,
        psds_from_psd_roc,
    )

    files = Files(tables, ground_truth)
    criteria = [{k: s[k] for k in INTERSECTION_SETTINGS if k in s} for s in settings]
    n_ref, t_ref = event_counts_and_durations(ground_truth, event_classes=files.classes)
    duration = sum(durations[n] for n in files.names)
    rocs: list[dict] = [{} for _ in settings]
    for k, c in enumerate(files.classes):
        per_file = [{} for _ in settings]
        for name in files.names:
            file = files.file(name, keep=True)
            for d, result in zip(per_file, files.deltas(file, k, criteria, time_decimals), strict=True):
                d[name] = {c: result}
        for i, setting in enumerate(settings):
            cp, stats = statistics.accumulated_intermediate_statistics_from_deltas(per_file[i])[c]
            stats = {**stats, "n_ref": n_ref[c], "t_ref": t_ref[c],
                     "n_ref_other": {o: n_ref[o] for o in files.classes if o != c},
                     "t_ref_other": {o: t_ref[o] for o in files.classes if o != c}}
            rocs[i][c] = _single_class_roc_from_intermediate_statistics(
                (cp, stats), dataset_duration=duration, alpha_ct=setting.get("alpha_ct", 0.0), unit_of_time="hour",
                max_efpr=setting["max_efpr"])
        del per_file
    out = []
    for i, setting in enumerate(settings):
        tpr, efpr = multi_class_psd_roc_from_single_class_psd_rocs(rocs[i], alpha_st=setting["alpha_st"],
                                                                   max_efpr=setting["max_efpr"])
        out.append(psds_from_psd_roc(tpr, efpr, setting["max_efpr"]))
    return out
