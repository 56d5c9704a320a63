"""Clip-level metrics: equal error rate for tagging (DCASE2016 task 4, the paper's Table VI)
and accuracy for clip classification (ESC)."""

from __future__ import annotations

import numpy as np


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """EER of one class: the operating point where false positive and false negative rates meet.

    ROC over all thresholds (scores descending); the EER is the mean of FPR and FNR at
    the threshold where they are closest. NaN when the class has no positive or no negative.
    """
    y = np.asarray(labels) > 0
    s = np.asarray(scores, np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # one operating point per distinct score
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(~y)[last_of_tie]
    fpr = np.r_[0.0, fp / n_neg]
    fnr = np.r_[1.0, 1.0 - tp / n_pos]
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def mean_eer(labels: np.ndarray, scores: np.ndarray) -> tuple[float, list[float]]:
    """Class-wise EERs of ``(clips, classes)`` arrays and their mean over classes with both outcomes."""
    per_class = [equal_error_rate(labels[:, k], scores[:, k]) for k in range(labels.shape[1])]
    valid = [e for e in per_class if not np.isnan(e)]
    return (float(np.mean(valid)) if valid else float("nan")), per_class


def accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    """Clip classification accuracy: the arg-max class equals the (single) true class."""
    return float(np.mean(np.argmax(scores, axis=1) == np.argmax(labels, axis=1)))
