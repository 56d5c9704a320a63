"""What a run sets up for the device it trains on (``trainer.accelerator``): determinism and the float32 policy,
the data loaders' workers and pinned memory, how often the loop looks at the loss and redraws its progress bar,
and the device ``sedbench evaluate`` scores on.

Determinism (``trainer.deterministic``, true in every preset): ``torch.use_deterministic_algorithms`` (through
Lightning) and ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which cuBLAS needs for repeatable results and reads when
its first handle is made, so it is set before anything touches CUDA. ``trainer.deterministic=false`` trades
that for speed (cuDNN then picks its fastest, non-repeatable kernels).

Float32 policy (``trainer.tf32``, false in every preset): float32 convolutions, matmuls and RNNs compute in
IEEE float32 on the GPU, as on the CPU (PyTorch's own default lets cuDNN convolutions use TF32, 10-bit
mantissas, on Ampere and later). ``trainer.tf32=true`` allows TF32 for speed. Under
``trainer.precision=16-mixed``/``bf16-mixed`` autocast decides instead, except what
:mod:`sedbench.models.precision` keeps in float32.
"""

from __future__ import annotations

import os

from sedbench.hardware import runs_on_cpu

CUBLAS_WORKSPACE = ":4096:8"
MAX_LOADER_WORKERS = 4
CHECK_EVERY_ON_DEVICE = 50   # steps between looks at the loss off the CPU (each look waits for the device)
BAR_REFRESH_ON_DEVICE = 20   # batches between progress-bar redraws off the CPU


def on_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``accelerator`` setting ends up on a CUDA device here."""
    accelerator = str(accelerator).lower()
    if accelerator in ("cpu", "mps"):
        return False
    import torch

    return torch.cuda.is_available() if accelerator in ("auto", "gpu", "cuda") else False


def configure_numerics(trainer_cfg) -> dict:
    """Set the determinism and float32 policy of ``trainer_cfg`` for this process, before any CUDA work; returns
    what was set (recorded with the run)."""
    import torch

    deterministic = bool(trainer_cfg.get("deterministic", True))
    tf32 = bool(trainer_cfg.get("tf32", False))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    # the flags every torch version reads (torch >= 2.9 also has per-op ``fp32_precision`` settings; setting
    # those makes reading these raise, which code such as torch.compile's still does)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return {"deterministic": deterministic, "fp32_precision": "tf32" if tf32 else "ieee",
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def loader_options(num_workers, accelerator: str, threads: int | None = None) -> dict:
    """The DataLoader settings for ``data.num_workers`` (``auto`` or a number) on ``accelerator``.

    ``auto``: no worker processes on the CPU (the features are memory-mapped and a batch is a slice: loading
    takes about 2 % of a demo trial, ``make bench``), and ``min(4, threads - 1)`` on CUDA, where every
    millisecond of loading would be a millisecond the GPU waits, with pinned memory (faster, asynchronous
    copies to the device) and persistent workers (not restarted every epoch). Workers only read: a batch is
    the same with or without them (tests/test_datamodule.py)."""
    cuda = on_cuda(accelerator)
    if str(num_workers) == "auto":
        if not threads:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(MAX_LOADER_WORKERS, max(0, int(threads) - 1)) if cuda else 0
    else:
        workers = int(num_workers)
    return {"num_workers": workers, "pin_memory": cuda, "persistent_workers": workers > 0}


def check_every(accelerator: str) -> int:
    """Training steps between finiteness checks of the loss: every step on the CPU, where a look costs
    nothing; every :data:`CHECK_EVERY_ON_DEVICE` steps elsewhere, where each look waits for the device."""
    return 1 if runs_on_cpu(accelerator) else CHECK_EVERY_ON_DEVICE


def bar_refresh(accelerator: str) -> int:
    """Batches between progress-bar redraws: every batch on the CPU (a step takes long), fewer on a GPU."""
    return 1 if runs_on_cpu(accelerator) else BAR_REFRESH_ON_DEVICE


def evaluation_device(accelerator: str | None, choice: str = "run") -> str:
    """The torch device ``sedbench evaluate`` scores on: ``choice`` ``cpu`` or ``cuda``, or ``run``: CUDA when
    the run trained on a GPU (or ``auto``) and this machine has one, else the CPU."""
    if choice in ("cpu", "cuda"):
        if choice == "cuda":
            import torch

            if not torch.cuda.is_available():
                from sedbench.errors import SedbenchError

                raise SedbenchError("--device cuda on a machine where torch sees no CUDA device. "
                                    "Fix: --device cpu, or a CUDA build of torch (make setup TORCH=...)")
        return choice
    return "cuda" if accelerator and on_cuda(accelerator) else "cpu"
