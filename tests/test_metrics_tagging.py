import numpy as np
import pytest

from sedbench.data.annotations import Event
from sedbench.metrics.event import event_based
from sedbench.metrics.tagging import accuracy, equal_error_rate, mean_eer


def test_eer_extremes_and_a_worked_example():
    y = np.array([1, 1, 0, 0])
    assert equal_error_rate(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert equal_error_rate(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    # thresholds: FPR/FNR at score 0.7 are 1/2 and 1/2 -> EER 0.5
    assert equal_error_rate(y, [0.9, 0.3, 0.7, 0.1]) == 0.5
    assert np.isnan(equal_error_rate([1, 1], [0.2, 0.3]))


def test_eer_of_random_scores_is_near_half():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    assert equal_error_rate(y, rng.random(4000)) == pytest.approx(0.5, abs=0.03)


def test_eer_ties_are_one_operating_point():
    assert equal_error_rate([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_mean_eer_skips_classes_without_both_outcomes():
    labels = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.2, 0.5], [0.8, 0.3, 0.5], [0.2, 0.4, 0.5]])
    mean, per = mean_eer(labels, scores)
    assert mean == 0.0 and per[0] == 0.0 and np.isnan(per[1]) and np.isnan(per[2])


def test_accuracy():
    labels = np.eye(3)[[0, 1, 2, 1]]
    scores = np.array([[0.9, 0, 0], [0.1, 0.8, 0], [0.5, 0.4, 0.1], [0, 1, 0]])
    assert accuracy(labels, scores) == 0.75


def test_event_based_through_sed_eval():
    ref = {"a": [Event(1.0, 3.0, "dog"), Event(5.0, 6.0, "cat")]}
    est = {"a": [Event(1.1, 2.9, "dog"), Event(8.0, 9.0, "cat")]}
    r = event_based(ref, est)
    assert r.f1 == pytest.approx(0.5) and r.class_wise["dog"]["f_measure"] == 1.0 and r.class_wise["cat"]["Nref"] == 1
