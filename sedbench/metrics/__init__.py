"""Sound event detection metrics; ``sed_eval`` is the reference and the fast path equals it.

* :mod:`sedbench.metrics.segment`: segment-based precision, recall, F1 and error rate
  (substitutions, deletions, insertions) on single frames (F1_frm, ER_frm) and on
  1-second segments (F1_1sec, ER_1sec), micro-averaged over all files, plus class-wise
  figures (Mesaros, Heittola, Virtanen, "Metrics for polyphonic sound event detection",
  Applied Sciences 2016; Cakir et al. 2017, Sec. III-B).
* :mod:`sedbench.metrics.tagging`: equal error rate for audio tagging (DCASE2016 task 4)
  and accuracy for clip classification.
* :func:`sedbench.metrics.event.event_based`: event-based F1/ER (collars 200 ms / 20 %), numpy
  decisions fed to sed_eval's own counters, equal to its ``evaluate``.
* :mod:`sedbench.metrics.psds`: PSDS1, PSDS2 and segment ROC AUC from frame probabilities,
  computed by sed_scores_eval.
* :mod:`sedbench.metrics.postprocess`: class-wise median filters tuned on validation.
* :mod:`sedbench.commands.score`: ``sedbench score`` (every event-list layout, intervals over files).

What each score means and when to use which: docs/metrics.md.
"""

from sedbench.metrics.segment import (
    SegmentAccumulator,
    SegmentScores,
    frames_to_events,
    segment_scores,
)

__all__ = ["SegmentAccumulator", "SegmentScores", "frames_to_events", "segment_scores"]
