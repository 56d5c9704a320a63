"""Items 4, 5 and 8: the data pipeline against training, the feature cache warm against cold, peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sedbench.bench.common import BATCH, SEQ_LEN


def bench_pipeline(dm) -> dict:
    """Frames per second the training loader delivers (one epoch, no model)."""
    loader = dm.train_dataloader()
    t0, frames = time.perf_counter(), 0
    for batch in loader:
        frames += int(batch["mask"].sum())
    return {"frames": frames, "frames_per_second": frames / (time.perf_counter() - t0)}


def bench_cache(ds, cache_dir: Path) -> dict:
    """``DataModule.setup()`` with an empty feature cache, then again with it warm (a new DataModule)."""
    from sedbench.data.datamodule import SEDDataModule

    walls = []
    for _ in range(2):
        dm = SEDDataModule(ds, seq_len=SEQ_LEN, batch_size=BATCH, cache_dir=cache_dir, progress=False)
        t0 = time.perf_counter()
        dm.setup("fit")
        walls.append(time.perf_counter() - t0)
    return {"cold_seconds": round(walls[0], 3), "warm_seconds": round(walls[1], 4),
            "cache_warm_over_cold": walls[1] / walls[0], "dm": dm}


def bench_memory(work: Path, minutes: float, train_seconds: int, root: Path | None = None) -> dict:
    """Peak RSS of ``sedbench train`` (the paper's CRNN, 256-frame sequences) on a synth set of ``minutes``
    (generated here, or an existing one at ``root``)."""
    gen_wall = 0.0
    if root is None:
        root = work / "synth_big"
        gen = [sys.executable, "-m", "sedbench", "data", "generate", "synth", "--out", str(root), "--quiet"]
        gen += ["--paper-size"] if minutes >= 566 else ["--minutes-train", str(0.6 * minutes)]
        t0 = time.perf_counter()
        subprocess.run(gen, check=True, capture_output=True)
        gen_wall = time.perf_counter() - t0
    train_args = ["train", "data=folder", f"data.root={root}", "data.seq_len=256",
                  f"trainer.max_time=00:00:00:{train_seconds:02d}", "tracking.log_model=false",
                  f"tracking.uri=sqlite:///{work}/mlflow.db", f"tracking.artifacts={work}/artifacts",
                  f"features.cache_dir={work}/cache", f"hydra.run.dir={work}/run"]
    # the training process reports its own peak RSS as it exits (RUSAGE_CHILDREN would mix in the others)
    probe = ("import resource, runpy, sys\n"
             f"sys.argv = ['sedbench', *{train_args!r}]\n"
             "try:\n    runpy.run_module('sedbench', run_name='__main__')\n"
             "finally:\n"
             "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    peak = [line.split()[1] for line in r.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    if r.returncode != 0 or not peak:
        raise RuntimeError(f"bench memory run failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    audio_min = sum(p.stat().st_size for p in root.rglob("*.wav")) / 2 / 44100 / 60  # 16-bit mono
    out = {"audio_minutes": round(audio_min, 1), "generate_seconds": round(gen_wall, 1),
           "train_wall_seconds": round(time.perf_counter() - t0, 1), "train_peak_rss_gb": int(peak[0]) / 2**20,
           "root": str(root)}
    # the run's own split of its wall time (metrics.json time/*): scoring is the detection part (event-based
    # scores, PSDS1/2, ROC AUC, median filters tuned on validation); test is prediction and the segment scores
    times = json.loads((work / "run" / "metrics.json").read_text())
    wall = times["time/wall"]
    out.update(run_seconds={k[len("time/"):]: v for k, v in times.items() if k.startswith("time/")},
               scoring_seconds=times.get("time/detection"), scoring_share=times.get("time/detection", 0.0) / wall,
               test_share=times.get("time/test", 0.0) / wall, psds1=times.get("test/psds1"),
               psds2=times.get("test/psds2"))
    return out


def bench_meter(trial_wall_seconds: float | None, repeats: int = 200) -> dict:
    """Item 23: what recording a run's energy and peak memory costs it. A run reads its energy meter four times
    (training and test, each started and stopped: sedbench.energy reads counters at those moments and runs nothing
    in between) and resets and reads its peak memory once; their seconds, timed here over ``repeats`` runs' worth,
    against the wall time of item 12's demo CRNN trial (``trial_wall_seconds``)."""
    from sedbench.energy import EnergyMeter
    from sedbench.hardware import peak_memory, reset_peak_memory

    cuda = 0 if _cuda() else None
    t0 = time.perf_counter()
    for _ in range(repeats):
        for _ in range(2):  # training, then test
            EnergyMeter(10.0, cuda).start().stop()
        reset_peak_memory()
        peak_memory()
    per_run = (time.perf_counter() - t0) / repeats
    _, method = EnergyMeter(10.0, cuda).start().stop()
    out = {"seconds_per_run": per_run, "method": method, "repeats": repeats}
    if trial_wall_seconds:
        out.update(trial_wall_seconds=trial_wall_seconds, overhead_share=per_run / trial_wall_seconds)
    return out


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
