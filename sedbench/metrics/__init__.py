"""Sound event detection metrics; ``sed_eval`` is the reference and the fast path equals it.

* :mod:`sedbench.metrics.segment`: segment-based precision, recall, F1 and error rate
  (substitutions, deletions, insertions) on single frames (F1_frm, ER_frm) and on
  1-second segments (F1_1sec, ER_1sec), micro-averaged over all files, plus class-wise
  figures (Mesaros, Heittola, Virtanen, "Metrics for polyphonic sound event detection",
  Applied Sciences 2016; Cakir et al. 2017, Sec. III-B).
* :mod:`sedbench.metrics.tagging`: equal error rate for audio tagging (DCASE2016 task 4)
  and accuracy for clip classification.
* :func:`sedbench.metrics.event.event_based`: event-based F1/ER through sed_eval itself.
"""

from sedbench.metrics.segment import (
    SegmentAccumulator,
    SegmentScores,
    frames_to_events,
    segment_scores,
)

__all__ = ["SegmentAccumulator", "SegmentScores", "frames_to_events", "segment_scores"]
