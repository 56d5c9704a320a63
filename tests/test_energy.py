"""Energy per run (issue 40): measured from RAPL's counter where the machine has one, else estimated from the
process's CPU time, always with its method."""

import pytest

from sedbench import energy
from sedbench.energy import JOULES_PER_KWH, EnergyMeter


def burn(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_without_rapl_the_cpu_time_is_priced_at_the_watts_per_core(monkeypatch):
    monkeypatch.setattr(energy, "RAPL", energy.Path("/nonexistent/intel-rapl:0"))
    meter = EnergyMeter(10).start()
    t0 = energy._cpu_seconds()
    burn(0.3)
    kwh, method = meter.stop()
    used = energy._cpu_seconds() - t0
    assert method == "cpu: estimate, 10 W per busy core (no RAPL)"
    assert kwh * JOULES_PER_KWH == pytest.approx(10 * used, rel=0.1) and kwh > 0


def test_with_rapl_the_package_energy_is_shared_by_the_process_share_and_wraps_around(monkeypatch, tmp_path):
    """A fake counter: 50 J over an interval in which the machine was busy 2 s and this process 0.5 s of them,
    the counter wrapping past its range of 100 J."""
    rapl = tmp_path / "intel-rapl:0"
    rapl.mkdir()
    (rapl / "max_energy_range_uj").write_text(str(100 * 10**6))
    (rapl / "energy_uj").write_text(str(80 * 10**6))
    monkeypatch.setattr(energy, "RAPL", rapl)
    clock = iter([(10.0, 100.0), (10.5, 102.0)])  # (process CPU s, machine busy s) at start and at stop
    now = {}

    def read(self):
        now["cpu"], now["machine"] = next(clock)
        return energy.Reading(now["cpu"], now["machine"], energy._rapl_joules(), None)

    monkeypatch.setattr(EnergyMeter, "_read", read)
    meter = EnergyMeter(10).start()
    (rapl / "energy_uj").write_text(str(30 * 10**6))  # 80 J -> 100 J wraps to 0 -> 30 J: 50 J
    kwh, method = meter.stop()
    assert kwh * JOULES_PER_KWH == pytest.approx(50 * 0.5 / 2)
    assert method == "cpu: RAPL package energy x this process's share of busy CPU time"


def test_a_gpu_without_an_energy_counter_says_so(monkeypatch):
    monkeypatch.setattr(energy, "_nvml_joules", lambda device: None)
    kwh, method = EnergyMeter(10, cuda_device=0).start().stop()
    assert method.endswith("; gpu: not measured (no NVML energy counter)") and kwh >= 0
    counter = iter([100.0, 172.0])  # joules at start and at stop
    monkeypatch.setattr(energy, "_nvml_joules", lambda device: next(counter))
    kwh, method = EnergyMeter(10, cuda_device=0).start().stop()
    assert method.endswith("; gpu: NVML energy counter (the whole device)") and kwh * JOULES_PER_KWH >= 72
