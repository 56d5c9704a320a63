"""The energy a run spends training and testing, in kWh, measured where the machine allows it, else estimated,
and always recorded with how it was obtained (``energy_method``), as DCASE asks systems to report it.

* CPU, measured: the RAPL package energy counter (``/sys/class/powercap/intel-rapl:0/energy_uj``, Intel and
  recent AMD under Linux) over the interval, times this process's share of the machine's busy CPU time in
  it (``/proc/stat``), so that trials running side by side do not each count the whole package.
* CPU, estimated (no RAPL, as on virtual machines): this process's CPU seconds (all its threads) times
  ``energy.cpu_watts_per_core``, a figure per busy core the user can set for their machine. Data loader worker
  processes (used on a GPU, never on the CPU) are not counted.
* GPU, measured: NVML's total energy counter of the run's device (``pynvml``), over the interval; the
  whole device, so a GPU shared by several trials counts each of them in full (said in the method).

Memory, disks and the network are not counted. Reading the counters costs microseconds at each
boundary; nothing runs in the background.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RAPL = Path("/sys/class/powercap/intel-rapl:0")
JOULES_PER_KWH = 3.6e6


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _busy_machine_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``), None where it cannot be read."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _rapl_joules() -> tuple[float, float] | None:
    """(energy counter, its wrap-around range) in joules, None without a readable RAPL package counter."""
    try:
        return (int((RAPL / "energy_uj").read_text()) / 1e6, int((RAPL / "max_energy_range_uj").read_text()) / 1e6)
    except (OSError, ValueError):
        return None


def _nvml_joules(device: int) -> float | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(pynvml.nvmlDeviceGetHandleByIndex(device)) / 1e3
    except Exception:  # no pynvml, no driver, or a GPU without the counter
        return None


@dataclass
class Reading:
    cpu_seconds: float
    machine_seconds: float | None
    rapl: tuple[float, float] | None
    gpu: float | None


class EnergyMeter:
    """``start()`` then ``stop()``: the kWh in between and how they were obtained. ``cuda_device``: the index of
    the run's GPU (None on the CPU)."""

    def __init__(self, cpu_watts_per_core: float, cuda_device: int | None = None):
        self.watts, self.cuda = float(cpu_watts_per_core), cuda_device
        self._start: Reading | None = None

    def _read(self) -> Reading:
        gpu = _nvml_joules(self.cuda) if self.cuda is not None else None
        return Reading(_cpu_seconds(), _busy_machine_seconds(), _rapl_joules(), gpu)

    def start(self) -> EnergyMeter:
        self._start = self._read()
        return self

    def stop(self) -> tuple[float, str]:
        """(kWh since :meth:`start`, the method); the meter may be started again."""
        a, b = self._start, self._read()
        cpu_seconds = max(0.0, b.cpu_seconds - a.cpu_seconds)
        if a.rapl is not None and b.rapl is not None and a.machine_seconds is not None:
            joules = (b.rapl[0] - a.rapl[0]) % b.rapl[1]  # the counter wraps around at its range
            busy = (b.machine_seconds or 0) - a.machine_seconds
            share = min(1.0, cpu_seconds / busy) if busy > 0 else 1.0
            cpu, how = joules * share, "cpu: RAPL package energy x this process's share of busy CPU time"
        else:
            cpu, how = cpu_seconds * self.watts, f"cpu: estimate, {self.watts:g} W per busy core (no RAPL)"
        methods, total = [how], cpu
        if self.cuda is not None:
            if a.gpu is not None and b.gpu is not None:
                total += b.gpu - a.gpu
                methods.append("gpu: NVML energy counter (the whole device)")
            else:
                methods.append("gpu: not measured (no NVML energy counter)")
        return total / JOULES_PER_KWH, "; ".join(methods)
