"""sed_scores_eval's intersection-based intermediate statistics (the deltas PSDS is computed from), equal to
its ``intersection_based.intermediate_statistics_deltas`` and computed in time linear in a file's frames.

What sed_scores_eval computes, per file and class: for every distinct score u, the detections at threshold u
(maximal runs of frames with score >= u) and their true positives, false positives and cross triggers; then
the change of each at each u. It builds a (thresholds x detections x reference events) array per file, so its
time and memory grow with the square of a file's frames: on a fragmented output (an under-trained model,
nearly every frame a distinct score) about 70 s per minute of 16-class audio, two hours for the paper's
113-minute test split (measured, docs/metrics.md).

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
    keys = ["tps", "fps", *sorted((k for k in events if k.startswith("cts")), key=list(events).index)]
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


def intermediate_statistics_deltas(tables: dict, ground_truth: dict, settings: list[dict],
                                   time_decimals: int = 6) -> list[dict]:
    """For each of ``settings``: ``{file: {class: (change-point scores, deltas)}}``, what sed_scores_eval's
    ``intersection_based.intermediate_statistics_deltas(tables, ground_truth, **setting)`` returns; the runs of
    each file and class are found once for all settings."""
    from sed_scores_eval.base_modules.ground_truth import multi_label_to_single_label_ground_truths
    from sed_scores_eval.base_modules.scores import validate_score_dataframe
    from sed_scores_eval.intersection_based.intermediate_statistics import acceleration_fn

    names = list(tables)
    _, classes = validate_score_dataframe(tables[names[0]])
    single = multi_label_to_single_label_ground_truths(ground_truth, classes)
    out: list[dict] = [{} for _ in settings]
    empty = np.empty(0)
    for name in names:
        timestamps, _ = validate_score_dataframe(tables[name], event_classes=classes)
        timestamps = np.asarray(timestamps, np.float64)
        values = tables[name][classes].to_numpy()
        refs = {}
        for c in classes:
            events = single[c][name]
            refs[c] = tuple(np.array(events, np.float64).T) if events else (empty, empty)
        for d in out:
            d[name] = {}
        for k, c in enumerate(classes):
            others = {o: refs[o] for o in classes if o != c}
            scores = np.asarray(values[:, k], np.float64)
            full = []
            for i, setting in enumerate(settings):  # sed_scores_eval's own shortcut first, where it takes one
                _, cp, deltas = acceleration_fn(
                    scores=scores, timestamps=timestamps, target_onset_times=refs[c][0],
                    target_offset_times=refs[c][1], other_onset_times={o: v[0] for o, v in others.items()},
                    other_offset_times={o: v[1] for o, v in others.items()}, time_decimals=time_decimals,
                    **{key: setting.get(key) for key in INTERSECTION_SETTINGS})
                if cp is None:
                    full.append(i)
                else:
                    out[i][name][c] = (cp, deltas)
            if full:
                results = class_deltas(scores, timestamps, refs[c], others, [settings[i] for i in full], time_decimals)
                for i, result in zip(full, results, strict=True):
                    out[i][name][c] = result
    return out
