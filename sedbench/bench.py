"""``make bench``: throughput of the data stage, as ratios measured in one run.

Writes ``results/bench.json``: synth generation speed (audio seconds per wall second),
feature extraction speed cold (computed) and warm (cache hit) with their ratio, and the
wall time of ``sedbench --help`` against a bare ``python -c pass`` in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _best_wall(cmd: list[str], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def _features_pass(ds, cache) -> tuple[float, float]:
    from sedbench.data.datamodule import split_features
    from sedbench.data.features import FeatureParams

    t0 = time.perf_counter()
    for split in ds.splits:
        split_features(ds, split, FeatureParams(), cache, progress=False)
    return time.perf_counter() - t0, sum(r.duration or 0 for s in ds.splits for r in ds.recordings(s))


def score_case(hours: float = 2.0, n_classes: int = 16, files: int = 20, seed: int = 0):
    """Reference and system event lists: ``files`` files, ``hours`` in all, ``n_classes`` classes."""
    import numpy as np

    from sedbench.data.annotations import Event

    rng = np.random.default_rng(seed)
    length = hours * 3600 / files
    classes = [f"class{k:02d}" for k in range(n_classes)]
    ref, est = {}, {}
    for f in range(files):
        r, e = [], []
        for c in classes:
            t = float(rng.exponential(20))
            while t < length:
                d = float(rng.exponential(4)) + 0.1
                r.append(Event(round(t, 3), round(min(t + d, length), 3), c))
                if rng.random() < 0.8:  # a detection, shifted
                    on = max(0.0, t + float(rng.normal(0, 0.3)))
                    e.append(Event(round(on, 2), round(on + d * float(rng.uniform(0.6, 1.3)), 2), c))
                t += d + float(rng.exponential(20))
        ref[f"f{f:02d}.wav"], est[f"f{f:02d}.wav"] = r, e
    return ref, est, classes


def bench_score() -> dict:
    from sedbench.metrics.event import sed_eval_segment
    from sedbench.metrics.segment import segment_scores

    ref, est, classes = score_case()
    t0 = time.perf_counter()
    slow = sed_eval_segment(ref, est, classes, 0.02)
    sed_eval_wall = time.perf_counter() - t0
    fast_wall = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fast = segment_scores(ref, est, classes, 0.02)
        fast_wall = min(fast_wall, time.perf_counter() - t0)
    assert fast.overall == slow.overall, "fast path must equal sed_eval"
    return {"sed_eval_seconds": round(sed_eval_wall, 3), "fast_seconds": round(fast_wall, 4),
            "speedup": round(sed_eval_wall / fast_wall, 1), "f1": round(fast.f1, 4), "identical": True}


def run(minutes_train: float = 3.0) -> dict:
    import numpy as np

    from sedbench.cli import main
    from sedbench.data.dataset import read_folder
    from sedbench.data.features import FeatureCache, extract

    with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
        out = Path(tmp) / "synth"
        t0 = time.perf_counter()
        main(["data", "generate", "synth", "--out", str(out), "--minutes-train", str(minutes_train), "--quiet"])
        gen_wall = time.perf_counter() - t0
        ds = read_folder(out)
        t0 = time.perf_counter()
        extract(np.zeros(4410, np.float32), 44100)  # librosa loads lazily: one-time cost, reported apart
        first_call_wall = time.perf_counter() - t0
        cache = FeatureCache(Path(tmp) / "cache")
        cold_wall, audio_s = _features_pass(ds, cache)
        warm_wall, _ = _features_pass(ds, cache)
        assert cache.hits == cache.misses, "second pass must be all cache hits"
    score = bench_score()
    help_wall = _best_wall([sys.executable, "-m", "sedbench", "--help"])
    python_wall = _best_wall([sys.executable, "-c", "pass"])
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "synth_generation": {"audio_seconds": round(audio_s, 1), "wall_seconds": round(gen_wall, 2),
                             "audio_s_per_wall_s": round(audio_s / gen_wall, 1)},
        "features_logmel": {"files": cache.misses, "first_call_overhead_seconds": round(first_call_wall, 3),
                            "cold_wall_seconds": round(cold_wall, 3),
                            "warm_wall_seconds": round(warm_wall, 3),
                            "cold_audio_s_per_wall_s": round(audio_s / cold_wall, 1),
                            "warm_audio_s_per_wall_s": round(audio_s / warm_wall, 1),
                            "warm_over_cold_speedup": round(cold_wall / warm_wall, 1)},
        "score_2h_16_classes_0.02s": score,
        "cli_help": {"wall_seconds": round(help_wall, 3), "bare_python_wall_seconds": round(python_wall, 3),
                     "ratio_to_bare_python": round(help_wall / python_wall, 2)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/bench.json"))
    ap.add_argument("--minutes-train", type=float, default=3.0)
    args = ap.parse_args(argv)
    result = run(args.minutes_train)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
