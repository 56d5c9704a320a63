"""``make gpu-check`` and ``make bench``'s GPU items (15-17): the GPU path checked on this machine's CUDA device.

One script, at most 8 minutes on one GPU, that checks what sedbench promises on CUDA and prints one table:

1. mixed precision: the paper CRNN and the attention CRNN (its own log-mel front end) give finite outputs and
   gradients on silence, zero padding and a loud tone under float16 and bfloat16 autocast, their RNNs in float32;
2. determinism: two identical ``sedbench train trainer=gpu`` runs give identical metrics, metric by metric;
3. a run's record names the GPU, CUDA, cuDNN and driver, and its data loaders' workers and pinned memory;
4. ``sedbench evaluate`` re-scores that run on CUDA (the run's accelerator) and gets its recorded test F1_frm;
5. training speed: the paper CRNN's frames/s on the GPU against the same run's CPU figure (bench item 15);
6. packing: a demo grid's trials per hour at N trials per GPU (``sweep.n_jobs=auto``) against one at a time
   (bench item 16);
7. seeds trained together (:mod:`.fused`): each member's outputs equal its solo network's on the GPU (its dropout
   from its own state of the device's generator), then trials per hour of 5 and 20 fused seeds of the claims
   CRNN against one at a time, and the paper CRNN's frames/s at batch 64 against 8 (bench items 20-22).

On a machine without CUDA it says so in one line and exits 0. ``--device cpu --quick`` runs the same checks on
the CPU at toy sizes: a test of the script itself (tests/test_gpu_path.py, slow tier), not of a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sedbench.bench.common import BATCH, N_CLASSES, SEQ_LEN, log
from sedbench.bench.fused import check_fused

# metrics.json entries that are not results of the computation: times, ids, names, the machine
NOT_COMPARED = ("fit_seconds", "detection_seconds", "mlflow_run_id", "run_name", "hardware")


# ----------------------------------------------------------------------------------------------- 1. precision
def precision_inputs(frames: int = 64, sample_rate: int = 16000, hop: int = 320):
    """Three clips of ``frames`` hops of raw audio: silence, a loud 1-kHz tone (amplitude 0.9, power about 2e5
    per bin, beyond float16's 65504), and the tone zero-padded after half its length."""
    import numpy as np
    import torch

    t = np.arange(frames * hop) / sample_rate
    tone = (0.9 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    padded = tone.copy()
    padded[len(padded) // 2:] = 0.0
    return torch.from_numpy(np.stack([np.zeros_like(tone), tone, padded])).reshape(3, frames, hop)


def autocast_outputs(net, x, mask, dtype, device: str) -> dict:
    """One training forward and backward of ``net`` under ``dtype`` autocast on ``device``: whether outputs and
    gradients are finite, and the dtypes its recurrent layers computed in."""
    import torch

    net = net.to(device).train()
    rnn_dtypes = set()

    def record(_module, _inputs, out):
        first = out[0]
        rnn_dtypes.add(str((first if isinstance(first, torch.Tensor) else first.data).dtype).replace("torch.", ""))

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, (torch.nn.GRU, torch.nn.LSTM))]
    try:
        with torch.autocast(device_type=device, dtype=dtype):
            out = net(x.to(device), mask.to(device))
        out.float().sum().backward()
    finally:
        for h in hooks:
            h.remove()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    return {"finite": bool(torch.isfinite(out).all()),
            "grads_finite": all(bool(torch.isfinite(g).all()) for g in grads), "rnn_dtypes": sorted(rnn_dtypes)}


def check_precision(device: str) -> dict:
    """Item 1 on ``device``: the attention CRNN on raw audio and the paper CRNN on features (silence as zeros,
    a loud input as large values), under float16 and bfloat16 autocast."""
    import torch

    from sedbench.models.attention import CRNNAttention
    from sedbench.models.crnn import CRNN
    from sedbench.models.precision import RNN_DTYPE

    torch.manual_seed(0)
    frames = 64
    mask = torch.ones(3, frames)
    mask[2, frames // 2:] = 0.0
    feats = torch.randn(3, frames, 40) * 3.0
    feats[0] = 0.0
    cases = {}
    for dtype in (torch.float16, torch.bfloat16):
        for name, net, x in (("crnn_attention", CRNNAttention(320, 4, maps=16, heads=2), precision_inputs(frames)),
                             ("crnn", CRNN(40, N_CLASSES, maps=32), feats)):
            cases[f"{name} {str(dtype).replace('torch.', '')}"] = autocast_outputs(net, x, mask, dtype, device)
    want = str(RNN_DTYPE).replace("torch.", "")
    ok = all(c["finite"] and c["grads_finite"] and c["rnn_dtypes"] == [want] for c in cases.values())
    return {"pass": ok, "cases": cases, "figure": f"{len(cases)} cases finite, RNN in {want}" if ok else
            "; ".join(f"{k}: {v}" for k, v in cases.items() if not (v["finite"] and v["grads_finite"]
                                                                   and v["rnn_dtypes"] == [want]))}


# ------------------------------------------------------------------------------------ 2-4. runs, record, evaluate
def train_run(work: Path, name: str, data: Path, trainer: str, extra: list[str]) -> tuple[Path, dict]:
    """``sedbench train`` in its own process on ``data``, everything it writes under ``work``; its run folder
    and metrics.json."""
    run_dir = work / name
    cmd = [sys.executable, "-m", "sedbench", "train", "data=folder", f"data.root={data}", f"trainer={trainer}",
           f"tracking.uri=sqlite:///{work}/mlflow.db", f"tracking.artifacts={work}/artifacts",
           f"features.cache_dir={work}/cache", f"hydra.run.dir={run_dir}", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sedbench train failed ({' '.join(cmd[3:])}):\n{done.stderr[-1500:]}")
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def differing(a: dict, b: dict) -> tuple[int, list[str]]:
    """How many results two metrics.json compare on, and which differ (times, ids and the machine left out)."""
    keys = sorted((set(a) | set(b)) - set(NOT_COMPARED))
    keys = [k for k in keys if not k.startswith("time/")]
    return len(keys), [k for k in keys if a.get(k) != b.get(k)]


def check_determinism(work: Path, data: Path, trainer: str, epochs: int) -> dict:
    """Item 2 (bench item 17): the same command twice, compared metric by metric (class-wise dicts, the
    validation curve and the step count included)."""
    extra = ["model.maps=16", "data.seq_len=128", "data.batch_size=8", f"trainer.max_epochs={epochs}", "seed=0"]
    t0 = time.perf_counter()
    first_dir, first = train_run(work, "same-a", data, trainer, extra)
    _, second = train_run(work, "same-b", data, trainer, extra)
    compared, diff = differing(first, second)
    return {"pass": not diff, "identical": not diff, "compared": compared, "differing": diff,
            "seconds": round(time.perf_counter() - t0, 1), "run_dir": str(first_dir), "metrics": first,
            "figure": f"identical metrics: {'yes' if not diff else 'no'} ({compared} compared"
                      f"{', differ: ' + ', '.join(diff[:4]) if diff else ''})"}


def check_record(metrics: dict, device: str) -> dict:
    """Item 3: what the run recorded about its hardware and data loading."""
    hw = metrics.get("hardware") or {}
    want = ("gpu", "cuda", "cudnn", "driver") if device == "cuda" else ("cpu", "cpu_capability")
    missing = [k for k in want if not hw.get(k)]
    loader_ok = device != "cuda" or (hw.get("loader_workers", 0) > 0 and hw.get("pin_memory") is True)
    text = ", ".join(f"{k} {hw.get(k)}" for k in (*want, "loader_workers", "pin_memory") if k in hw)
    return {"pass": not missing and loader_ok, "hardware": hw,
            "figure": text if not missing else f"missing: {', '.join(missing)}"}


def check_evaluate(run_dir: Path, metrics: dict, data: Path, device: str) -> dict:
    """Item 4: the run's bundle re-scored where ``sedbench evaluate`` puts it (the run's accelerator), against
    the run's recorded test F1_frm (another batch size may move a frame's score by rounding: within 0.001)."""
    from sedbench.commands.evaluate import evaluate_bundle
    from sedbench.training.artifacts import BUNDLE_PATH, Bundle
    from sedbench.training.device import evaluation_device

    bundle = Bundle.load(run_dir / BUNDLE_PATH)
    chosen = evaluation_device(bundle.accelerator)
    bundle.to(chosen)
    scores = evaluate_bundle(bundle, {**bundle.data_cfg, "root": str(data)}, [], progress=False)[0]
    gap = abs(scores["f1_frm"] - metrics["test/f1_frm"])
    return {"pass": chosen == device and gap <= 1e-3, "device": chosen, "f1_frm_recorded": metrics["test/f1_frm"],
            "f1_frm_evaluated": scores["f1_frm"], "figure": f"on {chosen}: F1_frm {scores['f1_frm']:.4f} against "
                                                            f"recorded {metrics['test/f1_frm']:.4f}"}


# ------------------------------------------------------------------------------------------ 5. training speed
def bench_gpu_frames(data: Path, work: Path, accelerator: str, steps: int, cpu_steps: int, warmup: int) -> dict:
    """Item 5 (bench item 15): the paper CRNN (3.68M parameters, 256 frames, batch 8) through sedbench's loop on
    the GPU and on the CPU (every core), frames per second of each, in this one run."""
    from sedbench.bench.training import sedbench_loop
    from sedbench.data.datamodule import SEDDataModule
    from sedbench.data.dataset import read_folder
    from sedbench.data.features import FeatureParams

    dm = SEDDataModule(read_folder(data), FeatureParams(), seq_len=SEQ_LEN, batch_size=BATCH,
                       cache_dir=work / "cache", progress=False)
    dm.setup("fit")
    gpu = sedbench_loop(dm, steps, warmup, accelerator=accelerator)
    cpu = sedbench_loop(dm, cpu_steps, min(warmup, 2), accelerator="cpu")
    speedup = gpu["frames_per_second"] / cpu["frames_per_second"]
    return {"pass": True, "gpu_frames_per_second": round(gpu["frames_per_second"]),
            "cpu_frames_per_second": round(cpu["frames_per_second"]), "frames_speedup": round(speedup, 2),
            "figure": f"{gpu['frames_per_second']:,.0f} frames/s, CPU {cpu['frames_per_second']:,.0f}: "
                      f"{speedup:.1f}x"}


# ------------------------------------------------------------------------------------------------- 6. packing
def bench_gpu_packing(work: Path, data: Path, trainer: str, epochs: int, grid: str) -> dict:
    """Item 6 (bench item 16): a demo grid (``grid``, ``epochs`` each) as ``sweep.n_jobs=auto`` packs it on the
    GPU, and one trial at a time; trials per hour of each, and the packing decision."""
    from sedbench.bench.sweeps import demo_sweep

    extra = [f"trainer={trainer}", f"trainer.max_epochs={epochs}", f"sweep.grid={grid}"]
    auto = demo_sweep("gpu-auto", data, work, extra)
    one = demo_sweep("gpu-one", data, work, [*extra, "sweep.n_jobs=1"])
    speedup = auto["trials_per_hour"] / one["trials_per_hour"]
    out = {"pass": auto["trials"] == one["trials"] > 0, "packing_speedup": round(speedup, 2)}
    for key, run in (("auto", auto), ("one_per_gpu", one)):
        out[key] = {k: run[k] for k in ("wall_seconds", "trials", "trials_per_hour", "packing")}
    out["figure"] = (f"{auto['trials_per_hour']:.0f} trials/h packed ({auto['packing'].split(' (')[0]}), "
                     f"{one['trials_per_hour']:.0f} one at a time: {speedup:.2f}x")
    return out


# ---------------------------------------------------------------------------------------------------- driver
ITEMS = ("precision", "determinism", "record", "evaluate", "frames", "packing", "fused")
LABELS = {"precision": "1. mixed precision: finite, RNN in float32", "determinism": "2. two identical runs",
          "record": "3. run record: GPU, CUDA, cuDNN, driver, loaders", "evaluate": "4. evaluate on the run's device",
          "frames": "5. paper CRNN frames/s: GPU / CPU", "packing": "6. demo grid trials/h: N per GPU / 1",
          "fused": "7. seeds fused: members = solo; trials/h ratios"}
GRID = "[{model:[crnn,cnn],model.maps:[16,32],seed:[0,1]}]"   # 8 trials of the demo grid's models
QUICK_GRID = "[{model:[crnn],model.maps:[8,12]}]"


def run_checks(device: str, quick: bool, items=ITEMS) -> dict:
    """Every item in ``items`` on ``device`` (``cuda``, or ``cpu`` to test the script); an item that raises is
    a failure with its error, and the others go on."""
    from sedbench.commands.cli import main as cli

    trainer = "gpu" if device == "cuda" else "cpu"
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="sedbench-gpu-check-") as tmp:
        work = Path(tmp)
        data = work / "synth"
        log("generating a small synth set (3 training minutes)")
        cli(["data", "generate", "synth", "--out", str(data), "--minutes-train", "1" if quick else "3",
             "--mixture-seconds", "30", "--seed", "7", "--quiet"])
        steps = {"precision": lambda: check_precision(device),
                 "determinism": lambda: check_determinism(work, data, trainer, 1 if quick else 3),
                 "record": lambda: check_record(results["determinism"]["metrics"], device),
                 "evaluate": lambda: check_evaluate(Path(results["determinism"]["run_dir"]),
                                                    results["determinism"]["metrics"], data, device),
                 "frames": lambda: bench_gpu_frames(data, work, "cpu" if device == "cpu" else "gpu",
                                                    4 if quick else 200, 2 if quick else 10, 2 if quick else 20),
                 "packing": lambda: bench_gpu_packing(work, data, trainer, 1 if quick else 2,
                                                      QUICK_GRID if quick else GRID),
                 "fused": lambda: check_fused(device, data, work, quick)}
        for item in items:
            log(LABELS[item])
            t0 = time.perf_counter()
            try:
                results[item] = steps[item]()
            except Exception as exc:  # a failed check is a row of the table, not the end of the script
                results[item] = {"pass": False, "figure": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                                 if str(exc) else type(exc).__name__, "error": str(exc)[-3000:]}
            results[item]["seconds"] = round(time.perf_counter() - t0, 1)
    if "determinism" in results:
        results["determinism"].pop("metrics", None)
        results["determinism"].pop("run_dir", None)
    return results


def table(results: dict, machine: str) -> str:
    lines = [f"make gpu-check: {machine}", "", f"{'item':<50}{'result':<8}{'s':>6}  figure", "-" * 110]
    for item, r in results.items():
        lines.append(f"{LABELS[item]:<50}{'pass' if r['pass'] else 'FAIL':<8}{r.get('seconds', 0):>6.0f}  "
                     f"{r.get('figure', '')}")
    passed = sum(r["pass"] for r in results.values())
    lines += ["", f"{passed}/{len(results)} passed"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="make gpu-check: the GPU path checked on this machine's CUDA device")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cpu: the same checks on the CPU (tests the script, not a GPU)")
    ap.add_argument("--quick", action="store_true", help="toy sizes (with --device cpu, for the tests)")
    ap.add_argument("--items", default=",".join(ITEMS), help=f"a subset of {','.join(ITEMS)}")
    ap.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    import torch

    from sedbench.hardware import cpu_info, describe, describe_gpu

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"make gpu-check: {describe_gpu()}, nothing checked")
        return 0
    items = [i.strip() for i in args.items.split(",") if i.strip()]
    unknown = sorted(set(items) - set(ITEMS))
    if unknown:
        ap.error(f"--items: unknown {', '.join(unknown)}; choose among {', '.join(ITEMS)}")
    machine = (describe_gpu() if args.device == "cuda" else "the CPU (--device cpu: a test of the script)") + \
        f"; CPU {describe(cpu_info())}"
    results = run_checks(args.device, args.quick, [i for i in ITEMS if i in items])
    print(table(results, machine))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine, "items": results}, indent=2, default=str) + "\n")
    return 0 if all(r["pass"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
