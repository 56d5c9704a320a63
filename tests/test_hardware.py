"""CPU capability: bf16 is native or emulated, and emulated bf16 training is refused with the fix."""

import logging
from pathlib import Path

import pytest
import torch

from sedbench import hardware
from sedbench.errors import ConfigError

AVX2 = {"capability": "AVX2", "model": "AMD EPYC", "bf16_native": False, "bf16_via": None}
AMX = {"capability": "AVX512", "model": "Intel Xeon", "bf16_native": True, "bf16_via": "AVX512-BF16 + AMX"}


def test_cpu_info_is_what_torch_dispatches_to():
    info = hardware.cpu_info()
    assert info["capability"] == torch.backends.cpu.get_cpu_capability() and info["model"]
    assert info["bf16_native"] == (info["bf16_via"] is not None)
    assert info["capability"] in hardware.describe(info)


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_emulated_bf16_on_the_cpu_is_refused_with_the_fix(monkeypatch, precision):
    monkeypatch.setattr(hardware, "cpu_info", lambda: AVX2)
    with pytest.raises(ConfigError) as err:
        hardware.check_precision({"accelerator": "cpu", "precision": precision})
    text = str(err.value)
    assert f"trainer.precision={precision} on a CPU without native bfloat16: AVX2 (AMD EPYC)" in text
    assert "about 30x slower than fp32" in text
    assert "Fix: trainer=cpu (fp32), or trainer.allow_emulated_bf16=true" in text


def test_emulated_bf16_runs_when_allowed_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(hardware, "cpu_info", lambda: AVX2)
    with caplog.at_level(logging.WARNING, logger="sedbench"):
        hardware.check_precision({"accelerator": "cpu", "precision": "bf16-mixed", "allow_emulated_bf16": True})
    assert "without native bfloat16" in caplog.text and "running anyway" in caplog.text


def test_native_bf16_fp32_and_gpu_pass(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: AMX)
    hardware.check_precision({"accelerator": "cpu", "precision": "bf16-mixed"})
    monkeypatch.setattr(hardware, "cpu_info", lambda: AVX2)
    hardware.check_precision({"accelerator": "cpu", "precision": "32"})
    hardware.check_precision({"accelerator": "gpu", "precision": "bf16-mixed"})
    assert hardware.runs_on_cpu("auto") == (not torch.cuda.is_available())


def test_the_peak_memory_is_the_runs_own():
    """A worker process trains trials in turn: each records its own peak resident set, not the process's."""
    import numpy as np

    from sedbench.hardware import peak_memory, reset_peak_memory

    big = np.ones(400 * 2**20 // 8)  # 400 MiB touched
    before = peak_memory()
    del big
    reset_peak_memory()
    after = peak_memory()
    assert before["peak_rss_scope"] == after["peak_rss_scope"] == "run"
    assert before["peak_rss_gb"] - after["peak_rss_gb"] > 0.3



def test_freed_heap_memory_goes_back_to_the_system():
    """After feature extraction a run gives the allocator's freed pages back (glibc's malloc_trim): pages freed in
    the middle of the heap, which the heap alone keeps, leave the resident set."""
    import ctypes.util

    import numpy as np

    from sedbench.hardware import release_freed_memory

    if "libc" not in str(ctypes.util.find_library("c")) or not Path("/proc/self/statm").is_file():
        pytest.skip("glibc on Linux only: other C libraries return freed memory their own way")

    def rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

    blocks = [np.ones(12_000) for _ in range(4000)]  # 96 kB each: under the allocator's mmap threshold, on the heap
    del blocks[:-1]  # freed, except the last, which pins the heap's top
    before = rss_mb()
    release_freed_memory()
    assert rss_mb() < before - 200  # of the 366 MB freed, most were still resident
