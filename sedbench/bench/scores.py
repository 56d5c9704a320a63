"""Items 3, 9 and 10: sedbench's scores against sed_eval and sed_scores_eval, time and values."""

from __future__ import annotations

import time
from pathlib import Path

from sedbench.bench.common import log


def score_case(hours: float = 2.0, n_classes: int = 16, files: int = 20, seed: int = 0):
    """Reference and system event lists: ``files`` files, ``hours`` in all, ``n_classes`` classes."""
    import numpy as np

    from sedbench.data.annotations import Event

    rng = np.random.default_rng(seed)
    length = hours * 3600 / files
    classes = [f"class{k:02d}" for k in range(n_classes)]
    ref, est = {}, {}
    for f in range(files):
        r, e = [], []
        for c in classes:
            t = float(rng.exponential(20))
            while t < length:
                d = float(rng.exponential(4)) + 0.1
                r.append(Event(round(t, 3), round(min(t + d, length), 3), c))
                if rng.random() < 0.8:  # a detection, shifted
                    on = max(0.0, t + float(rng.normal(0, 0.3)))
                    e.append(Event(round(on, 2), round(on + d * float(rng.uniform(0.6, 1.3)), 2), c))
                t += d + float(rng.exponential(20))
        ref[f"f{f:02d}.wav"], est[f"f{f:02d}.wav"] = r, e
    return ref, est, classes


def bench_score(resolution: float, hours: float = 2.0) -> dict:
    from sedbench.metrics.event import sed_eval_segment
    from sedbench.metrics.segment import segment_scores

    ref, est, classes = score_case(hours)
    t0 = time.perf_counter()
    slow = sed_eval_segment(ref, est, classes, resolution)
    sed_eval_wall = time.perf_counter() - t0
    fast_wall = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fast = segment_scores(ref, est, classes, resolution)
        fast_wall = min(fast_wall, time.perf_counter() - t0)
    identical = fast.overall == slow.overall and fast.class_wise == slow.class_wise
    return {"sed_eval_seconds": round(sed_eval_wall, 3), "sedbench_seconds": round(fast_wall, 4),
            "speedup": sed_eval_wall / fast_wall, "f1": round(fast.f1, 4), "er": round(fast.er, 4),
            "identical": identical}


def bench_events(hours: float = 2.0) -> dict:
    """Event-based scores of the 2-h case, each detection cut in three (raw frame outputs fragment)."""
    from sedbench.data.annotations import Event
    from sedbench.metrics.event import event_based

    ref, est, classes = score_case(hours)

    def thirds(e: Event) -> list[Event]:
        cuts = [round(e.onset + i * e.duration / 3, 3) for i in range(4)]
        return [Event(a, b, e.label) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]

    est = {f: [piece for e in evs for piece in thirds(e)] for f, evs in est.items()}
    t0 = time.perf_counter()
    slow = event_based(ref, est, classes, engine="sed_eval")
    sed_eval_wall = time.perf_counter() - t0
    fast_wall = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fast = event_based(ref, est, classes)
        fast_wall = min(fast_wall, time.perf_counter() - t0)
    identical = (fast.overall == slow.overall and fast.class_wise == slow.class_wise
                 and fast.file_counts == slow.file_counts)
    return {"reference_events": sum(map(len, ref.values())), "system_events": sum(map(len, est.values())),
            "sed_eval_seconds": round(sed_eval_wall, 3), "sedbench_seconds": round(fast_wall, 4),
            "event_metrics_speedup": sed_eval_wall / fast_wall, "f1": round(fast.f1, 4), "er": round(fast.er, 4),
            "identical": identical}


def psds_case(folder: Path, files: int = 2500, n_classes: int = 10, frames: int = 156, seconds: float = 10.0,
              seed: int = 0) -> tuple[Path, Path, Path]:
    """A DESED-sized case on disk: reference tsv, a folder of per-file score tables, a durations tsv."""
    import numpy as np

    from sedbench.data.annotations import Event, write_event_table
    from sedbench.metrics.psds import score_tables, write_score_tables

    rng = np.random.default_rng(seed)
    classes = [f"class{k}" for k in range(n_classes)]
    hop = seconds / frames
    rows, probs, names = [], [], []
    for f in range(files):
        name = f"clip{f:05d}"
        truth = np.zeros((frames, n_classes))
        for k in rng.choice(n_classes, size=int(rng.integers(1, 4)), replace=False):
            on = round(float(rng.uniform(0, seconds - 1)), 3)
            off = round(min(seconds, on + float(rng.uniform(0.3, 6))), 3)
            rows.append((f"{name}.wav", Event(on, off, classes[k])))
            truth[int(on / hop):int(np.ceil(off / hop)), k] = 1
        noise = np.stack([np.convolve(rng.normal(0, 1, frames), np.ones(9) / 3, "same") for _ in classes], 1)
        probs.append(np.round(1 / (1 + np.exp(-(4 * truth - 2 + noise))), 4))
        names.append(name)
    write_event_table(folder / "reference.tsv", rows)
    write_score_tables(folder / "scores", score_tables(probs, names, classes, hop))
    (folder / "durations.tsv").write_text("filename\tduration\n" + "".join(f"{n}.wav\t{seconds}\n" for n in names))
    return folder / "reference.tsv", folder / "scores", folder / "durations.tsv"


def bench_psds(work: Path, files: int = 2500) -> dict:
    """``sedbench score --scores`` against sed_scores_eval reading and scoring the same files (alternating)."""
    from sed_scores_eval import intersection_based, io, segment_based

    from sedbench.commands.score import score_probabilities
    from sedbench.metrics.psds import AUROC_SEGMENT, PSDS1, PSDS2

    ref, scores, durations = psds_case(work / "psds", files)

    def theirs() -> dict:
        tables, gt = io.read_sed_scores(scores), io.read_ground_truth_events(ref)
        lengths = io.read_audio_durations(durations)
        auroc = segment_based.auroc(tables, gt, lengths, segment_length=AUROC_SEGMENT)[0]
        return {"psds1": intersection_based.psds(tables, gt, lengths, **PSDS1)[0],
                "psds2": intersection_based.psds(tables, gt, lengths, **PSDS2)[0], "auroc_1sec": auroc["mean"]}

    walls: dict[str, list[float]] = {"sedbench": [], "sed_scores_eval": []}
    values = {}
    for _ in range(2):
        for name, fn in (("sed_scores_eval", theirs), ("sedbench", lambda: score_probabilities(ref, scores,
                                                                                                durations)[0])):
            t0 = time.perf_counter()
            values[name] = fn()
            walls[name].append(time.perf_counter() - t0)
    identical = all(float(values["sedbench"][k]) == float(values["sed_scores_eval"][k])
                    for k in ("psds1", "psds2", "auroc_1sec"))
    return {"files": files, "classes": 10, "frames_per_file": 156, "sedbench_seconds": [round(w, 2) for w in
                                                                                       walls["sedbench"]],
            "sed_scores_eval_seconds": [round(w, 2) for w in walls["sed_scores_eval"]],
            "psds_time_over_sed_scores_eval": min(walls["sedbench"]) / min(walls["sed_scores_eval"]),
            "psds1": float(values["sedbench"]["psds1"]), "psds2": float(values["sedbench"]["psds2"]),
            "auroc_1sec": float(values["sedbench"]["auroc_1sec"]), "identical": identical,
            "note": "sedbench's intersection statistics (equal to sed_scores_eval's) and sed_scores_eval's "
                    "PSD-ROC, ROC AUC and readers, with sedbench's reading, naming and checks around them"}


def bench_psds_paper(root: Path, sample_files: int = 2, excerpt_seconds: float = 60.0, seed: int = 0) -> dict:
    """PSDS on the test split of a paper-size synth set (113 minutes, 16 classes, mixtures of 5.7 minutes;
    ``--memory-data`` or item 8's set) for the output of a maximally fragmented model, each frame's score drawn
    on its own (0.35 + 0.25 N(0,1), clipped: the regime an under-trained model approaches, the worst case for
    both implementations). sedbench's intersection statistics (``sedbench.metrics.intersection``) on the whole
    split; against sed_scores_eval's on the first ``excerpt_seconds`` of ``sample_files`` of its files (its
    time and memory grow with the square of a file's frames: a whole 5.7-minute file takes it tens of minutes
    and gigabytes), values compared there; the ratio is taken on that sample, so it understates the gain on
    whole files."""
    import numpy as np
    from sed_scores_eval import intersection_based

    from sedbench.data.annotations import Event
    from sedbench.data.dataset import read_folder
    from sedbench.metrics.intersection import psds_by_class
    from sedbench.metrics.psds import PSDS1, PSDS2, ground_truth, score_tables

    ds = read_folder(root)
    recs = ds.recordings("test")
    hop, rng = 0.02, np.random.default_rng(seed)
    probs = [np.clip(0.35 + 0.25 * rng.standard_normal((int(round(r.duration / hop)), len(ds.classes))), 0, 1)
             for r in recs]
    refs = {r.name: r.events for r in recs}

    def psds(probs_: list, refs_: dict, exact: str) -> tuple[list[float], float, float]:
        """PSDS1 and PSDS2 as a run computes them (``sedbench``: class by class) or by sed_scores_eval's own
        ``intersection_based.psds``; classes without a reference event left out, as runs leave them out."""
        present = [k for k, c in enumerate(ds.classes) if any(e.label == c for evs in refs_.values() for e in evs)]
        tables = score_tables([p[:, present] for p in probs_], list(refs_), [ds.classes[k] for k in present], hop)
        gt = ground_truth(refs_)
        durations = {n: float(t["offset"].to_numpy()[-1]) for n, t in tables.items()}
        t0 = time.perf_counter()
        if exact == "sedbench":
            values = psds_by_class(tables, gt, durations, [PSDS1, PSDS2])
        else:
            values = [intersection_based.psds(tables, gt, durations, **s)[0] for s in (PSDS1, PSDS2)]
        return [float(v) for v in values], time.perf_counter() - t0, sum(durations.values()) / 60

    log(f"PSDS on the paper-size test split ({len(recs)} files): sedbench")
    full_values, full_wall, minutes = psds(probs, refs, "sedbench")
    frames = int(round(excerpt_seconds / hop))
    cut = {n: [Event(e.onset, min(e.offset, excerpt_seconds), e.label) for e in refs[n] if e.onset < excerpt_seconds]
           for n in list(refs)[:sample_files]}
    sample = [p[:frames] for p in probs[:sample_files]]
    ours, ours_wall, sample_minutes = psds(sample, cut, "sedbench")
    log(f"PSDS on the first {excerpt_seconds:g} s of {sample_files} of its files: sed_scores_eval")
    theirs, theirs_wall, _ = psds(sample, cut, "sed_scores_eval")
    return {"test_minutes": round(minutes, 1), "files": len(recs), "classes": len(ds.classes),
            "sedbench_seconds": round(full_wall, 2), "psds1": full_values[0], "psds2": full_values[1],
            "sample": f"the first {excerpt_seconds:g} s of {sample_files} files",
            "sample_minutes": round(sample_minutes, 2),
            "sample_sedbench_seconds": round(ours_wall, 3), "sample_sed_scores_eval_seconds": round(theirs_wall, 2),
            "psds_paper_time_over_sed_scores_eval": ours_wall / theirs_wall, "identical": ours == theirs,
            "sample_psds": {"sedbench": ours, "sed_scores_eval": theirs}}
