"""``python -m sedbench.bench``: every item, or ``--parts``, into ``results/bench.json``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from sedbench.bench.common import best_wall, log
from sedbench.bench.data import bench_cache, bench_memory, bench_meter, bench_pipeline
from sedbench.bench.fused import bench_fused_trials
from sedbench.bench.goals import goals, table
from sedbench.bench.scores import bench_events, bench_psds, bench_psds_paper, bench_score
from sedbench.bench.sweeps import bench_packing, bench_pruning, bench_sweep
from sedbench.bench.training import bench_small_model, bench_training
from sedbench.tracking import DEFAULT_STORAGE, tracking_uri

# what --parts can measure alone
PARTS = ("events", "psds", "memory", "psds_paper", "small_model", "packing", "pruning", "gpu", "fused")


def measure_packing(args, result: dict, work: Path) -> None:
    """Items 12-14 into ``result``: the demo grid packed (``small_model.overhead_share``,
    ``sweep.packing_speedup``), and pruning replayed on ``--pruning-from`` or else on that auto run."""
    packing = bench_packing(work, args.packing_epochs)
    result["packing"] = packing
    result.setdefault("small_model", {})["overhead_share"] = packing["overhead_share"]
    result.setdefault("sweep", {})["packing_speedup"] = packing["packing_speedup"]
    log("item 23: the energy and memory records' cost to a run")
    result["meter"] = bench_meter(packing["largest_crnn_trial"]["wall_seconds"])
    if not args.pruning_from:
        auto = packing["auto"]
        result["pruning"] = bench_pruning("auto", auto["storage"], auto["tracking"], pruning_figure(args))


def pruning_figure(args) -> Path:
    return args.out.with_name(args.out.stem + "_pruning.png")


def run_parts(args, result: dict) -> dict:
    """Only the parts in ``--parts`` (event-based metrics, PSDS), merged into an earlier result."""
    from sedbench.hardware import cpu_info

    info = cpu_info()
    import torch

    result.setdefault("machine", {}).update(cpu=info["model"], cpu_capability=info["capability"],
                                            bf16_native=info["bf16_native"], cpus=os.cpu_count(),
                                            torch=torch.__version__, **gpu_machine())
    parts = {p.strip() for p in args.parts.split(",")}
    if "gpu" in parts:
        measure_gpu(result)
    if "fused" in parts:
        with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
            log(f"generating a synth set with {args.minutes_train:g} training minutes")
            from sedbench.commands.cli import main as cli

            cli(["data", "generate", "synth", "--out", f"{tmp}/synth", "--minutes-train", str(args.minutes_train),
                 "--quiet"])
            result["fused"] = bench_fused_trials(Path(tmp) / "synth", Path(tmp) / "fused", seeds=args.fused_seeds,
                                                 steps=args.fused_steps)
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
    if {"memory", "psds_paper"} & parts and args.memory_data is None:
        raise SystemExit("--parts memory and psds_paper need --memory-data DIR (a paper-size synth set: "
                         "sedbench data generate synth --paper-size --out DIR)")
    if "memory" in parts:
        with tempfile.TemporaryDirectory(prefix="sedbench-bench-") as tmp:
            log(f"memory: training on {args.memory_data}")
            result["memory"] = bench_memory(Path(tmp), 0, args.memory_train_seconds, args.memory_data)
    if "psds_paper" in parts:
        result["psds_paper"] = bench_psds_paper(args.memory_data, args.psds_paper_files)
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
                                "cpu_capability": info["capability"], "bf16_native": info["bf16_native"],
                                **gpu_machine()}}
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
        help_wall = best_wall([sys.executable, "-m", "sedbench", "--help"])
        python_wall = best_wall([sys.executable, "-c", "pass"])
        result["cli"] = {"help_seconds": round(help_wall, 3), "python_seconds": round(python_wall, 3),
                         "cli_help_extra_seconds": help_wall - python_wall, "ratio": help_wall / python_wall}
        log("event-based metrics: sed_eval, then sedbench")
        result["event_metrics"] = bench_events()
        log(f"PSDS on {args.psds_files:,} clips: sed_scores_eval and sedbench score, twice each")
        result["psds"] = bench_psds(work, args.psds_files)
        result["fused"] = bench_fused_trials(root, work / "fused", seeds=args.fused_seeds, steps=args.fused_steps)
        measure_packing(args, result, work)
        if args.memory_data is not None:
            log(f"memory: training on {args.memory_data}")
            result["memory"] = bench_memory(work, 0, args.memory_train_seconds, args.memory_data)
        elif args.memory_minutes > 0:
            log(f"memory: generating {args.memory_minutes:g} minutes of synth and training on it")
            result["memory"] = bench_memory(work, args.memory_minutes, args.memory_train_seconds)
        if "memory" in result:
            result["psds_paper"] = bench_psds_paper(Path(result["memory"]["root"]), args.psds_paper_files)
    if args.pruning_from:
        log(f"pruning: replaying sweep {args.pruning_from}'s learning curves")
        result["pruning"] = bench_pruning(args.pruning_from, args.pruning_storage, tracking_uri(args.pruning_tracking),
                                          pruning_figure(args))
    measure_gpu(result)
    result["goals"] = goals(result)
    return result


def gpu_machine() -> dict:
    """The CUDA side of the machine for bench.json: one line, and the devices, CUDA, cuDNN and driver."""
    from sedbench.hardware import describe_gpu, gpu_info

    info = gpu_info()
    return {"gpu": describe_gpu(info), "cuda": {k: info[k] for k in ("available", "cuda", "cudnn", "driver", "mps",
                                                                     "devices")}}


def measure_gpu(result: dict) -> None:
    """Items 15-17 and 20-22 where CUDA is present (sedbench.bench.gpu, the checks of ``make gpu-check``): the paper
    CRNN's frames/s on the GPU against the CPU, the demo grid packed on the GPU against one trial at a time, two
    identical GPU runs compared metric by metric, seeds fused against one at a time, and the paper CRNN at batch 64
    against 8. Elsewhere one line says they were not measured."""
    import torch

    if not torch.cuda.is_available():
        log("GPU items 15-17 and 20-22: no CUDA device here, not measured")
        return
    from sedbench.bench.gpu import run_checks

    checks = run_checks("cuda", quick=False, items=("determinism", "frames", "packing", "fused"))
    result["gpu"] = {"frames_speedup": checks["frames"].get("frames_speedup"),
                     "packing_speedup": checks["packing"].get("packing_speedup"), "checks": checks}
    result["gpu_fused"] = {k: checks["fused"].get(k) for k in ("ratio_5", "ratio_20", "batch_64_over_8")
                           if checks["fused"].get(k) is not None}
    if "identical" in checks["determinism"]:
        result["gpu_determinism"] = {"identical": checks["determinism"]["identical"],
                                     "compared": checks["determinism"]["compared"],
                                     "differing": checks["determinism"]["differing"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="make bench: every figure a ratio against a baseline measured in "
                                             "the same run")
    ap.add_argument("--out", type=Path, default=Path("results/bench.json"))
    ap.add_argument("--minutes-train", type=float, default=10.0, help="synth training minutes for items 1-6")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--steps", type=int, default=6, help="timed training steps per loop")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps before them")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of plain / sedbench loops")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    ap.add_argument("--fused-steps", type=int, default=300,
                    help="optimizer steps of each of item 19's trials (its seeds fused, then solo)")
    ap.add_argument("--fused-seeds", type=int, default=5, help="seeds of item 19 (the goal is for 5)")
    ap.add_argument("--sweep-fit-seconds", type=int, default=30, help="fit time of each of the 3 sweep trials")
    ap.add_argument("--memory-minutes", type=float, default=566.0, help="synth minutes for item 8 (0: skip)")
    ap.add_argument("--memory-data", type=Path, help="an existing synth set for item 8 (skips generating one)")
    ap.add_argument("--memory-train-seconds", type=int, default=60, help="training time of the memory run")
    ap.add_argument("--psds-files", type=int, default=2500, help="ten-second clips of the PSDS case (item 10)")
    ap.add_argument("--psds-paper-files", type=int, default=2,
                    help="files of the paper-size test split whose first minute sed_scores_eval scores (item 18)")
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
