"""Threshold-independent scores from frame probabilities, computed by sed_scores_eval (the reference).

* PSDS (polyphonic sound detection score; Bilen et al., ICASSP 2020; threshold-independent
  form of Ebbers et al., ICASSP 2022, as DCASE task 4 reports it since 2023): the normalized
  area under the PSD-ROC (effective true-positive rate against false positives per hour, up to
  100 per hour). A detection counts when at least ``dtc`` of it overlaps reference events of its
  class, a reference event is found when detections cover at least ``gtc`` of it; ``alpha_st``
  penalizes the spread of TPR across classes, ``alpha_ct`` cross-triggers (detections on events
  of other classes, counted from ``cttc``). The DCASE settings:
  PSDS1 (localization) dtc = gtc = 0.7, alpha_st = 1; PSDS2 (classification) dtc = gtc = 0.1,
  cttc = 0.3, alpha_ct = 0.5, alpha_st = 1.
* Segment-based ROC AUC per class on 1-s segments (a segment's score is the class's highest
  frame score in it).

Classes without any reference event in the evaluated files have no true-positive rate; they
are left out of both (with a note), as sed_scores_eval refuses them.

sed_scores_eval 0.0.4 is the implementation: its intersection-based metrics fail on pandas 3
("buffer source array is read-only", fixed upstream but unreleased), hence sedbench's
``pandas<3`` pin. The inputs are its per-file layout: a table per file with the columns
``onset offset <class>...``, one row per frame (:func:`score_tables`), as written by
:func:`write_score_tables` and read by ``sedbench score --scores``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sedbench.data.annotations import Event, merge_overlaps

PSDS1 = {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "alpha_st": 1.0, "max_efpr": 100.0}
PSDS2 = {"dtc_threshold": 0.1, "gtc_threshold": 0.1, "cttc_threshold": 0.3, "alpha_ct": 0.5, "alpha_st": 1.0,
         "max_efpr": 100.0}
AUROC_SEGMENT = 1.0  # seconds


def _require():
    try:
        import sed_scores_eval
    except ImportError as exc:
        from sedbench.errors import SedbenchError

        raise SedbenchError(f"PSDS needs sed_scores_eval ({exc}). Fix: pip install 'sed_scores_eval==0.0.4' "
                            "'pandas<3' (sedbench's own requirements pin both)") from None
    return sed_scores_eval


def score_tables(probabilities: Sequence[np.ndarray], names: Sequence[str], classes: Sequence[str],
                 hop: float) -> dict:
    """Per-file ``(frames, K)`` probabilities as sed_scores_eval's score tables (frame t on [t*hop, (t+1)*hop))."""
    _require()
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    return {name: create_score_dataframe(np.asarray(p, np.float64), np.arange(len(p) + 1) * float(hop), list(classes))
            for name, p in zip(names, probabilities, strict=True)}


def write_score_tables(folder: str | Path, tables: dict) -> Path:
    """One ``<file>.tsv`` per file in ``folder`` (sed_scores_eval's per-file layout)."""
    from sed_scores_eval import io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        io.write_sed_scores(table, folder / f"{Path(name).with_suffix('').as_posix().replace('/', '__')}.tsv")
    return folder


def read_score_tables(folder: str | Path) -> dict:
    """A folder of per-file score tables (``<file>.tsv``), keyed by base name; a DataError names a bad file."""
    _require()
    import pandas as pd
    from sed_scores_eval.base_modules.scores import validate_score_dataframe

    from sedbench.errors import DataError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "score tables must be a folder of <file>.tsv tables (onset offset <class>...)",
                        "write one table per file, e.g. with sed_scores_eval.io.write_sed_scores")
    tables = {}
    for path in sorted(folder.glob("*.tsv")):
        try:
            table = pd.read_csv(path, sep="\t")
            validate_score_dataframe(table)
        except Exception as exc:
            raise DataError(path, f"not a score table ({type(exc).__name__}: {exc})",
                            "columns onset, offset, then one score column per class; one row per frame") from None
        tables[path.stem] = table
    if not tables:
        raise DataError(folder, "no <file>.tsv score tables in this folder", "give the folder the tables are in")
    return tables


def ground_truth(references: dict[str, Sequence[Event]]) -> dict[str, list[tuple[float, float, str]]]:
    """Reference events as sed_scores_eval wants them: per file, overlapping same-class events merged."""
    return {name: [(e.onset, e.offset, e.label) for e in merge_overlaps(evs)] for name, evs in references.items()}


def intersection_deltas(tables: dict, gt: dict, settings: Sequence[dict], exact: str = "sedbench") -> list[dict]:
    """The intersection-based deltas of each of ``settings`` (PSDS1, PSDS2): by ``exact="sedbench"``
    (:mod:`sedbench.metrics.intersection`, the same values in time linear in each file's frames) or
    ``"sed_scores_eval"`` (its own function, time quadratic in each file's frames)."""
    if exact == "sedbench":
        from sedbench.metrics.intersection import intermediate_statistics_deltas

        return intermediate_statistics_deltas(tables, gt, [_criteria(s) for s in settings])
    if exact != "sed_scores_eval":
        raise ValueError(f"exact={exact!r}: sedbench or sed_scores_eval")
    from sed_scores_eval import intersection_based

    return [intersection_based.intermediate_statistics_deltas(tables, gt, **_criteria(s)) for s in settings]


def threshold_independent(tables: dict, references: dict[str, Sequence[Event]],
                          durations: dict[str, float] | None = None, n_boot: int = 0, seed: int = 0,
                          exact: str = "sedbench") -> dict:
    """``psds1``, ``psds2``, ``auroc_1sec`` (mean over classes) and ``class_auroc_1sec`` for score tables
    against reference events by file. ``durations`` default to each table's last offset. ``exact``: which
    implementation computes the intersection-based statistics (:func:`intersection_deltas`; equal values).

    Without ``n_boot``, PSDS holds one class's statistics at a time (the same values); with ``n_boot``, every
    file's deltas are kept for the draws, and the result also has ``interval95``: ``{score: (low, high)}`` over
    files drawn with replacement
    (:func:`sedbench.stats.file_draws`, as for every interval over files); each file's intermediate statistics are
    computed once and every draw accumulates them again, as sed_scores_eval's own bootstrap does.
    """
    tables, gt, durations = _inputs(tables, references, durations)
    from sed_scores_eval import intersection_based, segment_based
    from sed_scores_eval.segment_based.intermediate_statistics import intermediate_statistics_deltas as seg_deltas

    if not n_boot and exact == "sedbench":  # one class at a time (sedbench.metrics.intersection.psds_by_class)
        from sedbench.metrics.intersection import psds_by_class

        psds1, psds2 = psds_by_class(tables, gt, durations, [PSDS1, PSDS2])
        auroc = segment_based.auroc(tables, gt, durations, segment_length=AUROC_SEGMENT)[0]
        return {"psds1": float(psds1), "psds2": float(psds2), "auroc_1sec": float(auroc["mean"]),
                "class_auroc_1sec": {c: float(v) for c, v in auroc.items() if c != "mean"}}
    deltas = dict(zip(("psds1", "psds2"), intersection_deltas(tables, gt, (PSDS1, PSDS2), exact), strict=True))
    deltas["auroc_1sec"] = seg_deltas(tables, gt, durations, segment_length=AUROC_SEGMENT)

    def scores(ids: dict[str, str]) -> dict:
        """The three scores over the files ``ids`` names (draw name -> file), from the stored deltas."""
        g, d = {k: gt[v] for k, v in ids.items()}, {k: durations[v] for k, v in ids.items()}
        out = {name: intersection_based.psds(None, g, d, deltas={k: deltas[name][v] for k, v in ids.items()},
                                             **settings)[0] for name, settings in (("psds1", PSDS1), ("psds2", PSDS2))}
        auroc = segment_based.auroc(None, g, d, segment_length=AUROC_SEGMENT,
                                    deltas={k: deltas["auroc_1sec"][v] for k, v in ids.items()})[0]
        return {**out, "auroc_1sec": auroc["mean"], "class_auroc_1sec": {c: float(v) for c, v in auroc.items()
                                                                         if c != "mean"}}

    names = list(tables)
    out = scores({n: n for n in names})
    result = {"psds1": float(out["psds1"]), "psds2": float(out["psds2"]), "auroc_1sec": float(out["auroc_1sec"]),
              "class_auroc_1sec": out["class_auroc_1sec"]}
    if n_boot:
        from sedbench.stats import file_draws, percentile_interval

        samples = {k: [] for k in ("psds1", "psds2", "auroc_1sec")}
        for draw in file_draws(len(names), n_boot, seed):
            r = scores({f"{names[i]}#{j}": names[i] for j, i in enumerate(draw)})
            for k in samples:
                samples[k].append(float(r[k]))
        result["interval95"] = {k: percentile_interval(v) for k, v in samples.items()}
    return result


def _criteria(settings: dict) -> dict:
    return {k: settings[k] for k in ("dtc_threshold", "gtc_threshold", "cttc_threshold") if k in settings}


def _inputs(tables: dict, references: dict[str, Sequence[Event]], durations: dict[str, float] | None):
    """The tables of the reference's files (classes without reference events dropped), its ground truth in
    sed_scores_eval's form, and the files' durations."""
    _require()
    from sedbench.errors import SedbenchError

    missing = sorted(set(references) - set(tables))
    if missing:
        raise SedbenchError(f"no scores for {len(missing)} reference file(s), e.g. {missing[0]!r}. Fix: write a "
                            "score table for every file of the reference")
    gt = ground_truth(references)
    present = {label for events in gt.values() for _, _, label in events}
    absent = [c for c in next(iter(tables.values())).columns[2:] if c not in present]
    if absent:  # a class without reference events has no true-positive rate: PSDS and AUC are over the others
        from sedbench.errors import note

        note(f"PSDS and ROC AUC leave out {len(absent)} class(es) without reference events: {', '.join(absent)}",
             once="psds-absent:" + ",".join(absent))
    tables = {name: tables[name].drop(columns=absent) if absent else tables[name] for name in references}
    if durations is None:
        durations = {name: float(t["offset"].to_numpy()[-1]) for name, t in tables.items()}
    return tables, gt, durations
