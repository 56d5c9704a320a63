"""PSDS1, PSDS2 and segment ROC AUC: sedbench's paths give sed_scores_eval's values on the same inputs.

sedbench computes the intersection-based statistics itself (sedbench.metrics.intersection, linear in a
file's frames) and the rest with sed_scores_eval: its deltas are tested equal to sed_scores_eval's, value for
value, on fragmented, smooth, tied and quantized scores; and everything around them: reading score tables
and references in every layout sedbench accepts, naming files, durations, the frame timestamps of a run's
outputs, the DCASE settings of PSDS1 and PSDS2, and classes without reference events.
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


def _hard_case(kind: str, seed: int, files: int = 5, frames: int = 300, n_classes: int = 4):
    """Score tables that stress the intersection statistics: ``fragmented`` (every frame its own score),
    ``smooth`` (random walks clipped to [0, 1]: ties at both ends) with reference times off the frame grid,
    ``tied`` (one decimal) and ``quantized`` (two decimals); the first file without any event."""
    rng = np.random.default_rng(seed)
    classes = [f"c{k}" for k in range(n_classes)]
    probs, gt = [], {}
    for f in range(files):
        noise = 0.35 + 0.25 * rng.standard_normal((frames, n_classes))
        p = {"fragmented": np.clip(noise, 0, 1), "tied": np.round(rng.random((frames, n_classes)), 1),
             "smooth": np.clip(np.cumsum(rng.standard_normal((frames, n_classes)), 0) / 20 + 0.5, 0, 1),
             "quantized": np.round(np.clip(noise, 0, 1), 2)}[kind]
        probs.append(p)
        events = []
        for c in classes:
            t = 0.0
            while f:
                t += rng.exponential(1.5)
                d = rng.exponential(0.8) + 0.05
                if t + d > frames * HOP:
                    break
                on, off = (t, t + d) if kind == "smooth" else (round(t / HOP) * HOP, round((t + d) / HOP) * HOP)
                if off > on:
                    events.append((on, off, c))
                t += d + 0.01
        gt[f"f{f}"] = events
    return score_tables(probs, list(gt), classes, HOP), gt


@pytest.mark.parametrize("kind", ["fragmented", "smooth", "tied", "quantized"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sedbench_intersection_deltas_equal_sed_scores_evals(kind, seed):
    from sedbench.metrics.intersection import intermediate_statistics_deltas
    from sedbench.metrics.psds import _criteria

    tables, gt = _hard_case(kind, seed)
    ours = intermediate_statistics_deltas(tables, gt, [_criteria(PSDS1), _criteria(PSDS2)])
    for deltas, settings in zip(ours, (PSDS1, PSDS2), strict=True):
        reference = intersection_based.intermediate_statistics_deltas(tables, gt, **_criteria(settings))
        assert deltas.keys() == reference.keys()
        for name, by_class in reference.items():
            assert deltas[name].keys() == by_class.keys()
            for c, (cp, stats) in by_class.items():
                mine_cp, mine = deltas[name][c]
                assert np.array_equal(mine_cp, cp), (name, c)
                assert list(mine) == list(stats) and all(np.array_equal(mine[k], stats[k]) for k in stats), (name, c)
        durations = {n: float(t["offset"].to_numpy()[-1]) for n, t in tables.items()}
        assert intersection_based.psds(None, gt, durations, deltas=deltas, **settings)[0] == \
            intersection_based.psds(tables, gt, durations, **settings)[0]
    # and PSDS computed one class at a time (what a run uses) is sed_scores_eval's value
    from sedbench.metrics.intersection import psds_by_class

    durations = {n: float(t["offset"].to_numpy()[-1]) for n, t in tables.items()}
    assert psds_by_class(tables, gt, durations, [PSDS1, PSDS2]) == \
        [intersection_based.psds(tables, gt, durations, **s)[0] for s in (PSDS1, PSDS2)]


def test_both_implementations_give_the_same_threshold_independent_scores():
    refs, probs = _case(3)
    tables = score_tables(list(probs.values()), list(probs), CLASSES, HOP)
    ours = threshold_independent(tables, refs, n_boot=20)
    assert ours == threshold_independent(tables, refs, n_boot=20, exact="sed_scores_eval")
    one_class_at_a_time = threshold_independent(tables, refs)  # without draws: PSDS class by class
    assert one_class_at_a_time == {k: v for k, v in ours.items() if k != "interval95"}
    with pytest.raises(ValueError, match="sedbench or sed_scores_eval"):
        threshold_independent(tables, refs, exact="other")


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
