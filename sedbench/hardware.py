"""What this CPU computes natively, asked of torch (not parsed from /proc), and what follows for training.

Machines of one kind differ: some CPUs have AVX-512 with native bfloat16 (AVX512-BF16) or AMX, others only
AVX2. Without native bf16, torch emulates it: measured on a 2-core AVX2 AMD EPYC (torch 2.13, machine idle),
one training step of the paper's CRNN on 8 x 64 frames under bf16 autocast took 12.7 s against 0.41 s in fp32
(31x slower, two rounds alike), and one 2048 x 2048 bf16 matmul about 52 s against 0.04 s. So bf16 on such
a CPU is refused unless asked for (:func:`check_precision`), and ``make bench`` measures bf16 only where it
is native.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sedbench")

EMULATED_BF16_SLOWDOWN = "about 30x slower than fp32 (measured: a training step of the paper CRNN on an AVX2 CPU)"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _flag(name: str) -> bool:
    import torch

    fn = getattr(torch.cpu, name, None)  # torch.cpu._is_avx512_bf16_supported() etc. (torch >= 2.3)
    try:
        return bool(fn()) if fn is not None else False
    except Exception:
        return False


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict:
    """The CPU capability torch dispatches to, its model name, and whether it computes bf16 natively.

    ``bf16_native`` is True with AVX512-BF16 or AMX tiles on x86 (asked of torch's CPU feature checks) or
    where oneDNN reports bf16 support (e.g. ARM with BF16 instructions)."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    via = [name for name, flag in (("AVX512-BF16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))
           if _flag(flag)]
    if not via:
        try:
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():
                via.append("oneDNN bf16")
        except Exception:
            pass
    return {"capability": capability, "model": cpu_model(), "bf16_native": bool(via),
            "bf16_via": " + ".join(via) if via else None}


def describe(info: dict | None = None) -> str:
    """One line for messages and tables: ``AVX2 (AMD EPYC), no native bf16``."""
    info = info or cpu_info()
    bf16 = f"native bf16 via {info['bf16_via']}" if info["bf16_native"] else "no native bf16 (no AVX512-BF16, no AMX)"
    return f"{info['capability']} ({info['model']}), {bf16}"


def runs_on_cpu(accelerator: str) -> bool:
    """Whether Lightning's ``accelerator`` setting ends up on the CPU here."""
    accelerator = str(accelerator).lower()
    if accelerator == "cpu":
        return True
    if accelerator != "auto":
        return False
    import torch

    mps = getattr(torch.backends, "mps", None)
    return not torch.cuda.is_available() and not (mps is not None and mps.is_available())


def check_precision(trainer_cfg) -> None:
    """Refuse bfloat16 training on a CPU that only emulates it (tens of times slower than fp32), with the fix.

    ``trainer.allow_emulated_bf16=true`` runs it anyway, with a warning: for checking bf16 numerics, not for
    timing or sweeps."""
    precision = str(trainer_cfg.get("precision", "32"))
    if "bf16" not in precision or not runs_on_cpu(trainer_cfg.get("accelerator", "cpu")):
        return
    info = cpu_info()
    if info["bf16_native"]:
        return
    problem = (f"trainer.precision={precision} on a CPU without native bfloat16: {describe(info)}. "
               f"torch emulates bf16 there, {EMULATED_BF16_SLOWDOWN}")
    if trainer_cfg.get("allow_emulated_bf16"):
        log.warning("%s; running anyway (trainer.allow_emulated_bf16=true)", problem)
        return
    from sedbench.errors import ConfigError

    raise ConfigError(f"{problem}. Fix: trainer=cpu (fp32), or trainer.allow_emulated_bf16=true to run it anyway")


# ------------------------------------------------------------------------------------------------- CUDA devices
@dataclass(frozen=True)
class GPU:
    """One CUDA device as ``nvidia-smi`` lists it (``index`` is the physical index ``CUDA_VISIBLE_DEVICES`` takes)."""
    index: str
    name: str
    total_gb: float | None = None
    free_gb: float | None = None
    uuid: str = ""
    driver: str | None = None


SMI_QUERY = "index,uuid,name,memory.total,memory.free,driver_version"


def _smi_rows(run=None) -> list[list[str]] | None:
    """``nvidia-smi``'s rows for :data:`SMI_QUERY`, or None where it is missing or fails. It asks the driver
    (NVML) without creating a CUDA context in this process, so a sweep can decide before its trials start."""
    import shutil
    import subprocess

    if run is None:
        if not shutil.which("nvidia-smi"):
            return None
        run = subprocess.run
    try:
        out = run(["nvidia-smi", f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"],
                  capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]


def _gb(mib: str) -> float | None:
    try:
        return round(float(mib) / 1024, 2)
    except ValueError:  # "[N/A]"
        return None


def visible(devices: list[GPU], env: str | None) -> list[GPU]:
    """The devices ``CUDA_VISIBLE_DEVICES`` (``env``; None: unset) leaves visible, in its order: indices or UUIDs
    (a unique prefix, as CUDA reads them); the list ends at the first entry that names none, as CUDA's does."""
    if env is None:
        return list(devices)
    chosen = []
    for token in (t.strip() for t in env.split(",")):
        match = [d for d in devices if token == d.index or (token.startswith("GPU-") and d.uuid.startswith(token))]
        if len(match) != 1:
            break
        chosen.append(match[0])
    return chosen


def cuda_devices(rows: list[list[str]] | None = None, env: str | None = "unset") -> list[GPU]:
    """The CUDA devices this process may use: ``nvidia-smi``'s list narrowed by ``CUDA_VISIBLE_DEVICES``; where
    ``nvidia-smi`` is missing, torch's device count with names and memory unknown. ``rows`` and ``env`` are for
    tests (a faked device list)."""
    rows = _smi_rows() if rows is None else rows
    env = os.environ.get("CUDA_VISIBLE_DEVICES") if env == "unset" else env
    if rows is None:  # torch's count is of the visible devices: name them as CUDA_VISIBLE_DEVICES does
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        names = [t.strip() for t in env.split(",")][:n] if env else [str(i) for i in range(n)]
        return [GPU(name, "CUDA device") for name in names]
    devices = [GPU(r[0], r[2], _gb(r[3]), _gb(r[4]), r[1], r[5]) for r in rows if len(r) >= 6]
    return visible(devices, env)


def mps_running() -> bool:
    """Whether a CUDA MPS control daemon serves this user: its pipe directory (``CUDA_MPS_PIPE_DIRECTORY``,
    default ``/tmp/nvidia-mps``) holds its ``control`` pipe. With MPS, processes on one GPU run their kernels
    side by side; without it they take turns (time slicing)."""
    return (Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")) / "control").exists()


def gpu_info() -> dict:
    """The CUDA side of this machine for the record: torch's CUDA and cuDNN versions (those it was built with),
    the driver, and each visible device's name and memory; ``available`` False on a CPU-only build or machine."""
    import torch

    available = torch.cuda.is_available()
    cudnn = torch.backends.cudnn.version() if available and torch.backends.cudnn.is_available() else None
    devices = cuda_devices() if available else []
    driver = next((d.driver for d in devices if d.driver), None)
    return {"available": available, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": cudnn, "driver": driver, "mps": mps_running() if available else False,
            "devices": [{"index": d.index, "name": d.name, "memory_gb": d.total_gb} for d in devices]}


def describe_gpu(info: dict | None = None) -> str:
    """One line: ``1 x NVIDIA H200 (139.8 GB), CUDA 12.8, cuDNN 91002, driver 570.86`` or ``no CUDA device``."""
    info = info or gpu_info()
    if not info["available"]:
        build = "a CPU-only build of torch" if not info["cuda"] else f"torch built for CUDA {info['cuda']}"
        return f"no CUDA device ({build} {info['torch']})"
    names = {}
    for d in info["devices"]:
        label = d["name"] + (f" ({d['memory_gb']:.0f} GB)" if d.get("memory_gb") else "")
        names[label] = names.get(label, 0) + 1
    devices = ", ".join(f"{n} x {label}" for label, n in names.items()) or "CUDA devices"
    return f"{devices}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, driver {info['driver'] or 'unknown'}"


def run_hardware(accelerator: str) -> dict:
    """What a run records about the machine it trained on (metrics.json ``hardware``, MLflow tags
    ``hardware.*``): the device it used, the CPU, and on CUDA the GPU, CUDA, cuDNN and driver."""
    info = cpu_info()
    out = {"device": "cpu" if runs_on_cpu(accelerator) else str(accelerator), "cpu": info["model"],
           "cpu_capability": info["capability"]}
    import torch

    out["torch"] = torch.__version__
    if not runs_on_cpu(accelerator) and torch.cuda.is_available():
        gpu = gpu_info()
        device = torch.cuda.current_device()
        out.update(device="cuda", gpu=torch.cuda.get_device_name(device), cuda=gpu["cuda"], cudnn=gpu["cudnn"],
                   driver=gpu["driver"], cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    return out


def release_freed_memory() -> None:
    """Give the C heap's freed pages back to the operating system (glibc's ``malloc_trim``; elsewhere nothing):
    after feature extraction, whose large temporaries the allocator otherwise keeps, a run trains with a smaller
    resident set (``make bench`` item 8)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator returns memory its own way
        return
    if trim is not None:
        trim(0)


def reset_peak_memory() -> None:
    """Start measuring a run's peak memory now: the process's peak resident set (Linux: ``/proc/self/clear_refs``),
    and CUDA's peak allocation when torch has initialized CUDA. A worker that trains several trials in turn thus
    records each trial's own peak, not the process's."""
    import sys

    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak is the process's (peak_memory says so)
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict:
    """The peak memory since :func:`reset_peak_memory`: ``peak_rss_gb`` (the process's resident set; its
    ``peak_rss_scope``: ``run`` where it could be reset, else ``process``, its whole life), and on CUDA
    ``peak_gpu_memory_gb`` (what torch allocated)."""
    import sys

    out: dict = {}
    try:
        status = Path("/proc/self/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))  # kB
        out.update(peak_rss_gb=round(hwm / 1024**2, 3), peak_rss_scope="run")
    except (OSError, StopIteration, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
        out.update(peak_rss_gb=round(peak / (1024**3 if sys.platform == "darwin" else 1024**2), 3),
                   peak_rss_scope="process")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
    return out
