"""``sedbench data info``: classes, hours per split, events per class, polyphony."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sedbench.data.dataset import Dataset


@dataclass
class SplitStats:
    files: int = 0
    hours: float = 0.0
    events: dict[str, int] = field(default_factory=dict)
    event_seconds: dict[str, float] = field(default_factory=dict)
    mean_polyphony: float = 0.0       # mean number of active events over frames where any is active
    mean_polyphony_all: float = 0.0   # ... over all frames, silence included
    max_polyphony: int = 0


def split_stats(ds: Dataset, split: str, resolution: float = 0.02) -> SplitStats:
    st = SplitStats(events=dict.fromkeys(ds.classes, 0), event_seconds=dict.fromkeys(ds.classes, 0.0))
    active_frames, poly_sum, frames = 0, 0, 0
    for rec in ds.recordings(split):
        st.files += 1
        dur = rec.duration or max((e.offset for e in rec.events), default=0.0)
        st.hours += dur / 3600
        labels = list(rec.tags or ()) if ds.weak else [e.label for e in rec.events]
        for lab in labels:
            st.events[lab] = st.events.get(lab, 0) + 1
        if ds.weak:
            continue
        n = int(np.ceil(dur / resolution))
        poly = np.zeros(n + 1, np.int32)
        for e in rec.events:
            st.event_seconds[e.label] += e.duration
            a, b = int(np.floor(e.onset / resolution)), int(np.ceil(e.offset / resolution))
            poly[a] += 1
            poly[min(b, n)] -= 1
        count = np.cumsum(poly)[:n]
        frames += n
        active_frames += int((count > 0).sum())
        poly_sum += int(count.sum())
        st.max_polyphony = max(st.max_polyphony, int(count.max(initial=0)))
    st.mean_polyphony = poly_sum / active_frames if active_frames else 0.0
    st.mean_polyphony_all = poly_sum / frames if frames else 0.0
    return st


def format_info(ds: Dataset) -> str:
    stats = {s: split_stats(ds, s) for s in ds.splits}
    lines = [f"dataset {ds.name}  ({ds.root})",
             f"classes: {len(ds.classes)}  sample rate: {ds.sample_rate} Hz  "
             f"labels: {'weak (clip tags)' if ds.weak else 'strong (onset/offset)'}",
             f"splits: {len(stats)} ({', '.join(stats)})", ""]
    lines.append(f"{'split':<11}{'files':>7}{'hours':>9}{'events':>8}" +
                 ("" if ds.weak else f"{'mean poly':>11}{'(all frames)':>14}{'max poly':>10}"))
    for s, st in stats.items():
        row = f"{s:<11}{st.files:>7}{st.hours:>9.3f}{sum(st.events.values()):>8}"
        if not ds.weak:
            row += f"{st.mean_polyphony:>11.2f}{st.mean_polyphony_all:>14.2f}{st.max_polyphony:>10}"
        lines.append(row)
    lines += ["", f"{'class':<28}" + "".join(f"{s:>12}" for s in stats) + ("" if ds.weak else f"{'mean dur (s)':>14}")]
    for c in ds.classes:
        row = f"{c:<28}" + "".join(f"{st.events.get(c, 0):>12}" for st in stats.values())
        if not ds.weak:
            n = sum(st.events.get(c, 0) for st in stats.values())
            secs = sum(st.event_seconds.get(c, 0.0) for st in stats.values())
            row += f"{(secs / n if n else 0.0):>14.2f}"
        lines.append(row)
    if not ds.weak:
        lines.append("mean poly: mean number of simultaneous events over frames where at least one is active")
    return "\n".join(lines)
