"""``sweep.n_jobs=auto``: how many trials run at once on this machine, and with how many threads each.

Small models use threads badly and processes well. Measured on a 2-core AVX2 AMD EPYC (torch 2.13, a
plain PyTorch training loop, batch 8, two rounds alike), the frames per second at 2 threads against 1:

============================  ===========  =================
model                         parameters   2 threads / 1
============================  ===========  =================
demo CRNN (maps 32, 128 fr.)  59,152       1.24x, 1.34x
demo CNN (maps 16, 128 fr.)   about 15k    1.20x, 1.52x
paper CRNN (maps 256, 256 fr) 3.68M        1.84x, 1.86x
============================  ===========  =================

while two one-thread processes side by side each keep most of their one-thread speed (``make bench``
measures ``sweep.packing_speedup`` on the demo grid). So the rule (:func:`choose`), for trials on this
machine's CPU:

* threads per trial: ``trainer.num_threads`` when it is set; else 1 when the largest model of the sweep
  has fewer than :data:`SMALL_MODEL_PARAMETERS` parameters; else as many as the cores, at most
  :data:`MAX_THREADS` (beyond that, pack more trials rather than spread one thinner);
* trials at once: the cores divided by the threads, at most what the available memory holds at
  :data:`TRIAL_MEMORY_GB` per trial, at least 1.

It is decided from the configuration and the machine only, never from a timing, so the same command on the
same machine always gives the same split, and so the same numbers (the thread count can change the last
bits of a result). The threads are fixed for the whole sweep, also when fewer cells than workers are left.

Trials on a GPU (``trainer.accelerator=gpu``) run one at a time: sedbench does not spread processes over
devices. Launchers that place trials elsewhere (SLURM, Ray) or run them one by one (Hydra's ``basic``) get
1, with a note: there, ``sweep.n_jobs`` is given explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SMALL_MODEL_PARAMETERS = 1_000_000
MAX_THREADS = 4
TRIAL_MEMORY_GB = {"small": 1.0, "large": 2.5}  # peak RSS of a trial, rounded up: demo CRNN 0.82 GB, paper CRNN < 2


@dataclass(frozen=True)
class Split:
    n_jobs: int
    threads: int | None  # None: torch's default (every core), left as configured
    reason: str

    def describe(self) -> str:
        threads = "torch's default threads" if self.threads is None else \
            f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{self.n_jobs} process{'es' if self.n_jobs > 1 else ''} x {threads} ({self.reason})"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory_gb() -> float | None:
    """MemAvailable of ``/proc/meminfo`` in GB, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def choose(n_jobs, threads: int | None, largest_model: int | None, launcher: str, accelerator: str = "cpu",
           cores: int | None = None, memory_gb: float | None = None) -> Split:
    """The split for ``sweep.n_jobs`` (``auto`` or a number) and ``trainer.num_threads`` (None = unset).

    ``largest_model`` is the largest parameter count among the sweep's cells (None: unknown, taken as small);
    ``launcher`` is ``local`` (parallel processes on this machine), ``sequential`` or ``remote``."""
    cores = cores or usable_cores()
    threads = int(threads) if threads else None
    if str(n_jobs) != "auto":
        n = max(1, int(n_jobs))
        if threads is None and launcher == "local" and n > 1 and _on_cpu(accelerator):
            return Split(n, max(1, cores // n), f"sweep.n_jobs={n} given: {cores} cores shared")
        return Split(n, threads, f"sweep.n_jobs={n} given")
    if launcher != "local":
        what = "Hydra's basic launcher runs trials one by one" if launcher == "sequential" else \
            "this launcher places trials on other machines; give sweep.n_jobs=N for it"
        return Split(1, threads, f"auto: {what}")
    if not _on_cpu(accelerator):
        return Split(1, threads, f"auto: trainer.accelerator={accelerator}, one trial per device")
    small = largest_model is None or largest_model < SMALL_MODEL_PARAMETERS
    size = "unknown" if largest_model is None else f"{largest_model:,} parameters"
    if threads is None:
        threads = 1 if small else min(cores, MAX_THREADS)
        why = (f"largest model {size} < {SMALL_MODEL_PARAMETERS:,}: one thread each" if small else
               f"largest model {size}: up to {MAX_THREADS} threads each")
    else:
        why = f"trainer.num_threads={threads} given"
    n = max(1, cores // threads)
    per_trial = TRIAL_MEMORY_GB["small" if small else "large"]
    if memory_gb is not None and n * per_trial > memory_gb:
        n = max(1, int(memory_gb // per_trial))
        why += f"; {memory_gb:.0f} GB available holds {n} at {per_trial:g} GB each"
    return Split(n, threads, f"auto: {cores} cores, {why}")


_WATCHING = []


def exit_with_sweeper(pid) -> None:
    """In a trial process that the sweep's process started (a ``local`` launcher worker), end this process when
    the sweep's process is gone (SIGKILL, a crash), as a trial running inside the sweep's process would end.
    Otherwise the orphan would finish its trial and record it while the other workers, seeing no heartbeat,
    train the same cell again. Nothing happens in the sweep's own process or where the sweep is not this
    process's parent (SLURM, Ray); one watcher per process."""
    import threading
    import time

    if not pid or int(pid) == os.getpid() or os.getppid() != int(pid) or _WATCHING:
        return
    pid = int(pid)

    def watch():
        while os.getppid() == pid:
            time.sleep(0.5)
        os._exit(70)  # the sweep's process died: its trials are failed and retried by the next worker

    _WATCHING.append(threading.Thread(target=watch, daemon=True, name="sedbench-sweep-watch"))
    _WATCHING[0].start()


def _on_cpu(accelerator: str) -> bool:
    from sedbench.hardware import runs_on_cpu

    return runs_on_cpu(accelerator)


def launcher_kind(target: str) -> str:
    """``local`` (joblib processes), ``sequential`` (Hydra's basic launcher) or ``remote``, from the launcher's
    ``_target_``."""
    name = str(target).rsplit(".", 1)[-1]
    return {"JoblibLauncher": "local", "BasicLauncher": "sequential"}.get(name, "remote")


def largest_model(configs) -> int | None:
    """The largest trainable parameter count among composed trial configs (each model built once; the class
    count is the dataset's where it can be read without generating it, else 16), or None if none is known."""
    from sedbench.training.params import count_parameters_of

    sizes, seen = [], set()
    for cfg in configs:
        key = repr(sorted((str(k), str(v)) for k, v in cfg.model.items())), str(cfg.features), str(cfg.data.root)
        if key in seen:
            continue
        seen.add(key)
        try:
            sizes.append(count_parameters_of(cfg, default_classes=16))
        except Exception:  # a model that cannot be built here fails in its trial, with its own error
            continue
    return max(sizes) if sizes else None
