"""PSDS1, PSDS2 and segment ROC AUC: sedbench's paths give sed_scores_eval's values on the same inputs.

sedbench computes these with sed_scores_eval itself; what is tested here is everything around it:
reading score tables and references in every layout sedbench accepts, naming files, durations,
the frame timestamps of a run's outputs, the DCASE settings of PSDS1 and PSDS2, and classes
without reference events.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

pytest.importorskip("sed_scores_eval", reason="sed_scores_eval is one of sedbench's requirements")

from sed_scores_eval import intersection_based, io, segment_based  # noqa: E402
from sed_scores_eval.base_modules.scores import create_score_dataframe  # noqa: E402

from sedbench.commands.cli import main  # noqa: E402
from sedbench.data.annotations import Event, write_event_table  # noqa: E402
from sedbench.metrics.psds import PSDS1, PSDS2, score_tables, threshold_independent, write_score_tables  # noqa: E402
from sedbench.training.scoring import detection_metrics  # noqa: E402

CLASSES = ["alarm", "dog", "speech"]
HOP = 0.02


def _case(seed: int, files: int = 6, seconds: float = 10.0):
    """Non-overlapping reference events and noisy frame probabilities that follow them."""
    rng = np.random.default_rng(seed)
    frames = int(seconds / HOP)
    refs, probs = {}, {}
    for f in range(files):
        events, truth = [], np.zeros((frames, len(CLASSES)))
        for k, c in enumerate(CLASSES):
            t = 0.0
            while True:
                on = round(t + float(rng.uniform(0.5, 4)), 2)
                off = round(on + float(rng.uniform(0.3, 3)), 2)
                if off >= seconds:
                    break
                events.append(Event(on, off, c))
                truth[int(round(on / HOP)):int(round(off / HOP)), k] = 1
                t = off
        refs[f"clip{f}.wav"] = sorted(events)
        noise = np.stack([np.convolve(rng.normal(0, 1, frames), np.ones(25) / 5, "same") for _ in CLASSES], 1)
        probs[f"clip{f}.wav"] = np.round(1 / (1 + np.exp(-(4 * truth - 2 + noise))), 4)
    return refs, probs


def _reference_values(tables, gt, durations):
    return {"psds1": intersection_based.psds(tables, gt, durations, **PSDS1)[0],
            "psds2": intersection_based.psds(tables, gt, durations, **PSDS2)[0],
            "auroc": segment_based.auroc(tables, gt, durations, segment_length=1.0)[0]}


def test_score_cli_psds_equals_sed_scores_eval_reading_the_same_files(tmp_path, capsys):
    refs, probs = _case(0)
    write_event_table(tmp_path / "ref.tsv", [(n, e) for n, evs in refs.items() for e in evs])
    names = [n.removesuffix(".wav") for n in probs]
    write_score_tables(tmp_path / "scores", score_tables(list(probs.values()), names, CLASSES, HOP))
    (tmp_path / "durations.tsv").write_text("filename\tduration\n" + "".join(f"{n}\t10.0\n" for n in refs))

    assert main(["score", str(tmp_path / "ref.tsv"), "--scores", str(tmp_path / "scores"), "--durations",
                 str(tmp_path / "durations.tsv"), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)["threshold_independent"]

    theirs = _reference_values(io.read_sed_scores(tmp_path / "scores"),
                               io.read_ground_truth_events(tmp_path / "ref.tsv"),
                               io.read_audio_durations(tmp_path / "durations.tsv"))
    assert ours["psds1"] == theirs["psds1"] and ours["psds2"] == theirs["psds2"]
    assert ours["auroc_1sec"] == theirs["auroc"]["mean"]
    assert ours["class_auroc_1sec"] == {c: theirs["auroc"][c] for c in CLASSES}
    assert 0 < ours["psds1"] < ours["psds2"] < 1  # a real case: neither trivial nor perfect


def test_a_runs_outputs_are_scored_as_frame_tables_on_the_hop_grid():
    refs, probs = _case(1, files=4)
    names = list(refs)
    tables = {n.removesuffix(".wav"): create_score_dataframe(probs[n], np.arange(len(probs[n]) + 1) * HOP, CLASSES)
              for n in names}
    gt = {n.removesuffix(".wav"): [(e.onset, e.offset, e.label) for e in refs[n]] for n in names}
    theirs = _reference_values(tables, gt, {k: 10.0 for k in tables})
    half = len(names) // 2
    out = detection_metrics([refs[n] for n in names[:half]], [probs[n] for n in names[:half]],
                            [refs[n] for n in names], [probs[n] for n in names], CLASSES, HOP, 0.5)
    assert out["psds1"] == theirs["psds1"] and out["psds2"] == theirs["psds2"]
    assert out["auroc_1sec"] == theirs["auroc"]["mean"]
    assert set(out["median_filter_s"]) == set(CLASSES) and 0 <= out["psds1_pp"] <= 1


def test_classes_without_reference_events_are_left_out_with_a_note(caplog):
    refs, probs = _case(2, files=3)
    refs = {n: [e for e in evs if e.label != "dog"] for n, evs in refs.items()}
    tables = score_tables(list(probs.values()), list(probs), CLASSES, HOP)
    with caplog.at_level(logging.WARNING):
        ours = threshold_independent(tables, refs)
    assert "leave out 1 class(es) without reference events: dog" in caplog.text
    kept = {n: t.drop(columns=["dog"]) for n, t in tables.items()}
    gt = {n: [(e.onset, e.offset, e.label) for e in evs] for n, evs in refs.items()}
    theirs = _reference_values(kept, gt, {n: 10.0 for n in refs})
    assert ours["psds1"] == theirs["psds1"] and set(ours["class_auroc_1sec"]) == {"alarm", "speech"}


def test_bootstrap_intervals_of_psds_and_auc_over_files(tmp_path, capsys):
    refs, probs = _case(3, files=8)
    write_event_table(tmp_path / "ref.tsv", [(n, e) for n, evs in refs.items() for e in evs])
    write_score_tables(tmp_path / "scores", score_tables(list(probs.values()), [n.removesuffix(".wav") for n in probs],
                                                         CLASSES, HOP))
    args = ["score", str(tmp_path / "ref.tsv"), "--scores", str(tmp_path / "scores"), "--bootstrap", "40"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["threshold_independent"]
    for key in ("psds1", "psds2", "auroc_1sec"):
        low, high = out["interval95"][key]
        assert low <= out[key] <= high and (low < high or out[key] == 1.0), key  # PSDS2 is perfect here
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "95 % intervals over files (bootstrap, 40 draws)" in text and f"PSDS1 {out['psds1']:.4f} [" in text
