"""Items 6 and 12-14: sweep orchestration, a demo trial's overheads, packing, pruning replayed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sedbench.bench.common import log


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
