"""Launchers for engines that can lose a job: each job's outcome is its own.

Hydra's engine plugins wait for a batch as a whole: hydra-submitit-launcher's ``launch`` raises for the batch
when one job of its array was cancelled, and a Ray task on a node that died raises in ``ray.get``. The trials of
the batch that did finish would be lost with it. These launchers return one ``JobReturn`` per job instead; a job
the engine lost comes back failed with :class:`sedbench.errors.JobLost`, and the sweeper fails that trial, ends
its MLflow run and trains its cell again (``hydra_plugins.sedbench_sweeper.record``).

- ``hydra/launcher=ray_cluster``: :class:`RayLauncher`, sedbench's own (``pip install 'sedbench[ray]'`` installs
  Ray alone: hydra-ray-launcher's pins, cloudpickle<3 among them, are not needed).
- ``hydra/launcher=slurm``: :class:`SlurmLauncher`, hydra-submitit-launcher's, each job array's jobs awaited one
  by one (``pip install 'sedbench[slurm]'``).

Engines are imported when a batch is launched, never at Hydra's plugin discovery.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("sedbench.sweep")


def failed(overrides, exc: BaseException) -> JobReturn:
    """A job's failed outcome, as Hydra's ``run_job`` returns it for a task that raised ``exc``."""
    ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
    ret.return_value = exc  # what JobReturn.return_value raises for a failed job (as run_job sets it)
    return ret


def lost(overrides, reason: str) -> JobReturn:
    """The failed outcome of a job the engine lost: the sweeper retries its cell."""
    from sedbench.errors import JobLost

    return failed(overrides, JobLost(reason))


def _sweep_dir(config: DictConfig) -> None:
    """The sweep's folder, as Hydra's launchers make it (with ``hydra.sweep.mode`` when set)."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep and config.hydra.sweep.mode is not None:
        os.chmod(sweep_dir, mode=int(str(config.hydra.sweep.mode), 8))


# ---------------------------------------------------------------------------------------------------- Ray
def _run_on_ray(hydra_context, sweep_config: DictConfig, task_function, singleton_state, cwd: str) -> JobReturn:
    """One trial in a Ray worker: Hydra's state as the sweep's, in the sweep's working folder (relative paths, the
    default stores' among them, mean what they mean to the sweep: its folder must be on every node)."""
    from hydra.core.hydra_config import HydraConfig

    if not Path(cwd).is_dir():
        raise FileNotFoundError(f"the sweep's folder {cwd} is not on this Ray node "
                                f"({os.uname().nodename}): run the sweep from a shared file system")
    os.chdir(cwd)
    Singleton.set_state(singleton_state)
    setup_globals()
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _quiet_lost_workers() -> None:
    """Ray prints a paragraph on the driver's stdout for every worker that died ("A worker died or was killed
    while executing a task ..."), beside the console's own line for the lost trial: it goes to the sweep's log at
    DEBUG instead (Ray's session logs keep it too). Ray prints these through ``print_to_stdstream`` of its worker
    module, tagged ``raylet``; if a later Ray prints them otherwise, they show as before."""
    from ray._private import worker

    printer = getattr(worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "sedbench_quiet", False):
        return

    def print_to_stdstream(data, *args, **kwargs):
        if data.get("pid") == "raylet":
            log.debug("Ray: %s", " ".join(data.get("lines") or []))
            return None
        return printer(data, *args, **kwargs)

    print_to_stdstream.sedbench_quiet = True
    worker.print_to_stdstream = print_to_stdstream


class RayLauncher(Launcher):
    """Each trial a Ray task (``ray.remote`` options from ``ray.remote``; never retried by Ray, since a retry
    would train a cell whose MLflow run is left RUNNING: the sweep retries it as a new trial instead), on the
    cluster at ``ray.init.address`` or a Ray started on this machine (``address: null``)."""

    def __init__(self, ray: Any = None) -> None:
        ray = OmegaConf.to_container(ray, resolve=True) if OmegaConf.is_config(ray) else dict(ray or {})
        self.init = dict(ray.get("init") or {})
        self.remote = {"max_retries": 0, **(ray.get("remote") or {})}
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def check(self) -> None:
        """Before anything is queued: Ray is installed (the sweeper's preflight)."""
        import importlib.util

        from sedbench.errors import ConfigError

        if importlib.util.find_spec("ray") is None:
            raise ConfigError("hydra/launcher=ray_cluster: Ray is not installed. Fix: pip install 'sedbench[ray]' "
                              "(or make ray), or another launcher (hydra/launcher=local)")

    def _connect(self):
        import ray

        if not ray.is_initialized():
            # no worker output on the sweep's console (each trial writes its own trial.log); Ray's own lines off
            # but its errors (its notes on token authentication, the cluster it joined, are in its session logs)
            ray.init(**{"log_to_driver": False, "logging_level": logging.ERROR, "include_dashboard": False,
                        **self.init})
            _quiet_lost_workers()
        return ray

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        ray = self._connect()
        _sweep_dir(self.config)
        remote = ray.remote(_run_on_ray).options(**self.remote)
        refs = []
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.debug("#%d: %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config.hydra.job):
                sweep_config.hydra.job.id, sweep_config.hydra.job.num = f"job_id_for_{idx}", idx
            refs.append((overrides, remote.remote(self.hydra_context, sweep_config, self.task_function,
                                                  Singleton.get_state(), os.getcwd())))
        return [self._outcome(ray, overrides, ref) for overrides, ref in refs]

    @staticmethod
    def _outcome(ray, overrides, ref) -> JobReturn:
        from ray import exceptions

        try:
            return ray.get(ref)
        except (exceptions.NodeDiedError, exceptions.WorkerCrashedError, exceptions.TaskUnschedulableError,
                exceptions.LocalRayletDiedError) as exc:
            said = str(exc).strip().splitlines()[0].split(". ")[0].rstrip(".")  # Ray's first sentence
            return lost(overrides, f"Ray lost the task ({type(exc).__name__}: {said})")
        except exceptions.RayTaskError as exc:  # the task could not start the trial (e.g. no shared folder)
            return failed(overrides, exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc)


# ---------------------------------------------------------------------------------------------------- SLURM
def _last_line(said) -> str:
    lines = [x.strip() for x in str(said).splitlines() if x.strip()]
    return lines[-1] if lines else "(no message)"


def _answer(cmd: list[str]) -> str | None:
    """None when ``cmd`` succeeds; else the last line it said."""
    import subprocess

    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if r.returncode == 0 else _last_line(r.stderr or r.stdout)


try:
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurm
except ImportError:  # the slurm extra is not installed: hydra/launcher=slurm says how to install it
    _SubmititSlurm = None

if _SubmititSlurm is not None:

    class SlurmLauncher(_SubmititSlurm):
        """hydra-submitit-launcher's SLURM launcher (each batch one job array, each job the same call), whose
        jobs are awaited one by one: a job that SLURM cancelled, or that ended without a result, is lost
        (:func:`lost`) and the others keep their results."""

        def check(self) -> None:
            """Before anything is queued: SLURM's commands answer here (the sweeper's preflight)."""
            import shutil

            from sedbench.errors import ConfigError

            missing = [c for c in ("sbatch", "sacct", "squeue") if shutil.which(c) is None]
            if missing:
                raise ConfigError(f"hydra/launcher=slurm: {', '.join(missing)} not found. Fix: run the sweep on a "
                                  "SLURM login node (sacct needs the cluster's accounting), or use another launcher")
            for cmd in (["squeue", "-h", "-u", str(os.getuid())], ["sacct", "-n", "-X", "-S", "now"]):
                said = _answer(cmd)
                if said is not None:
                    raise ConfigError(f"hydra/launcher=slurm: `{' '.join(cmd)}` fails here: {said}. Fix: run the "
                                      "sweep where SLURM answers (a login node; SLURM_CONF), with the cluster's "
                                      "accounting on (sacct: how a cancelled job is seen to end)")

        def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
            import submitit

            params = dict(self.params)
            folder = params.pop("submitit_folder")
            timeouts = {"slurm_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
            executor = submitit.AutoExecutor(cluster="slurm", folder=folder, **timeouts)
            base = set(OmegaConf.structured(BaseQueueConf).keys())
            executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
            _sweep_dir(self.config)
            calls = [(list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
                     for idx, overrides in enumerate(job_overrides, initial_job_idx)]
            try:
                jobs = executor.map_array(self, *zip(*calls, strict=True))
            except submitit.core.utils.FailedJobError as exc:  # sbatch refused the array
                from sedbench.errors import ConfigError

                raise ConfigError(f"hydra/launcher=slurm: sbatch refused the job array: {_last_line(exc)}. Fix: the "
                                  "hydra.launcher settings (partition, time, CPUs, GPUs, memory: "
                                  "conf/hydra/launcher/slurm.yaml)") from None
            return [self._outcome(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]

        @staticmethod
        def _outcome(job, overrides) -> JobReturn:
            from submitit.core.utils import FailedJobError, UncompletedJobError

            try:
                return job.results()[0]
            except FailedJobError as exc:  # the job could not run the trial (its environment): a failure
                return failed(overrides, exc)
            except UncompletedJobError:  # cancelled, preempted, out of time or memory: no result file
                return lost(overrides, f"SLURM job {job.job_id} ended without a result ({job.state})")
