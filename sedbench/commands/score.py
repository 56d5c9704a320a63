"""``sedbench score``: a system's output scored against a reference, as sed_eval and sed_scores_eval do.

Event lists (any layout of :func:`sedbench.data.annotations.read_events`, or two folders of
per-file lists) give segment-based scores (the paper's F1/ER on frames and 1-s segments) and
event-based scores (collars 200 ms / 20 %); score tables (sed_scores_eval's per-file layout) give
PSDS1, PSDS2 and segment ROC AUC. ``--bootstrap N`` adds 95 % intervals over files to every
overall score (files drawn with replacement, :mod:`sedbench.stats`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

SCORES = ("f_measure", "precision", "recall", "error_rate")  # the overall scores that get intervals
STATISTIC = {"f_measure": "f1", "precision": "precision", "recall": "recall", "error_rate": "er"}


def read_pair(reference: str | Path, estimated: str | Path, label: str = "event",
              strict: bool = False) -> tuple[dict[str, list], dict[str, list]]:
    """The reference's and the estimate's events by file, from tables, per-file lists or folders of them.

    Two per-file lists (no file names) are one recording; two folders pair their lists by base
    name. A per-file list against a table, or names that do not meet, are errors that say so. An estimate
    without any event is a system that detected nothing (on every file of the reference). What the reference
    lacks (files, labels) and times far beyond the reference's are one warning line each on stderr
    (:func:`check_pair`; ``strict``: errors).
    """
    from sedbench.data.annotations import read_event_source
    from sedbench.errors import DataError

    ref, ref_single = read_event_source(reference, label=label)
    est, est_single = read_event_source(estimated, label=label)
    if not any(est.values()):  # nothing detected: every reference file scored against an empty output
        return ref, {name: [] for name in ref}
    ref_single &= not Path(reference).is_dir()
    est_single &= not Path(estimated).is_dir()
    if ref_single and est_single:
        return {"recording": next(iter(ref.values()), [])}, {"recording": next(iter(est.values()), [])}
    if ref_single or est_single:
        single, other = (reference, estimated) if ref_single else (estimated, reference)
        raise DataError(single, f"a per-file event list (no file names) cannot be scored against {other}, "
                                "which names files",
                        "give two per-file lists, two folders of per-file lists (paired by base name) or two tables "
                        "with a file name on every line")
    if set(est) - set(ref):  # e.g. a folder of a001.ann against a table naming audio/a001.wav: pair by base name
        ref_base, est_base = _by_base_name(ref), _by_base_name(est)
        if ref_base is not None and est_base is not None and set(est_base) <= set(ref_base):
            ref, est = ref_base, est_base
    unknown = sorted(set(est) - set(ref))
    if unknown and not set(est) & set(ref):
        raise DataError(estimated, f"none of its files is in the reference (e.g. {unknown[0]!r} vs "
                                   f"{next(iter(ref), '')!r})",
                        "name the files as the reference does (same base names, same folders if any)")
    check_pair(ref, est, estimated, strict)
    return ref, {name: evs for name, evs in est.items() if name in ref}


SAMPLES_FACTOR = 100  # system times this far beyond the reference's last offset look like samples, not seconds


def check_pair(ref: dict[str, list], est: dict[str, list], estimated: str | Path, strict: bool = False) -> None:
    """What a system output has that its reference lacks, each one line (a warning, or with ``strict`` a
    :class:`sedbench.errors.DataError`): files the reference does not name (not scored), labels it does not use
    (their events count as false positives), and times far beyond the reference's (samples, not seconds?)."""
    import sys

    from sedbench.errors import DataError

    problems = []
    files = sorted(set(est) - set(ref))
    if files:
        problems.append((f"{len(files)} of its {len(est)} files are not in the reference (e.g. {files[0]!r}): "
                         "they are not scored", "score it against the reference of the same files"))
    labels = sorted({e.label for evs in est.values() for e in evs} - {e.label for evs in ref.values() for e in evs})
    if labels:
        problems.append((f"labels the reference never uses: {', '.join(map(repr, labels[:5]))}"
                         f"{' ...' if len(labels) > 5 else ''} (their events count as false positives)",
                         "name the classes as the reference does"))
    last_ref = max((e.offset for evs in ref.values() for e in evs), default=0.0)
    last_est = max((e.offset for name, evs in est.items() if name in ref for e in evs), default=0.0)
    if last_ref > 0 and last_est > SAMPLES_FACTOR * last_ref:
        problems.append((f"times up to {last_est:,.0f} against the reference's {last_ref:,.1f} s, as if in samples or "
                         "milliseconds", "write onsets and offsets in seconds"))
    for what, fix in problems:
        if strict:
            raise DataError(estimated, what, fix + " (or leave out --strict)")
        print(f"warning: {estimated}: {what}. Fix: {fix}", file=sys.stderr)


def _by_base_name(events: dict[str, list]) -> dict[str, list] | None:
    """Events keyed by base name without extension (``audio/a001.wav`` -> ``a001``); None if two files share one."""
    out = {Path(name.replace("\\", "/")).with_suffix("").name: evs for name, evs in events.items()}
    return out if len(out) == len(events) else None


def score_event_files(reference: str | Path, estimated: str | Path, resolutions: Sequence[float] = (0.02, 1.0),
                      engine: str = "fast", event_based: bool = True, label: str = "event",
                      strict: bool = False) -> dict[object, tuple[object, float]]:
    """``{resolution: (SegmentScores, seconds taken)}`` for two event sources (see :func:`read_pair`),
    scored by the fast paths (``fast``, equal to sed_eval) or by ``sed_eval`` itself; with ``event_based``,
    also ``{"event": (SegmentScores of events, seconds)}`` (collars 200 ms / 20 %)."""
    from sedbench.metrics.segment import segment_scores

    ref, est = read_pair(reference, estimated, label, strict)
    classes = sorted({e.label for evs in (*ref.values(), *est.values()) for e in evs})
    if engine == "sed_eval":
        from sedbench.metrics.event import sed_eval_segment as score
    else:
        score = segment_scores
    results: dict[object, tuple[object, float]] = {}
    for res in resolutions:
        t0 = time.perf_counter()
        results[res] = (score(ref, est, classes, res), time.perf_counter() - t0)
    if event_based:
        from sedbench.metrics.event import event_based as score_events

        t0 = time.perf_counter()
        results["event"] = (score_events(ref, est, classes, engine="sed_eval" if engine == "sed_eval" else "fast"),
                            time.perf_counter() - t0)
    return results


def score_probabilities(reference: str | Path, scores: str | Path, durations: str | Path | None = None,
                        label: str = "event", n_boot: int = 0, engine: str = "fast") -> tuple[dict, float]:
    """PSDS1, PSDS2 and 1-s segment ROC AUC of a folder of score tables against a reference event source,
    and the seconds taken; ``engine`` ``fast`` (sedbench.metrics.intersection, the same values) or ``sed_eval``
    (sed_scores_eval's own intersection-based statistics). Tables are named by the reference's base names
    (``a001.wav`` -> ``a001.tsv``); ``durations`` is a table ``filename duration`` (DESED's durations tsv), else
    each table's last offset."""
    from sedbench.data.annotations import read_event_source, read_rows
    from sedbench.errors import DataError
    from sedbench.metrics.psds import read_score_tables, threshold_independent

    refs = _by_base_name(read_event_source(reference, label=label)[0])
    if refs is None:
        raise DataError(reference, "two of its files share a base name",
                        "score tables are named by base name: give every file a distinct one")
    tables = read_score_tables(scores)
    lengths = None
    if durations is not None:
        lengths = {}
        for i, (lineno, fields) in enumerate(read_rows(Path(durations), None)):
            try:
                lengths[Path(fields[0].strip()).with_suffix("").name] = float(fields[1])
            except (IndexError, ValueError):
                if i > 0 or len(fields) < 2:  # only a header line may hold no number
                    raise DataError(durations, f"expected 'filename duration', got {fields!r}",
                                    "one file name and its length in seconds per line", lineno) from None
        missing = sorted(set(refs) - set(lengths))
        if missing:
            raise DataError(durations, f"no duration for {len(missing)} file(s), e.g. {missing[0]!r}",
                            "list every reference file with its length in seconds")
        lengths = {k: lengths[k] for k in refs}
    t0 = time.perf_counter()
    exact = "sedbench" if engine == "fast" else "sed_scores_eval"
    out = threshold_independent(tables, refs, lengths, n_boot, exact=exact)
    return out, time.perf_counter() - t0


def intervals(results: dict, n_boot: int, seed: int = 0) -> dict[object, dict[str, tuple[float, float]]]:
    """95 % intervals over files of every overall score: ``{key: {score: (low, high)}}``."""
    from sedbench.stats import bootstrap_files

    out = {}
    for key, (r, _) in results.items():
        if r.file_counts:
            out[key] = {s: _bounds(bootstrap_files(r.file_counts, STATISTIC[s], n_boot, seed=seed)) for s in SCORES}
    return out


def _bounds(interval) -> tuple[float, float]:
    return interval.low, interval.high


def _title(key, engine: str) -> str:
    if key == "event":
        return f"event-based, onset collar 200 ms, offset collar max(200 ms, 20 %) ({engine}"
    return f"segment-based, {key:g}-s segments ({engine}"


def as_json(results: dict, bounds: dict | None = None, psds: tuple[dict, float] | None = None) -> str:
    import json

    out = {}
    for key, (r, t) in results.items():
        out["event" if key == "event" else f"{key:g}"] = {
            "overall": r.overall, "class_wise": r.class_wise, "class_average": r.class_average, "files": r.files,
            "evaluated_seconds": r.evaluated_seconds, "seconds": round(t, 4),
            **({"interval95": bounds[key]} if bounds and key in bounds else {})}
    if psds is not None:
        out["threshold_independent"] = {**psds[0], "seconds": round(psds[1], 4)}
    return json.dumps(out, indent=2, default=float)


def as_text(results: dict, engine: str, bounds: dict | None = None, psds: tuple[dict, float] | None = None,
            n_boot: int = 0) -> str:
    from sedbench.report.text import fmt, score_table

    blocks = []
    for key, (r, t) in results.items():
        text = score_table(r, f"{_title(key, engine)}, {t:.3f} s)", events=key == "event")
        if bounds and key in bounds:
            b = bounds[key]
            text += f"\n  95 % intervals over files (bootstrap, {n_boot} draws): " + "   ".join(
                f"{name} [{fmt(b[s][0], pct)}, {fmt(b[s][1], pct)}]"
                for s, name, pct in (("f_measure", "F1", True), ("precision", "P", True), ("recall", "R", True),
                                     ("error_rate", "ER", False)))
        blocks.append(text)
    if psds is not None:
        p, t = psds
        bounds = p.get("interval95", {})

        def cell(key: str) -> str:
            return f"{p[key]:.4f}" + (f" [{bounds[key][0]:.4f}, {bounds[key][1]:.4f}]" if key in bounds else "")

        how = "sed_scores_eval" if engine == "sed_eval" else "sedbench, equal to sed_scores_eval"
        blocks.append(f"threshold-independent, from score tables ({how}, {t:.3f} s)"
                      + (f"; 95 % intervals over files (bootstrap, {n_boot} draws)" if bounds else "") + "\n"
                      f"  PSDS1 {cell('psds1')}   PSDS2 {cell('psds2')}   1-s segment ROC AUC {cell('auroc_1sec')}"
                      + "".join(f"\n  {c:<28}AUC {v:.4f}" for c, v in p["class_auroc_1sec"].items()))
    return "\n".join(blocks)


def add_parser(sub) -> None:
    from sedbench.commands.options import number

    score = sub.add_parser(
        "score", help="score a system output against a reference (event lists in any sed_eval layout; PSDS)",
        description="Segment-based (the paper's F1/ER on frames and 1-s segments) and event-based scores of event "
                    "lists, computed exactly as sed_eval does; with --scores, PSDS1/PSDS2 and ROC AUC from frame "
                    "scores as sed_scores_eval computes them. Lists: 'filename onset offset event_label' tables "
                    "(tab, comma, semicolon or spaces; header optional, DESED/DCASE tsv), 5 columns with a scene, "
                    "per-file 'onset offset [event_label]' lists (TUT-SED .ann), or two folders of per-file lists "
                    "paired by base name. See docs/metrics.md.")
    score.add_argument("reference", type=Path, help="reference events: a table, a per-file list or a folder of lists")
    score.add_argument("estimated", type=Path, nargs="?",
                       help="system output events, the same way (optional with --scores)")
    score.add_argument("--scores", type=Path, metavar="DIR",
                       help="folder of per-file score tables (sed_scores_eval layout: <file>.tsv with columns onset "
                            "offset <class>...): adds PSDS1, PSDS2 and 1-s segment ROC AUC")
    score.add_argument("--durations", type=Path, metavar="TSV",
                       help="'filename duration' table for PSDS (default: each score table's last offset)")
    score.add_argument("--resolution", type=number(float, 0, above=True), action="append",
                       help="segment length in seconds; repeatable (default: 0.02 and 1.0, F1_frm and F1_1sec)")
    score.add_argument("--engine", choices=["fast", "sed_eval"], default="fast",
                       help="fast (sedbench's paths, equal to sed_eval and sed_scores_eval) or the references' own "
                            "implementations (sed_eval; sed_scores_eval for PSDS, whose time grows with the square of "
                            "each file's frames)")
    score.add_argument("--no-events", action="store_true", help="skip the event-based scores")
    score.add_argument("--bootstrap", type=number(int, 0, 1_000_000), default=0, metavar="N",
                       help="95 %% intervals over files of every overall score from N bootstrap draws (e.g. 2000)")
    score.add_argument("--label", default="event",
                       help="class name for lists without labels ('onset offset' lines; default 'event')")
    score.add_argument("--strict", action="store_true",
                       help="files or labels the reference lacks, or times far beyond its own, are errors (default: "
                            "one warning line each)")
    score.add_argument("--json", action="store_true", help="print JSON instead of tables")
    score.set_defaults(handler=run)


def run(args) -> None:
    from sedbench.errors import SedbenchError

    if args.estimated is None and args.scores is None:
        raise SedbenchError("nothing to score. Fix: give the system's event list after the reference, or --scores DIR")
    if args.bootstrap < 0:
        raise SedbenchError(f"--bootstrap {args.bootstrap}: the number of draws must be >= 0 (e.g. 2000)")
    results, bounds = {}, None
    if args.estimated is not None:
        results = score_event_files(args.reference, args.estimated, args.resolution or [0.02, 1.0], args.engine,
                                    event_based=not args.no_events, label=args.label, strict=args.strict)
        bounds = intervals(results, args.bootstrap) if args.bootstrap else None
    psds = score_probabilities(args.reference, args.scores, args.durations, args.label, args.bootstrap,
                               args.engine) if args.scores else None
    print(as_json(results, bounds, psds) if args.json else as_text(results, args.engine, bounds, psds, args.bootstrap))
