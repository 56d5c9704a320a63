"""``make bench``: every figure a ratio against a baseline measured in the same run.

These machines are noisy, so nothing here is a timed assertion: each figure is the ratio of two
measurements taken side by side (alternating where they are cheap enough to repeat), and
``results/bench.json`` keeps both. The table printed at the end shows each ratio with its goal.

1. training throughput: sedbench's Lightning loop against a plain PyTorch loop (same model,
   batch, data and threads) on the paper's CRNN (3 x 256 maps, pooling (5,4,2), 1 GRU of 256,
   16 classes, sequences of 256 frames);
2. achieved FLOP/s of that training (FLOPs counted by torch per step) against the fp32
   matrix-multiply rate torch reaches here; the same with bf16 autocast where the CPU computes bf16
   natively (elsewhere ``unsupported``, see ``sedbench.hardware``), and torch.compile;
3. metrics: ``sedbench.metrics`` against sed_eval, 2 h x 16 classes, at 0.02 s and 1 s;
4. data pipeline: frames per second the DataModule delivers against frames per second trained;
5. feature cache: warm data set-up time against cold;
6. sweep orchestration: a small sweep's wall time against the sum of its trials' fit times;
7. CLI start-up: ``sedbench --help`` against ``python -c pass``;
8. memory: peak RSS of a training run on a paper-size synth set (566 minutes), its features read
   through memory maps of files beside the feature cache (``sedbench.data.frames``);
9. event-based metrics: sedbench's fast path against sed_eval's EventBasedMetrics (2 h x 16
   classes, fragmented detections), values identical;
10. PSDS1 + PSDS2 + 1-s ROC AUC on a DESED-sized case (2,500 ten-second clips, 10 classes, 156
   frames per clip as the DESED baseline outputs): ``sedbench score --scores`` (reading the tables,
   the reference and the durations, then sed_scores_eval) against sed_scores_eval's own readers and
   functions on the same files, values identical;
11. small model: item 1's two loops on the demo's largest CRNN (maps 32, 59k parameters, 128-frame
   sequences, batch 8), where per-step overheads weigh most;
12. a demo trial's overheads: the demo's largest CRNN (maps 32) run twice in one sweep process with the
   demo's settings; the share of the second trial's wall time (Optuna's start to completion) spent outside
   training steps, with its split (``time/*`` of metrics.json: start-up, data, validation, test, detection
   scores, recording; the first trial's split shows what a worker pays once), and the split of item 13's
   auto grid;
13. packing: trials per hour of the demo grid with ``sweep.n_jobs=auto`` against one process using
   every core (``sweep.n_jobs=1``, ``trainer.num_threads`` = cores);
14. pruning: Hyperband replayed on the learning curves of a finished full grid (item 13's auto run, or
   ``--pruning-from STUDY``, e.g. ``demo``): its share of the grid's fit time and its loss of best test
   F1_frm (``sedbench.pruning``); the median pruner beside it, and the best-so-far curves as a PNG.

``--parts events,psds,small_model,packing,pruning`` measures only those parts and merges them into an existing
``--out`` (``pruning`` needs ``--pruning-from``; ``packing`` measures it on its own auto run otherwise).

Every figure records the CPU it was measured on (torch's CPU capability and the model name).
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

from sedbench.tracking import DEFAULT_STORAGE, tracking_uri

GOALS = {  # figure: (goal, "min" = at least / "max" = at most)
    "train_loop_ratio": (0.95, "min"),
    "flops_fraction_fp32": (0.6, "min"),
    "metrics_speedup_0.02s": (50.0, "min"),
    "pipeline_over_training": (20.0, "min"),
    "cache_warm_over_cold": (0.05, "max"),
    "sweep_wall_over_fit": (1.15, "max"),
    "cli_help_extra_seconds": (1.0, "max"),
    "train_peak_rss_gb": (2.0, "max"),
    "event_metrics_speedup": (10.0, "min"),
    "psds_time_over_sed_scores_eval": (1.1, "max"),
    "small_model_loop_ratio": (0.95, "min"),
    "small_model_overhead_share": (0.20, "max"),
    "sweep_packing_speedup": (1.3, "min"),
    "pruning_compute_fraction": (0.40, "max"),
    "pruning_f1_gap_points": (1.0, "max"),
}
PAPER_CRNN = {"maps": 256, "pool": [5, 4, 2], "rnn_layers": 1, "kernel": [5, 5]}
SEQ_LEN, BATCH, N_CLASSES = 256, 8, 16
DEMO_CRNN = {"maps": 32, "pool": [5, 4, 2], "rnn_layers": 1, "kernel": [5, 5]}  # the demo's largest CRNN (59k)
DEMO_SEQ_LEN = 128


def _best_wall(cmd: list[str], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- 1-2. training
def paper_crnn(n_in: int, arch: dict | None = None):
    """The paper's CRNN (or the CRNN of ``arch``), seeded."""
    import torch

    from sedbench.models.crnn import CRNN

    torch.manual_seed(0)
    return CRNN(n_in, N_CLASSES, **(arch or PAPER_CRNN))


def flops_per_step(n_in: int, batch_size: int = BATCH, seq_len: int = SEQ_LEN) -> float:
    """FLOPs of one training step (forward, backward) of the paper's CRNN on one batch, counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sedbench.training.module import SEDModule

    module = SEDModule(paper_crnn(n_in))
    batch = {"x": torch.randn(batch_size, seq_len, n_in), "y": torch.zeros(batch_size, seq_len, N_CLASSES),
             "mask": torch.ones(batch_size, seq_len)}
    with FlopCounterMode(display=False) as counter:
        module._loss(module(batch["x"], batch["mask"]), batch).backward()
    return float(counter.get_total_flops())


def matmul_rate(dtype_name: str = "float32", n: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of an n x n matrix multiply, best of ``repeat``: what torch reaches on this machine."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def plain_loop(loader, n_in: int, steps: int, warmup: int, autocast: bool = False, compile_net: bool = False,
               arch: dict | None = None, frames_per_step: int = BATCH * SEQ_LEN) -> dict:
    """The baseline: a hand-written PyTorch loop with the same model, loss, optimizer and loader."""
    import torch
    import torch.nn.functional as F

    net = paper_crnn(n_in, arch)
    net.train()
    opt = torch.optim.Adam(net.parameters())
    run = torch.compile(net) if compile_net else net
    t_start = t_first = None
    done = 0
    while done < warmup + steps:
        for batch in loader:
            if done == warmup:
                t_first = time.perf_counter()
            elif done == 0:
                t_start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = run(batch["x"], batch["mask"])
            per_frame = F.binary_cross_entropy_with_logits(logits.float(), batch["y"], reduction="none").mean(-1)
            loss = (per_frame * batch["mask"]).sum() / batch["mask"].sum().clamp_min(1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == warmup + steps:
                break
    wall = time.perf_counter() - t_first
    return {"frames_per_second": steps * frames_per_step / wall, "seconds_per_step": wall / steps,
            "warmup_seconds": t_first - (t_start or t_first)}


def sedbench_loop(dm, steps: int, warmup: int, precision: str = "32", arch: dict | None = None,
                  frames_per_step: int = BATCH * SEQ_LEN) -> dict:
    """sedbench's loop: SEDModule under a Lightning Trainer configured as ``sedbench train`` does
    (deterministic, the masked loss, the NaN guard, epoch metrics), without validation or logging."""
    import pytorch_lightning as pl

    from sedbench.training.module import SEDModule

    marks: dict[str, float] = {}

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == warmup:
                marks.setdefault("first", time.perf_counter())

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            marks["last"] = time.perf_counter()

    module = SEDModule(paper_crnn(dm.n_features, arch))
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=warmup + steps,
                         deterministic=True, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=dm.train_dataloader())
    wall = marks["last"] - marks["first"]
    return {"frames_per_second": steps * frames_per_step / wall, "seconds_per_step": wall / steps}


def compare_loops(dm, steps: int, warmup: int, rounds: int, arch: dict | None = None,
                  frames_per_step: int = BATCH * SEQ_LEN, what: str = "training throughput") -> tuple[list, list]:
    """The plain and the sedbench loop, alternating for ``rounds`` (drifts in machine speed hit both alike)."""
    loader, plain, ours = dm.train_dataloader(), [], []
    for r in range(rounds):
        log(f"{what}, round {r + 1}/{rounds}: plain PyTorch loop, then sedbench's loop")
        plain.append(plain_loop(loader, dm.n_features, steps, warmup, arch=arch, frames_per_step=frames_per_step))
        ours.append(sedbench_loop(dm, steps, warmup, arch=arch, frames_per_step=frames_per_step))
    return plain, ours


def bench_small_model(ds, cache_dir: Path, steps: int = 300, warmup: int = 30, rounds: int = 2) -> dict:
    """Item 11: the loops of item 1 on the demo's largest CRNN (59k parameters, 128-frame sequences, batch 8),
    where per-step overheads weigh most (one step takes milliseconds, not seconds)."""
    import torch

    from sedbench.data.datamodule import SEDDataModule

    dm = SEDDataModule(ds, seq_len=DEMO_SEQ_LEN, batch_size=BATCH, cache_dir=cache_dir, progress=False)
    dm.setup("fit")
    plain, ours = compare_loops(dm, steps, warmup, rounds, DEMO_CRNN, BATCH * DEMO_SEQ_LEN,
                                f"small model ({steps} steps each)")
    best_plain = max(p["frames_per_second"] for p in plain)
    best_ours = max(o["frames_per_second"] for o in ours)
    return {"model": {**DEMO_CRNN, "classes": N_CLASSES, "seq_len": DEMO_SEQ_LEN, "batch": BATCH,
                      "parameters": sum(p.numel() for p in paper_crnn(dm.n_features, DEMO_CRNN).parameters())},
            "threads": torch.get_num_threads(), "steps_timed": steps, "warmup_steps": warmup,
            "plain_frames_per_second": [round(p["frames_per_second"], 1) for p in plain],
            "sedbench_frames_per_second": [round(o["frames_per_second"], 1) for o in ours],
            "loop_ratio": best_ours / best_plain}


def bench_training(dm, steps: int, warmup: int, rounds: int, try_compile: bool) -> dict:
    import torch

    n_in = dm.n_features
    loader = dm.train_dataloader()
    plain, ours = compare_loops(dm, steps, warmup, rounds)
    best_plain = max(p["frames_per_second"] for p in plain)
    best_ours = max(o["frames_per_second"] for o in ours)
    log("the fp32 matmul rate")
    flops = flops_per_step(n_in)
    peak32 = matmul_rate("float32")
    per_frame = flops / (BATCH * SEQ_LEN)
    out = {
        "model": {**PAPER_CRNN, "classes": N_CLASSES, "seq_len": SEQ_LEN, "batch": BATCH,
                  "parameters": sum(p.numel() for p in paper_crnn(n_in).parameters())},
        "threads": torch.get_num_threads(), "steps_timed": steps, "warmup_steps": warmup,
        "plain_frames_per_second": [round(p["frames_per_second"], 1) for p in plain],
        "sedbench_frames_per_second": [round(o["frames_per_second"], 1) for o in ours],
        "train_loop_ratio": best_ours / best_plain,
        "flops_per_frame": per_frame,
        "achieved_flops_fp32": per_frame * best_ours,
        "matmul_flops_fp32": peak32,
        "flops_fraction_fp32": per_frame * best_ours / peak32,
        "bf16": bench_bf16(dm, steps, warmup, per_frame, best_ours, peak32),
    }
    if try_compile:
        log("torch.compile of the plain loop (compile time reported apart)")
        try:
            compiled = plain_loop(loader, n_in, steps, warmup, compile_net=True)
            out["compile_frames_per_second"] = round(compiled["frames_per_second"], 1)
            out["compile_speedup_over_eager_plain"] = compiled["frames_per_second"] / best_plain
            out["compile_warmup_seconds"] = round(compiled["warmup_seconds"], 1)
        except Exception as exc:  # inductor needs a C++ compiler; report, do not fail the bench
            out["compile_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return out


def bench_bf16(dm, steps: int, warmup: int, per_frame: float, fp32_fps: float, peak32: float,
               info: dict | None = None) -> dict:
    """bf16 autocast training and the bf16 matmul rate, only where the CPU computes bf16 natively: emulated
    bf16 takes minutes per step (``sedbench.hardware``), so elsewhere the figures are ``unsupported``."""
    from sedbench.hardware import cpu_info, describe

    info = info or cpu_info()
    if not info["bf16_native"]:
        log(f"bf16: not measured on this CPU: {describe(info)}")
        return {"status": "unsupported", "cpu_capability": info["capability"], "cpu_model": info["model"],
                "reason": describe(info)}
    log(f"bf16 autocast (trainer.precision=bf16-mixed) and the bf16 matmul rate ({info['bf16_via']})")
    fps = sedbench_loop(dm, steps, warmup, precision="bf16-mixed")["frames_per_second"]
    peak16 = matmul_rate("bfloat16")
    return {"status": "measured", "cpu_capability": info["capability"], "cpu_model": info["model"],
            "via": info["bf16_via"], "frames_per_second": round(fps, 1), "speedup_over_fp32": fps / fp32_fps,
            "achieved_flops": per_frame * fps, "matmul_flops": peak16,
            "flops_fraction_of_fp32_matmul": per_frame * fps / peak32,
            "flops_fraction_of_bf16_matmul": per_frame * fps / peak16}


# --------------------------------------------------------------------------- 3. metrics
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


def bench_score(resolution: float, hours: float = 2.0) -> dict:
    from sedbench.metrics.event import sed_eval_segment
    from sedbench.metrics.segment import segment_scores

    ref, est, classes = score_case(hours)
    t0 = time.perf_counter()
    slow = sed_eval_segment(ref, est, classes, resolution)
    sed_eval_wall = time.perf_counter() - t0
    fast_wall = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fast = segment_scores(ref, est, classes, resolution)
        fast_wall = min(fast_wall, time.perf_counter() - t0)
    identical = fast.overall == slow.overall and fast.class_wise == slow.class_wise
    return {"sed_eval_seconds": round(sed_eval_wall, 3), "sedbench_seconds": round(fast_wall, 4),
            "speedup": sed_eval_wall / fast_wall, "f1": round(fast.f1, 4), "er": round(fast.er, 4),
            "identical": identical}


def bench_events(hours: float = 2.0) -> dict:
    """Event-based scores of the 2-h case, each detection cut in three (raw frame outputs fragment)."""
    from sedbench.data.annotations import Event
    from sedbench.metrics.event import event_based

    ref, est, classes = score_case(hours)

    def thirds(e: Event) -> list[Event]:
        cuts = [round(e.onset + i * e.duration / 3, 3) for i in range(4)]
        return [Event(a, b, e.label) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]

    est = {f: [piece for e in evs for piece in thirds(e)] for f, evs in est.items()}
    t0 = time.perf_counter()
    slow = event_based(ref, est, classes, engine="sed_eval")
    sed_eval_wall = time.perf_counter() - t0
    fast_wall = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fast = event_based(ref, est, classes)
        fast_wall = min(fast_wall, time.perf_counter() - t0)
    identical = (fast.overall == slow.overall and fast.class_wise == slow.class_wise
                 and fast.file_counts == slow.file_counts)
    return {"reference_events": sum(map(len, ref.values())), "system_events": sum(map(len, est.values())),
            "sed_eval_seconds": round(sed_eval_wall, 3), "sedbench_seconds": round(fast_wall, 4),
            "event_metrics_speedup": sed_eval_wall / fast_wall, "f1": round(fast.f1, 4), "er": round(fast.er, 4),
            "identical": identical}


def psds_case(folder: Path, files: int = 2500, n_classes: int = 10, frames: int = 156, seconds: float = 10.0,
              seed: int = 0) -> tuple[Path, Path, Path]:
    """A DESED-sized case on disk: reference tsv, a folder of per-file score tables, a durations tsv."""
    import numpy as np

    from sedbench.data.annotations import Event, write_event_table
    from sedbench.metrics.psds import score_tables, write_score_tables

    rng = np.random.default_rng(seed)
    classes = [f"class{k}" for k in range(n_classes)]
    hop = seconds / frames
    rows, probs, names = [], [], []
    for f in range(files):
        name = f"clip{f:05d}"
        truth = np.zeros((frames, n_classes))
        for k in rng.choice(n_classes, size=int(rng.integers(1, 4)), replace=False):
            on = round(float(rng.uniform(0, seconds - 1)), 3)
            off = round(min(seconds, on + float(rng.uniform(0.3, 6))), 3)
            rows.append((f"{name}.wav", Event(on, off, classes[k])))
            truth[int(on / hop):int(np.ceil(off / hop)), k] = 1
        noise = np.stack([np.convolve(rng.normal(0, 1, frames), np.ones(9) / 3, "same") for _ in classes], 1)
        probs.append(np.round(1 / (1 + np.exp(-(4 * truth - 2 + noise))), 4))
        names.append(name)
    write_event_table(folder / "reference.tsv", rows)
    write_score_tables(folder / "scores", score_tables(probs, names, classes, hop))
    (folder / "durations.tsv").write_text("filename\tduration\n" + "".join(f"{n}.wav\t{seconds}\n" for n in names))
    return folder / "reference.tsv", folder / "scores", folder / "durations.tsv"


def bench_psds(work: Path, files: int = 2500) -> dict:
    """``sedbench score --scores`` against sed_scores_eval reading and scoring the same files (alternating)."""
    from sed_scores_eval import intersection_based, io, segment_based

    from sedbench.commands.score import score_probabilities
    from sedbench.metrics.psds import AUROC_SEGMENT, PSDS1, PSDS2

    ref, scores, durations = psds_case(work / "psds", files)

    def theirs() -> dict:
        tables, gt = io.read_sed_scores(scores), io.read_ground_truth_events(ref)
        lengths = io.read_audio_durations(durations)
        auroc = segment_based.auroc(tables, gt, lengths, segment_length=AUROC_SEGMENT)[0]
        return {"psds1": intersection_based.psds(tables, gt, lengths, **PSDS1)[0],
                "psds2": intersection_based.psds(tables, gt, lengths, **PSDS2)[0], "auroc_1sec": auroc["mean"]}

    walls: dict[str, list[float]] = {"sedbench": [], "sed_scores_eval": []}
    values = {}
    for _ in range(2):
        for name, fn in (("sed_scores_eval", theirs), ("sedbench", lambda: score_probabilities(ref, scores,
                                                                                                durations)[0])):
            t0 = time.perf_counter()
            values[name] = fn()
            walls[name].append(time.perf_counter() - t0)
    identical = all(float(values["sedbench"][k]) == float(values["sed_scores_eval"][k])
                    for k in ("psds1", "psds2", "auroc_1sec"))
    return {"files": files, "classes": 10, "frames_per_file": 156, "sedbench_seconds": [round(w, 2) for w in
                                                                                       walls["sedbench"]],
            "sed_scores_eval_seconds": [round(w, 2) for w in walls["sed_scores_eval"]],
            "psds_time_over_sed_scores_eval": min(walls["sedbench"]) / min(walls["sed_scores_eval"]),
            "psds1": float(values["sedbench"]["psds1"]), "psds2": float(values["sedbench"]["psds2"]),
            "auroc_1sec": float(values["sedbench"]["auroc_1sec"]), "identical": identical,
            "note": "sedbench computes PSDS with sed_scores_eval itself: the ratio is the cost of sedbench's "
                    "reading, naming and checks around it"}


# --------------------------------------------------------------------------- 4-5. data
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


# --------------------------------------------------------------------------- 6. sweep
def bench_sweep(root: Path, work: Path, fit_seconds: int) -> dict:
    """A 3-cell grid through ``sedbench train -m``, timed from outside (interpreter start included)."""
    import optuna

    storage = f"sqlite:///{work}/optuna.db"
    cmd = [sys.executable, "-m", "sedbench", "train", "-m", "data=folder", f"data.root={root}", "model.maps=16,24,32",
           f"trainer.max_time=00:00:00:{fit_seconds:02d}", "trainer.patience=1000", "sweep.name=bench",
           # what this figure has always measured: orchestration against training; the scores beyond the paper's
           # cost what metrics.json's detection_seconds says (items 9-10 time their implementations)
           "evaluation.psds=false", "evaluation.postprocess=false",
           f"sweep.storage={storage}", f"tracking.uri=sqlite:///{work}/mlflow.db",
           f"tracking.artifacts={work}/artifacts", f"features.cache_dir={work}/cache",
           f"hydra.sweep.dir={work}/sweep"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"bench sweep failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    trials = optuna.load_study(study_name="bench", storage=storage).trials
    fits = [float(t.user_attrs["fit_seconds"]) for t in trials if t.state.name == "COMPLETE"]
    return {"trials": len(fits), "wall_seconds": round(wall, 1), "sum_fit_seconds": round(sum(fits), 1),
            "sweep_wall_over_fit": wall / sum(fits)}


# --------------------------------------------------------------------------- 12-13. the demo grid, packed
def demo_sweep(name: str, data: Path, work: Path, extra: list[str]) -> dict:
    """``sedbench sweep demo`` on ``data`` under ``work``, timed from outside; its trials as recorded."""
    import optuna

    storage = f"sqlite:///{work}/optuna.db"
    cmd = [sys.executable, "-m", "sedbench", "sweep", "demo", f"sweep.name={name}", f"data.root={data}",
           f"sweep.storage={storage}", f"tracking.uri=sqlite:///{work}/mlflow.db",
           f"tracking.artifacts={work}/artifacts",
           f"features.cache_dir={work}/cache", f"hydra.sweep.dir={work}/{name}", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"bench sweep {name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    study = optuna.load_study(study_name=name, storage=storage)
    trials = [t for t in study.trials if t.state.name == "COMPLETE"]
    return {"wall_seconds": round(wall, 1), "trials": len(trials), "packing": study.user_attrs.get("packing"),
            "trials_per_hour": 3600 * len(trials) / wall, "storage": storage, "tracking": f"sqlite:///{work}/mlflow.db",
            "study": study, "truncated": sum(t.user_attrs.get("budget") == "truncated" for t in trials)}


def trial_split(trial) -> dict:
    """A sweep trial's wall time (Optuna's start to completion) by part, from its ``time/*`` figures; what they
    leave (the launcher handing the trial to its process, Hydra's job set-up, writing metrics.json) is ``other``."""
    wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
    parts = {k[len("time/"):]: float(v) for k, v in trial.user_attrs.items()
             if k.startswith("time/") and k not in ("time/wall", "time/outside_steps_share")}
    parts["other"] = max(0.0, wall - sum(parts.values()))
    return {"trial": trial.number, "cell": trial.user_attrs.get("cell"), "wall_seconds": round(wall, 2),
            "seconds": {k: round(v, 2) for k, v in parts.items()},
            "share": {k: round(v / wall, 4) for k, v in parts.items()},
            "overhead_share": 1.0 - parts.get("steps", 0.0) / wall}


def bench_packing(work: Path, epochs: int | None) -> dict:
    """Items 12-13 on the demo grid and the demo's data (generated here), with the demo's settings (its
    evaluation included): the split of the demo's largest CRNN trial (maps 32) run twice in one sweep process;
    then the grid as ``sweep.n_jobs=auto`` runs it, and as one process with every core, trials per hour of each."""
    from sedbench.commands.cli import main as cli

    data = work / "synth_demo"
    log("generating the demo's data (seed 0, 8 training minutes)")
    cli(["data", "generate", "synth", "--out", str(data), "--seed", "0", "--minutes-train", "8", "--quiet"])
    extra = [f"trainer.max_epochs={epochs}"] if epochs else []
    cores = os.cpu_count() or 1
    log("item 12: the demo's largest CRNN, twice in one sweep process (the first also computes the features)")
    crnn = demo_sweep("overhead", data, work, [*extra, "sweep.grid=[{model:[crnn],model.maps:[32],seed:[0,1]}]",
                                                 "sweep.n_jobs=1", "trainer.num_threads=1"])
    first, second = sorted((t for t in crnn["study"].trials if t.state.name == "COMPLETE"), key=lambda t: t.number)
    log(f"demo grid, sweep.n_jobs=auto{f' ({epochs} epochs)' if epochs else ''}")
    auto = demo_sweep("auto", data, work, extra)
    log(f"demo grid, one process with {cores} threads")
    one = demo_sweep("one", data, work, [*extra, "sweep.n_jobs=1", f"trainer.num_threads={cores}"])
    out = {"epochs": epochs or "the demo's (20)", "cores": cores}
    for key, run in (("auto", auto), ("one_process", one)):
        out[key] = {k: v for k, v in run.items() if k != "study"}
    out["packing_speedup"] = auto["trials_per_hour"] / one["trials_per_hour"]
    # item 12: the second trial of a process, as most trials of a sweep run (the process's imports and the feature
    # cache are paid once per worker: the first trial's split shows them); and the whole auto grid's trials
    out["largest_crnn_trial"] = trial_split(second)
    out["largest_crnn_first_trial"] = trial_split(first)
    out["overhead_share"] = out["largest_crnn_trial"]["overhead_share"]
    grid = [trial_split(t) for t in auto["study"].trials if t.state.name == "COMPLETE"]
    parts = {k: sum(g["seconds"].get(k, 0.0) for g in grid) for k in grid[0]["seconds"]} if grid else {}
    wall = sum(g["wall_seconds"] for g in grid)
    out["auto_grid_split"] = {"trial_seconds": round(wall, 1), "seconds": {k: round(v, 1) for k, v in parts.items()},
                              "share": {k: round(v / wall, 4) for k, v in parts.items()} if wall else {}}
    return out


def bench_pruning(name: str, storage: str, tracking: str, out_png: Path | None) -> dict:
    """Item 14: Hyperband (sedbench's ``sweep.pruner=hyperband``) replayed on a finished full grid's learning curves
    (``sedbench.pruning``) under the grid's own study name, and its spread over 20 other names (its brackets
    depend on the name); the median pruner beside it, for comparison."""
    from sedbench.pruning import curves_from_study, over_study_names, plot, replay

    curves = curves_from_study(name, storage, tracking)
    results = [replay(curves, pruner, study_name=name) for pruner in ("hyperband", "median")]
    if out_png is not None:
        plot(results, out_png)
    head = results[0]
    return {"from": {"study": name, "storage": storage, "tracking": tracking}, "pruner": "hyperband",
            "compute_fraction": head["compute_fraction"], "f1_gap_points": head["f1_gap_points"],
            "hyperband_over_study_names": over_study_names(curves, "hyperband"),
            "replays": results, "figure": str(out_png) if out_png else None}


# --------------------------------------------------------------------------- 8. memory
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
    return {"audio_minutes": round(audio_min, 1), "generate_seconds": round(gen_wall, 1),
            "train_wall_seconds": round(time.perf_counter() - t0, 1), "train_peak_rss_gb": int(peak[0]) / 2**20}


# --------------------------------------------------------------------------- all
PARTS = ("events", "psds", "small_model", "packing", "pruning")  # what --parts can measure alone


def measure_packing(args, result: dict, work: Path) -> None:
    """Items 12-14 into ``result``: the demo grid packed (``small_model.overhead_share``,
    ``sweep.packing_speedup``), and pruning replayed on ``--pruning-from`` or else on that auto run."""
    packing = bench_packing(work, args.packing_epochs)
    result["packing"] = packing
    result.setdefault("small_model", {})["overhead_share"] = packing["overhead_share"]
    result.setdefault("sweep", {})["packing_speedup"] = packing["packing_speedup"]
    if not args.pruning_from:
        auto = packing["auto"]
        result["pruning"] = bench_pruning("auto", auto["storage"], auto["tracking"], pruning_figure(args))


def pruning_figure(args) -> Path:
    return args.out.with_name(args.out.stem + "_pruning.png")


def run_parts(args, result: dict) -> dict:
    """Only the parts in ``--parts`` (event-based metrics, PSDS), merged into an earlier result."""
    from sedbench.hardware import cpu_info

    info = cpu_info()
    result.setdefault("machine", {}).update(cpu=info["model"], cpu_capability=info["capability"],
                                            bf16_native=info["bf16_native"], cpus=os.cpu_count())
    parts = {p.strip() for p in args.parts.split(",")}
    if "events" in parts:
        log("event-based metrics: sed_eval, then sedbench")
        result["event_metrics"] = bench_events()
    if "small_model" in parts:
        from sedbench.commands.cli import main as cli
        from sedbench.data.dataset import read_folder

        with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
            log(f"generating a synth set with {args.minutes_train:g} training minutes")
            cli(["data", "generate", "synth", "--out", f"{tmp}/synth", "--minutes-train", str(args.minutes_train),
                 "--quiet"])
            result["small_model"] = bench_small_model(read_folder(Path(tmp) / "synth"), Path(tmp) / "cache")
    if "psds" in parts:
        with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
            log(f"PSDS on {args.psds_files:,} clips: sed_scores_eval and sedbench score, twice each")
            result["psds"] = bench_psds(Path(tmp), args.psds_files)
    if "packing" in parts:
        with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
            measure_packing(args, result, Path(tmp))
    if args.pruning_from and ("pruning" in parts or "packing" in parts):
        log(f"pruning: replaying sweep {args.pruning_from}'s learning curves")
        result["pruning"] = bench_pruning(args.pruning_from, args.pruning_storage, tracking_uri(args.pruning_tracking),
                                          pruning_figure(args))
    result["goals"] = goals(result)
    return result


def run(args) -> dict:
    import torch

    from sedbench.commands.cli import main as cli
    from sedbench.data.dataset import read_folder
    from sedbench.hardware import cpu_info, describe

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    info = cpu_info()
    log(f"CPU: {describe(info)}")
    result: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                                "cpus": os.cpu_count(), "platform": platform.platform(), "cpu": info["model"],
                                "cpu_capability": info["capability"], "bf16_native": info["bf16_native"]}}
    with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
        work = Path(tmp)
        root = work / "synth"
        log(f"generating a synth set with {args.minutes_train:g} training minutes")
        cli(["data", "generate", "synth", "--out", str(root), "--minutes-train", str(args.minutes_train), "--quiet"])
        ds = read_folder(root)
        log("feature cache: DataModule set-up cold, then warm")
        cache = bench_cache(ds, work / "cache")
        dm = cache.pop("dm")
        result["cache"] = cache
        log("data pipeline: one epoch of the training loader")
        result["pipeline"] = bench_pipeline(dm)
        result["training"] = bench_training(dm, args.steps, args.warmup, args.rounds, not args.no_compile)
        result["pipeline"]["pipeline_over_training"] = (result["pipeline"]["frames_per_second"]
                                                        / max(result["training"]["sedbench_frames_per_second"]))
        result["small_model"] = bench_small_model(ds, work / "cache")
        for res in (0.02, 1.0):
            log(f"metrics at {res} s: sed_eval, then sedbench.metrics")
            result[f"metrics_{res}s"] = bench_score(res)
        log(f"sweep orchestration: 3 trials of {args.sweep_fit_seconds} s")
        result["sweep"] = bench_sweep(root, work, args.sweep_fit_seconds)
        log("CLI start-up")
        help_wall = _best_wall([sys.executable, "-m", "sedbench", "--help"])
        python_wall = _best_wall([sys.executable, "-c", "pass"])
        result["cli"] = {"help_seconds": round(help_wall, 3), "python_seconds": round(python_wall, 3),
                         "cli_help_extra_seconds": help_wall - python_wall, "ratio": help_wall / python_wall}
        log("event-based metrics: sed_eval, then sedbench")
        result["event_metrics"] = bench_events()
        log(f"PSDS on {args.psds_files:,} clips: sed_scores_eval and sedbench score, twice each")
        result["psds"] = bench_psds(work, args.psds_files)
        measure_packing(args, result, work)
        if args.memory_data is not None:
            log(f"memory: training on {args.memory_data}")
            result["memory"] = bench_memory(work, 0, args.memory_train_seconds, args.memory_data)
        elif args.memory_minutes > 0:
            log(f"memory: generating {args.memory_minutes:g} minutes of synth and training on it")
            result["memory"] = bench_memory(work, args.memory_minutes, args.memory_train_seconds)
    if args.pruning_from:
        log(f"pruning: replaying sweep {args.pruning_from}'s learning curves")
        result["pruning"] = bench_pruning(args.pruning_from, args.pruning_storage, tracking_uri(args.pruning_tracking),
                                          pruning_figure(args))
    result["goals"] = goals(result)
    return result


def goals(result: dict) -> dict:
    sources = {  # figure: where it is in the result (parts not measured are left out)
        "train_loop_ratio": ("training", "train_loop_ratio"),
        "flops_fraction_fp32": ("training", "flops_fraction_fp32"),
        "metrics_speedup_0.02s": ("metrics_0.02s", "speedup"),
        "pipeline_over_training": ("pipeline", "pipeline_over_training"),
        "cache_warm_over_cold": ("cache", "cache_warm_over_cold"),
        "sweep_wall_over_fit": ("sweep", "sweep_wall_over_fit"),
        "cli_help_extra_seconds": ("cli", "cli_help_extra_seconds"),
        "train_peak_rss_gb": ("memory", "train_peak_rss_gb"),
        "event_metrics_speedup": ("event_metrics", "event_metrics_speedup"),
        "psds_time_over_sed_scores_eval": ("psds", "psds_time_over_sed_scores_eval"),
        "small_model_loop_ratio": ("small_model", "loop_ratio"),
        "small_model_overhead_share": ("small_model", "overhead_share"),
        "sweep_packing_speedup": ("sweep", "packing_speedup"),
        "pruning_compute_fraction": ("pruning", "compute_fraction"),
        "pruning_f1_gap_points": ("pruning", "f1_gap_points"),
    }
    values = {key: result[part][name] for key, (part, name) in sources.items()
              if result.get(part, {}).get(name) is not None}
    # every figure carries the CPU it was measured on: figures from different machines are not comparable
    machine = result.get("machine", {})
    cpu = {"cpu_capability": machine.get("cpu_capability"), "cpu_model": machine.get("cpu")}
    out = {}
    for key, value in values.items():
        goal, kind = GOALS[key]
        out[key] = {"value": value, "goal": goal, "kind": kind,
                    "met": value >= goal if kind == "min" else value <= goal, **cpu}
    for key, parts in (("metrics_identical", ("metrics_0.02s", "metrics_1.0s")),
                       ("event_metrics_identical", ("event_metrics",)), ("psds_identical", ("psds",))):
        if all(p in result for p in parts):
            identical = all(result[p]["identical"] for p in parts)
            out[key] = {"value": identical, "goal": True, "kind": "equal", "met": identical, **cpu}
    return out


LABELS = {
    "train_loop_ratio": "1. training: sedbench loop / plain PyTorch loop (frames/s)",
    "flops_fraction_fp32": "2. training FLOP/s / fp32 matmul FLOP/s",
    "metrics_speedup_0.02s": "3. metrics: sed_eval time / sedbench time, 0.02 s",
    "metrics_identical": "3. metrics: values identical to sed_eval (0.02 s, 1 s)",
    "pipeline_over_training": "4. DataModule frames/s / training frames/s",
    "cache_warm_over_cold": "5. feature cache: warm set-up / cold set-up",
    "sweep_wall_over_fit": "6. sweep wall / sum of trial fit times",
    "cli_help_extra_seconds": "7. `sedbench --help` - `python -c pass` (s)",
    "train_peak_rss_gb": "8. peak RSS training on paper-size synth (GB)",
    "event_metrics_speedup": "9. event-based: sed_eval time / sedbench time",
    "event_metrics_identical": "9. event-based: values identical to sed_eval",
    "psds_time_over_sed_scores_eval": "10. PSDS, DESED-sized: sedbench / sed_scores_eval time",
    "psds_identical": "10. PSDS: values identical to sed_scores_eval",
    "small_model_loop_ratio": "11. demo CRNN (59k): sedbench loop / plain loop",
    "small_model_overhead_share": "12. demo CRNN trial: share of wall outside train steps",
    "sweep_packing_speedup": "13. demo grid trials/h: n_jobs=auto / 1 process",
    "pruning_compute_fraction": "14. pruned sweep fit time / full grid's (Hyperband)",
    "pruning_f1_gap_points": "14. full grid best test F1 - pruned sweep's (points)",
}


def table(result: dict) -> str:
    m = result.get("machine", {})
    lines = [f"measured on: {m.get('cpu', '?')}, {m.get('cpus', '?')} cores, torch CPU capability "
             f"{m.get('cpu_capability', '?')}, torch {m.get('torch', '?')}", "",
             f"{'figure':<58}{'value':>10}{'goal':>10}  met", "-" * 84]
    for key, label in LABELS.items():
        g = result["goals"].get(key)
        if g is None:
            lines.append(f"{label:<58}{'-':>10}{'':>10}  not measured")
            continue
        sign = ">=" if g["kind"] == "min" else "<=" if g["kind"] == "max" else "=="
        value = g["value"] if isinstance(g["value"], bool) else f"{g['value']:.3g}"
        lines.append(f"{label:<58}{value!s:>10}{sign + ' ' + str(g['goal']):>10}  {'yes' if g['met'] else 'NO'}")
    t = result.get("training")
    if t is None:
        return "\n".join(lines)
    lines += ["", f"training: {t['flops_per_frame'] / 1e6:.0f} MFLOP per frame; "
                  f"fp32 {t['achieved_flops_fp32'] / 1e9:.0f} "
              f"GFLOP/s of {t['matmul_flops_fp32'] / 1e9:.0f} (matmul)"]
    b = t["bf16"]
    if b["status"] == "measured":
        lines.append(f"bf16-mixed ({b['via']}): {b['speedup_over_fp32']:.2f}x fp32 speed "
                     f"({b['achieved_flops'] / 1e9:.0f} "
                     f"GFLOP/s, bf16 matmul {b['matmul_flops'] / 1e9:.0f})")
    else:
        lines.append(f"bf16-mixed: unsupported here, not measured ({b['reason']})")
    if "compile_speedup_over_eager_plain" in t:
        lines.append(f"torch.compile: {t['compile_speedup_over_eager_plain']:.2f}x the eager plain loop "
                     f"(compiling took {t['compile_warmup_seconds']:.0f} s)")
    elif "compile_error" in t:
        lines.append(f"torch.compile: {t['compile_error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/bench.json"))
    ap.add_argument("--minutes-train", type=float, default=10.0, help="synth training minutes for items 1-6")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--steps", type=int, default=6, help="timed training steps per loop")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps before them")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of plain / sedbench loops")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    ap.add_argument("--sweep-fit-seconds", type=int, default=30, help="fit time of each of the 3 sweep trials")
    ap.add_argument("--memory-minutes", type=float, default=566.0, help="synth minutes for item 8 (0: skip)")
    ap.add_argument("--memory-data", type=Path, help="an existing synth set for item 8 (skips generating one)")
    ap.add_argument("--memory-train-seconds", type=int, default=60, help="training time of the memory run")
    ap.add_argument("--psds-files", type=int, default=2500, help="ten-second clips of the PSDS case (item 10)")
    ap.add_argument("--packing-epochs", type=int, default=None,
                    help="epoch budget of the demo grid in items 12-14 (default: the demo's, 20)")
    ap.add_argument("--pruning-from", metavar="STUDY", help="replay this finished sweep for item 14 (e.g. demo, "
                                                             "claims) instead of item 13's auto run")
    ap.add_argument("--pruning-storage", default=DEFAULT_STORAGE, help="Optuna storage of --pruning-from")
    ap.add_argument("--pruning-tracking", default=None, help="MLflow store of --pruning-from (default: sedbench's)")
    ap.add_argument("--parts", help=f"measure only these ({', '.join(PARTS)}, comma separated) and merge them into "
                                    "--out")
    args = ap.parse_args(argv)
    if args.parts:
        earlier = json.loads(args.out.read_text()) if args.out.is_file() else {}
        result = run_parts(args, earlier)
    else:
        result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(table(result))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
