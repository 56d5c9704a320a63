"""The fast segment-based metrics equal sed_eval's SegmentBasedMetrics, number for number."""

import math

import numpy as np
import pytest

from sedbench.data.annotations import Event
from sedbench.data.features import frame_targets
from sedbench.metrics.segment import SegmentAccumulator, frames_to_events, segment_scores

CLASSES = ["alarm", "bird", "cat", "dog"]


def sed_eval_metrics(ref, est, classes, resolution):
    import sed_eval

    m = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(classes), time_resolution=resolution)
    for name in sorted(set(ref) | set(est)):
        m.evaluate(as_dicts(name, ref.get(name, [])), as_dicts(name, est.get(name, [])))
    return m


def as_dicts(name, events):
    return [{"filename": name, "onset": e.onset, "offset": e.offset, "event_label": e.label} for e in events]


def assert_same(ours, ref_metrics):
    overall = ref_metrics.results_overall_metrics()
    for key in ("f_measure", "precision", "recall"):
        np.testing.assert_equal(ours.overall[key], overall["f_measure"][key], err_msg=key)
    for key in ("error_rate", "substitution_rate", "deletion_rate", "insertion_rate"):
        np.testing.assert_equal(ours.overall[key], overall["error_rate"][key], err_msg=key)
    for label, res in ref_metrics.results_class_wise_metrics().items():
        for key in ("f_measure", "precision", "recall"):
            np.testing.assert_equal(ours.class_wise[label][key], res["f_measure"][key], err_msg=(label, key))
        for key in ("error_rate", "deletion_rate", "insertion_rate"):
            np.testing.assert_equal(ours.class_wise[label][key], res["error_rate"][key], err_msg=(label, key))
    avg = ref_metrics.results_class_wise_average_metrics()
    np.testing.assert_equal(ours.class_average["f_measure"], avg["f_measure"]["f_measure"])
    np.testing.assert_equal(ours.class_average["error_rate"], avg["error_rate"]["error_rate"])
    assert ours.evaluated_seconds == pytest.approx(ref_metrics.evaluated_length_seconds)


def random_events(rng, n, length, grid=None):
    out = []
    for _ in range(n):
        if grid:
            on = int(rng.integers(0, int(length / grid))) * grid
            off = on + int(rng.integers(1, 200)) * grid
        else:
            on = float(rng.uniform(0, length))
            off = on + float(rng.exponential(2.0)) + 1e-3
        out.append(Event(on, off, str(rng.choice(CLASSES))))
    return out


@pytest.mark.parametrize("resolution", [0.02, 1.0])
@pytest.mark.parametrize("seed", range(6))
def test_random_multi_file_event_lists(seed, resolution):
    rng = np.random.default_rng(seed)
    ref, est = {}, {}
    for f in range(int(rng.integers(1, 6))):
        grid = 0.02 if rng.random() < 0.5 else None
        ref[f"f{f}.wav"] = random_events(rng, int(rng.integers(0, 15)), 30.0, grid)
        est[f"f{f}.wav"] = random_events(rng, int(rng.integers(0, 15)), 30.0, grid)
    assert_same(segment_scores(ref, est, CLASSES, resolution), sed_eval_metrics(ref, est, CLASSES, resolution))


@pytest.mark.parametrize("resolution", [0.02, 1.0])
@pytest.mark.parametrize("seed", range(6))
def test_frame_matrices_equal_sed_eval_on_the_same_frames_written_as_events(seed, resolution):
    """The float-rounding trap: runs at k*hop come back one frame wider in about 5 % of cases."""
    rng = np.random.default_rng(100 + seed)
    hop = 0.02
    acc = SegmentAccumulator(CLASSES, resolution)
    ref, est = {}, {}
    for f in range(3):
        ref[f] = random_events(rng, 12, 40.0, grid=None if f else 0.02)
        T = int(math.ceil(45.0 / hop))
        frames = (rng.random((T, len(CLASSES))) < 0.02).astype(np.float32)
        frames = np.maximum(frames, np.roll(frames, 1, axis=0))  # runs of various lengths
        frames[: int(rng.integers(0, T))] *= rng.random() < 0.8
        acc.add_frames(ref[f], frames, hop)
        est[f] = frames_to_events(frames, CLASSES, hop)
    assert_same(acc.result(), sed_eval_metrics(ref, est, CLASSES, resolution))


def test_rounding_trap_is_real():
    """29 * 0.02 / 0.02 = 28.999...: the written event covers one more frame than the matrix."""
    frames = np.zeros((40, 1), np.float32)
    frames[29:31] = 1
    (ev,) = frames_to_events(frames, ["a"], 0.02)
    assert math.floor(ev.onset * 1 / 0.02) == 28
    acc = SegmentAccumulator(["a"], 0.02)
    acc.add_frames([Event(0.58, 0.62, "a")], frames, 0.02)
    assert acc.result().counts["Nsys"] == 3  # frames 28, 29, 30 as sed_eval counts them


def test_segments_restart_in_every_file():
    ref = {"a": [Event(0.5, 1.5, "dog")], "b": [Event(0.5, 1.5, "dog")]}
    est = {"a": [Event(0.2, 0.4, "dog")], "b": [Event(1.2, 1.4, "dog")]}
    ours = segment_scores(ref, est, CLASSES, 1.0)
    assert ours.counts["Ntp"] == 2 and ours.counts["Nref"] == 4  # segment 0 in a, segment 1 in b
    assert_same(ours, sed_eval_metrics(ref, est, CLASSES, 1.0))


def test_evaluated_length_is_the_largest_offset():
    ref = {"a": [Event(0.0, 2.0, "cat")]}
    est = {"a": [Event(0.0, 2.0, "cat"), Event(5.0, 7.3, "dog")]}
    ours = segment_scores(ref, est, CLASSES, 1.0)
    assert ours.evaluated_seconds == 7.3 and ours.counts["Ntn"] == 8 * 4 - 2 - 3
    assert_same(ours, sed_eval_metrics(ref, est, CLASSES, 1.0))


def test_event_touching_a_segment_boundary_and_same_class_overlaps():
    ref = {"a": [Event(0.5, 1.0, "cat"), Event(1.0, 1.0000001, "bird"), Event(2.0, 3.0, "dog"), Event(2.5, 4.0, "dog")]}
    est = {"a": [Event(0.99, 1.01, "cat"), Event(3.0, 3.5, "dog"), Event(3.2, 3.4, "dog")]}
    ours = segment_scores(ref, est, CLASSES, 1.0)
    assert ours.class_wise["cat"]["Nsys"] == 2  # touching the 1-s boundary: counted in both segments
    assert ours.class_wise["dog"]["Nref"] == 2 and ours.class_wise["dog"]["Nsys"] == 1  # overlaps merged
    assert_same(ours, sed_eval_metrics(ref, est, CLASSES, 1.0))


@pytest.mark.parametrize("case", ["no_output", "no_reference", "nothing"])
def test_empty_outputs(case):
    ev = [Event(0.3, 2.7, "cat")]
    ref, est = {"nothing": ([], []), "no_output": (ev, []), "no_reference": ([], ev)}[case]
    ours = segment_scores({"a": ref}, {"a": est}, CLASSES, 1.0)
    assert_same(ours, sed_eval_metrics({"a": ref}, {"a": est}, CLASSES, 1.0))


def test_perfect_frames_score_one():
    events = [Event(0.1, 1.3, "cat"), Event(0.5, 2.2, "dog")]
    frames = frame_targets(events, CLASSES, 120, 0.02)
    acc = SegmentAccumulator(CLASSES, 0.02)
    acc.add_frames(events, frames, 0.02)
    r = acc.result()
    assert r.f1 == pytest.approx(1.0) and r.er == 0.0
