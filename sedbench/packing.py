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

Trials on CUDA (:func:`choose_gpu`): several per GPU, since a small model uses a tiny share of a GPU and a
step's time goes to kernel launches and Python, which processes overlap:

* trials per GPU: at most :data:`MAX_PER_GPU` (``small`` models 8 with the CUDA MPS daemon running, 4 without
  it, when processes take turns on the GPU; ``large`` ones 2 and 1), at most what the least free GPU memory
  holds at :data:`GPU_TRIAL_MEMORY_GB` each (a CUDA context, weights, Adam state and activations, rounded up);
* one worker group per GPU on a multi-GPU host: each trial process claims a slot once, for its life, and sees
  its GPU alone through ``CUDA_VISIBLE_DEVICES`` (:func:`claim_gpu`);
* CPU threads split among all the processes (``cores // n``), and never more processes than cores;
* an explicit ``sweep.n_jobs=N`` on CUDA spreads N over the GPUs and splits the cores alike.

These caps are estimates from the model sizes, not measurements on a GPU: ``make gpu-check`` measures a demo
grid's trials per hour at 1 and at N trials per GPU on the machine at hand.

Launchers that place trials elsewhere (SLURM, Ray) or run them one by one (Hydra's ``basic``) get 1,
with a note: there, ``sweep.n_jobs`` is given explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SMALL_MODEL_PARAMETERS = 1_000_000
MAX_THREADS = 4
TRIAL_MEMORY_GB = {"small": 1.0, "large": 2.5}  # peak RSS of a trial, rounded up: demo CRNN 0.82 GB, paper CRNN < 2
GPU_TRIAL_MEMORY_GB = {"small": 1.5, "large": 6.0}  # GPU memory of a trial, estimated (context about 0.5 GB)
MAX_PER_GPU = {("small", True): 8, ("small", False): 4, ("large", True): 2, ("large", False): 1}  # (size, MPS)


@dataclass(frozen=True)
class Split:
    n_jobs: int
    threads: int | None  # None: torch's default (every core), left as configured
    reason: str
    gpus: tuple[str, ...] = ()  # CUDA devices (physical indices) the trials spread over, one group each
    per_gpu: int = 0            # trial processes per GPU

    def describe(self) -> str:
        threads = "torch's default threads" if self.threads is None else \
            f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        where = f", {self.per_gpu} per GPU on GPU{'s' if len(self.gpus) > 1 else ''} {','.join(self.gpus)}" \
            if self.gpus else ""
        return f"{self.n_jobs} process{'es' if self.n_jobs > 1 else ''} x {threads}{where} ({self.reason})"


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
           cores: int | None = None, memory_gb: float | None = None, gpus=None, mps: bool = False) -> Split:
    """The split for ``sweep.n_jobs`` (``auto`` or a number) and ``trainer.num_threads`` (None = unset).

    ``largest_model`` is the largest parameter count among the sweep's cells (None: unknown, taken as small);
    ``launcher`` is ``local`` (parallel processes on this machine), ``sequential`` or ``remote``; ``gpus``, for
    trials off the CPU, the CUDA devices (:class:`sedbench.hardware.GPU`, their free memory) and ``mps``
    whether the MPS daemon runs."""
    cores = cores or usable_cores()
    threads = int(threads) if threads else None
    if launcher == "local" and not _on_cpu(accelerator) and gpus:
        return choose_gpu(n_jobs, threads, largest_model, list(gpus), mps, cores, memory_gb)
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
        return Split(1, threads, f"auto: trainer.accelerator={accelerator} and no CUDA device listed (nvidia-smi)")
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


def choose_gpu(n_jobs, threads: int | None, largest_model: int | None, gpus: list, mps: bool, cores: int,
               memory_gb: float | None) -> Split:
    """The split for trials on the CUDA devices ``gpus`` (see the module's description)."""
    small = largest_model is None or largest_model < SMALL_MODEL_PARAMETERS
    size = "small" if small else "large"
    ids = tuple(str(g.index) for g in gpus)
    if str(n_jobs) != "auto":
        n = max(1, int(n_jobs))
        per_gpu = -(-n // len(ids))
        used = ids[:min(len(ids), n)]
        return Split(n, threads or max(1, cores // n), f"sweep.n_jobs={n} given: over {len(used)} GPU"
                     f"{'s' if len(used) > 1 else ''}, {cores} cores shared", used, per_gpu)
    label = f"largest model {'unknown' if largest_model is None else f'{largest_model:,} parameters'}"
    per_gpu = MAX_PER_GPU[(size, mps)]
    why = [f"{label} ({size}), {per_gpu} at most per GPU {'with' if mps else 'without'} CUDA MPS"]
    free = [g.free_gb for g in gpus if g.free_gb is not None]
    if free:
        fits = max(1, int(min(free) // GPU_TRIAL_MEMORY_GB[size]))
        if fits < per_gpu:
            per_gpu = fits
            why.append(f"{min(free):.0f} GB free GPU memory holds {fits} at {GPU_TRIAL_MEMORY_GB[size]:g} GB each")
    if per_gpu * len(ids) > cores:  # each process needs a core at least
        per_gpu = max(1, cores // len(ids))
        why.append(f"{cores} cores")
    n = per_gpu * len(ids)
    if memory_gb is not None and n * TRIAL_MEMORY_GB[size] > memory_gb:
        per_gpu = max(1, int(memory_gb // TRIAL_MEMORY_GB[size]) // len(ids))
        n = per_gpu * len(ids)
        why.append(f"{memory_gb:.0f} GB of memory")
    if threads is None:
        threads = max(1, cores // n)
    else:
        why.append(f"trainer.num_threads={threads} given")
    return Split(n, threads, f"auto: {len(ids)} GPU{'s' if len(ids) > 1 else ''}, {'; '.join(why)}", ids, per_gpu)


_GPU_SLOT: list = []  # this process's claimed slot: (GPU, the open lock file that holds it)


def gpu_slots(gpus, per_gpu: int) -> list[tuple[str, int]]:
    """Slots ``(GPU, k)`` in the order processes claim them: the first process of each GPU before any second."""
    return [(str(g), k) for k in range(max(1, int(per_gpu))) for g in gpus]


def claim_gpu(gpus, per_gpu: int, slot_dir: str | Path) -> str | None:
    """In a trial process of a multi-GPU sweep: claim a free slot for this process's life (a lock file in
    ``slot_dir``, released by the system when the process ends, so a dead worker's slot goes to its
    replacement) and make its GPU the only one CUDA sees here (``CUDA_VISIBLE_DEVICES``). Returns the GPU, the
    same on every later call in this process; None with one GPU or none (nothing to choose)."""
    import fcntl

    gpus = [str(g) for g in (gpus or [])]
    if len(gpus) < 2:
        return None
    if _GPU_SLOT:
        return _GPU_SLOT[0][0]
    slot_dir = Path(slot_dir)
    slot_dir.mkdir(parents=True, exist_ok=True)
    chosen = None
    for gpu, k in gpu_slots(gpus, per_gpu):
        handle = open(slot_dir / f"gpu{gpu}-{k}.lock", "a")  # noqa: SIM115 (held open for the process's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        chosen = (gpu, handle)
        break
    if chosen is None:  # more processes than slots (a replacement before its predecessor's end): spread by pid
        chosen = (gpus[os.getpid() % len(gpus)], None)
    _GPU_SLOT.append(chosen)
    _set_visible(chosen[0])
    return chosen[0]


def _set_visible(gpu: str) -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        import logging

        logging.getLogger("sedbench").warning("CUDA is already initialized in this process: it stays on its "
                                              "device instead of GPU %s", gpu)
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def release_gpu() -> None:
    """Give this process's slot back (tests; a trial process keeps its slot until it ends)."""
    while _GPU_SLOT:
        _, handle = _GPU_SLOT.pop()
        if handle is not None:
            handle.close()


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
    sizes = [n for n in model_sizes(configs) if n is not None]
    return max(sizes) if sizes else None


def model_sizes(configs) -> list[int | None]:
    """Each composed trial config's trainable parameter count, as :func:`largest_model` counts it (None where the
    model cannot be built here: its trial fails with its own error); each model built once."""
    from sedbench.training.params import count_parameters_of

    sizes, known = [], {}
    for cfg in configs:
        key = repr(sorted((str(k), str(v)) for k, v in cfg.model.items())), str(cfg.features), str(cfg.data.root)
        if key not in known:
            try:
                known[key] = count_parameters_of(cfg, default_classes=16)
            except Exception:
                known[key] = None
        sizes.append(known[key])
    return sizes
