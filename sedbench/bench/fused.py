"""Seeds trained together (sedbench.training.fused) against one at a time: bench item 19 on the CPU, items 20-22
(and ``make gpu-check``'s item 7) on CUDA.

* **Item 19, CPU:** 5 seeds of the claims study's CRNN (sweeps/claims.yaml: 16 maps, pooling (5,4,2), 128-frame
  sequences, batch 8, output biases at the priors, one thread) as whole trials at the same step budget: one group
  (``train_group``) against the 5 solo runs (``train``) one after another; trials per hour of each, and the same
  ratio for their training steps alone (what the fusing changes; testing and recording stay per member).
* **Items 20-21, CUDA:** the same CRNN's training step with K members fused (K = 5, 20) against one member alone:
  at a fixed step budget, trials per hour scale as K x solo step time / fused step time. Before timing, each
  member's outputs are checked against its solo network's on the device, its dropout drawn from its own state of
  the device's generator.
* **Item 22, CUDA:** the paper CRNN's training frames/s at batch 64 against batch 8.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sedbench.bench.common import N_CLASSES, log

# sweeps/claims.yaml's primary CRNN
CLAIMS_CRNN = {"maps": 16, "pool": [5, 4, 2], "rnn_layers": 1, "fnn_layers": 0, "kernel": [5, 5],
               "output_dropout": False}
CLAIMS_SEQ_LEN, CLAIMS_BATCH = 128, 8


def claims_overrides(data: Path, work: Path, steps: int) -> list[str]:
    """The claims study's CRNN on ``data`` for ``steps`` optimizer steps (no early stopping, no clock), one
    thread, recorded under ``work``."""
    return ["data=folder", f"data.root={data}", "model=crnn", "model.maps=16", "model.output_bias=prior",
            "model.output_dropout=false", f"data.seq_len={CLAIMS_SEQ_LEN}", f"data.batch_size={CLAIMS_BATCH}",
            f"trainer.max_steps={steps}", "trainer.max_epochs=100000", "trainer.patience=100000",
            "trainer.max_time=null", "trainer.num_threads=1", "evaluation.psds=report",
            f"tracking.uri=sqlite:///{work}/mlflow.db", f"tracking.artifacts={work}/artifacts",
            f"features.cache_dir={work}/cache"]


def bench_fused_trials(data: Path, work: Path, seeds: int = 5, steps: int = 300) -> dict:
    """Item 19: ``seeds`` trials of the claims CRNN trained together, then one after another (after an untimed
    warm-up trial), in this process on one thread."""
    import torch

    from sedbench.commands.launch import compose
    from sedbench.console import trial_output
    from sedbench.training.fused import train_group
    from sedbench.training.train import train

    threads = torch.get_num_threads()
    base = claims_overrides(data, work, steps)
    logs = work / "logs"  # what the trials print (summaries, epoch lines) goes to logs/trial.log, not the bench's
    try:
        with trial_output(logs):
            train(compose([*base, "trainer.max_steps=null", "trainer.max_epochs=1", f"+run_dir={work}/warm-up"]))
        log(f"fused: {seeds} seeds of the claims CRNN, {steps} steps each, trained together")
        t0 = time.perf_counter()
        with trial_output(logs):
            train_group(compose([*base, f"+run_dir={work}/fused"]), seeds=list(range(seeds)))
        fused = time.perf_counter() - t0
        log(f"fused: the same {seeds} seeds one after another")
        t0 = time.perf_counter()
        with trial_output(logs):
            for seed in range(seeds):
                train(compose([*base, f"seed={seed}", f"+run_dir={work}/solo{seed}"]))
        solo = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    member = [json.loads((work / "fused" / f"seed{s}" / "metrics.json").read_text()) for s in range(seeds)]
    alone = [json.loads((work / f"solo{s}" / "metrics.json").read_text()) for s in range(seeds)]
    fused_steps, solo_steps = sum(m["time/steps"] for m in member), sum(m["time/steps"] for m in alone)
    return {"seeds": seeds, "steps": steps, "model": {**CLAIMS_CRNN, "seq_len": CLAIMS_SEQ_LEN,
                                                      "batch": CLAIMS_BATCH, "parameters": member[0]["n_params"]},
            "threads": 1, "fused_seconds": round(fused, 1), "solo_seconds": round(solo, 1),
            "trials_per_hour_fused": round(seeds * 3600 / fused, 1),
            "trials_per_hour_solo": round(seeds * 3600 / solo, 1),
            "trials_per_hour_ratio": round(solo / fused, 3), "step_seconds_fused": round(fused_steps, 2),
            "step_seconds_solo": round(solo_steps, 2), "step_ratio": round(solo_steps / fused_steps, 3),
            "same_steps": all(m["steps"] == a["steps"] == steps for m, a in zip(member, alone, strict=True))}


def members_on(device: str, k: int, n_in: int = 40):
    """``k`` claims CRNNs built under seeds 0..k-1 (as solo runs build them) and fused on ``device``, each member's
    dropout drawn from its own generator state (the CPU's, or the device's); the solo networks and their states."""
    import torch

    from sedbench.models.crnn import CRNN
    from sedbench.models.fused import FusedCRNN, MemberRNG

    nets, states = [], []
    for seed in range(k):
        torch.manual_seed(seed)  # seeds the device's generators too, as seed_everything does
        nets.append(CRNN(n_in, N_CLASSES, **CLAIMS_CRNN))
        states.append(torch.cuda.get_rng_state(device) if device.startswith("cuda") else torch.get_rng_state())
    rng = MemberRNG(cuda_states=[s.clone() for s in states], device=device) if device.startswith("cuda") else \
        MemberRNG(states)
    return FusedCRNN(nets, rng).to(device), nets, states


def check_members(device: str, k: int = 3, n_in: int = 40) -> dict:
    """Each member's training-mode outputs (dropout on) against its solo network's on ``device``: their largest
    difference relative to the outputs' scale (float32 rounding: about 1e-6; a member drawing another's dropout
    masks: about 1)."""
    import torch

    fused, nets, states = members_on(device, k, n_in)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(CLAIMS_BATCH, k, CLAIMS_SEQ_LEN, n_in, generator=g).to(device)
    fused.train()
    with torch.no_grad():
        out = fused(x)
        worst = 0.0
        for i, net in enumerate(nets):
            if device.startswith("cuda"):
                torch.cuda.set_rng_state(states[i], device)
            else:
                torch.set_rng_state(states[i])
            solo = net.to(device).train()(x[:, i])
            worst = max(worst, float((out[i] - solo).abs().max() / solo.abs().max().clamp_min(1.0)))
    return {"members": k, "max_relative_difference": worst, "pass": worst <= 1e-4}


def step_time(device: str, k: int | None, steps: int, warmup: int, n_in: int = 40) -> float:
    """Seconds per training step (forward, loss, backward, Adam) of ``k`` fused members, or of one solo network
    (``k`` None), each member on its own batch of the claims CRNN's size, on ``device``."""
    import torch
    from torch.nn import functional as F

    members = k or 1
    if k is None:
        torch.manual_seed(0)
        from sedbench.models.crnn import CRNN

        net = CRNN(n_in, N_CLASSES, **CLAIMS_CRNN).to(device)
    else:
        net = members_on(device, k, n_in)[0]
    net.train()
    opt = torch.optim.Adam(net.parameters())
    g = torch.Generator().manual_seed(2)
    shape = (CLAIMS_BATCH, members, CLAIMS_SEQ_LEN, n_in) if k else (CLAIMS_BATCH, CLAIMS_SEQ_LEN, n_in)
    x = torch.randn(*shape, generator=g).to(device)
    y_shape = (members, CLAIMS_BATCH, CLAIMS_SEQ_LEN, N_CLASSES) if k else (CLAIMS_BATCH, CLAIMS_SEQ_LEN, N_CLASSES)
    y = (torch.rand(*y_shape, generator=g) > 0.8).float().to(device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = net(x)
        loss = F.binary_cross_entropy_with_logits(out, y, reduction="none").mean(dim=(-1, -2, -3)).sum() if k \
            else F.binary_cross_entropy_with_logits(out, y)
        loss.backward()
        opt.step()
    sync()
    return (time.perf_counter() - t0) / steps


def fused_step_ratios(device: str, sizes=(5, 20), steps: int = 50, warmup: int = 10) -> dict:
    """Items 20-21: trials per hour at a fixed step budget, K members fused against one at a time:
    K x solo step / fused step, for each K of ``sizes``."""
    solo = step_time(device, None, steps, warmup)
    out = {"solo_step_ms": round(solo * 1e3, 3)}
    for k in sizes:
        fused = step_time(device, k, steps, warmup)
        out[f"fused_{k}_step_ms"] = round(fused * 1e3, 3)
        out[f"ratio_{k}"] = round(k * solo / fused, 2)
    return out


def paper_batch_frames(data: Path, work: Path, accelerator: str, steps: int, warmup: int) -> dict:
    """Item 22: the paper CRNN's training frames/s through sedbench's loop at batch 64 against batch 8."""
    from sedbench.bench.common import SEQ_LEN
    from sedbench.bench.training import sedbench_loop
    from sedbench.data.datamodule import SEDDataModule
    from sedbench.data.dataset import read_folder
    from sedbench.data.features import FeatureParams

    out = {}
    for batch in (8, 64):
        dm = SEDDataModule(read_folder(data), FeatureParams(), seq_len=SEQ_LEN, batch_size=batch,
                           cache_dir=work / "cache", progress=False)
        dm.setup("fit")
        run = sedbench_loop(dm, steps, warmup, accelerator=accelerator, frames_per_step=batch * SEQ_LEN)
        out[f"batch_{batch}_frames_per_second"] = round(run["frames_per_second"])
    out["batch_64_over_8"] = round(out["batch_64_frames_per_second"] / out["batch_8_frames_per_second"], 2)
    return out


def check_fused(device: str, data: Path, work: Path, quick: bool) -> dict:
    """``make gpu-check`` item 7: members equal to their solo networks on the device (pass or fail), then the
    step ratios for 5 and 20 members and the paper CRNN at batch 64 against 8 (figures; their goals are make
    bench's items 20-22)."""
    exact = check_members(device)
    sizes = (2, 3) if quick else (5, 20)
    ratios = fused_step_ratios(device, sizes, steps=3 if quick else 50, warmup=1 if quick else 10)
    batches = paper_batch_frames(data, work, "cpu" if device == "cpu" else "gpu", 2 if quick else 100,
                                 1 if quick else 10)
    figure = (f"members = solo: max rel. diff {exact['max_relative_difference']:.1e}; "
              + ", ".join(f"{k} fused {ratios[f'ratio_{k}']:.1f}x" for k in sizes)
              + f"; paper CRNN batch 64 / 8: {batches['batch_64_over_8']:.2f}x frames/s")
    return {"pass": exact["pass"], "exactness": exact, **ratios, **batches, "figure": figure}
