"""Items 1, 2 and 11: training throughput against a plain PyTorch loop, achieved FLOP/s (fp32, bf16, compile)."""

from __future__ import annotations

import time
from pathlib import Path

from sedbench.bench.common import BATCH, DEMO_CRNN, DEMO_SEQ_LEN, N_CLASSES, PAPER_CRNN, SEQ_LEN, log


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
                  frames_per_step: int = BATCH * SEQ_LEN, accelerator: str = "cpu") -> dict:
    """sedbench's loop: SEDModule under a Lightning Trainer configured as ``sedbench train`` does
    (deterministic, the masked loss, the NaN guard, epoch metrics), without validation or logging; on
    ``accelerator`` (``gpu``: the time of each step includes waiting for the device at its end)."""
    import pytorch_lightning as pl

    from sedbench.training.module import SEDModule

    marks: dict[str, float] = {}

    def wait() -> None:  # the device's queued work done: a step's time, not its launch's
        if accelerator != "cpu":
            import torch

            torch.cuda.synchronize()

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == warmup and "first" not in marks:
                wait()
                marks["first"] = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == warmup + steps:
                wait()
            marks["last"] = time.perf_counter()

    from sedbench.training.device import check_every

    module = SEDModule(paper_crnn(dm.n_features, arch), check_every=check_every(accelerator))
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=warmup + steps,
                         deterministic=True, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Clock()])
    import warnings

    with warnings.catch_warnings():  # no validation here on purpose (SEDModule defines validation_step)
        warnings.filterwarnings("ignore", message="You defined a `validation_step` but have no `val_dataloader`")
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
