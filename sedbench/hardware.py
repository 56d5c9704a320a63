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
import platform
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
