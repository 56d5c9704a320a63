"""When and where trials run: processes x threads (sedbench.packing), asking the study for the next trials
(claimed by one worker only), launching them in batches or as they finish with a heartbeat, and
retrying the cells of dead workers."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time

from omegaconf import open_dict

log = logging.getLogger("sedbench.sweep")


def interruption(exc: BaseException) -> str | None:
    """The error a trial stopped by ``exc`` records: ``interrupted (Ctrl-C)`` or ``interrupted (SIGTERM)``; None
    for any other exception."""
    from sedbench.errors import Terminated

    if not isinstance(exc, KeyboardInterrupt):
        return None
    return f"interrupted ({'SIGTERM' if isinstance(exc, Terminated) else 'Ctrl-C'})"


def resumable(trials) -> str:
    """What an interrupted sweep kept, for its one line on the console (``sedbench.commands.cli.main``)."""
    numbers = sorted(t.number for t in trials)
    stopped = f"trials {numbers} were stopped (marked failed, their runs KILLED); " if numbers else ""
    return f"{stopped}finished trials are kept, and the same command again resumes the sweep"


class Job:
    """What one trial process runs: one trial, or seeds of one configuration trained together
    (sedbench.training.fused), and the launcher's overrides for it."""

    def __init__(self, trials: list, overrides: list[str]):
        self.trials, self.overrides = trials, overrides

    @property
    def key(self) -> int:
        return self.trials[0].number


def packing_kind(config) -> str:
    """``local``, ``sequential`` or ``remote``: where the configured launcher runs trials (sedbench.packing)."""
    from sedbench.packing import launcher_kind

    return launcher_kind(config.hydra.launcher.get("_target_", ""))


class Scheduling:
    """The sweep's scheduling (a mixin of the
    sweeper, ``hydra_plugins.sedbench_sweeper.sweeper.SedbenchSweeper``, whose state it reads)."""

    def _pack(self, base: list[str], composed) -> list[str]:
        """Decide ``sweep.n_jobs`` and the threads per trial (sedbench.packing), hand the number to the launcher
        and the threads to every trial (``trainer.num_threads``, an override that does not change what a cell
        means); the decision is logged and kept on the study."""
        from hydra.core.plugins import Plugins

        from sedbench import hardware, packing

        sweep, trainer = self.config.sweep, composed[0].trainer
        kind = packing_kind(self.config)
        largest = packing.largest_model(composed) if str(sweep.n_jobs) == "auto" and kind == "local" else None
        accelerator = str(trainer.get("accelerator", "cpu"))
        gpus, mps = [], False
        if kind == "local" and not hardware.runs_on_cpu(accelerator):
            gpus, mps = hardware.cuda_devices(), hardware.mps_running()
        split = packing.choose(sweep.n_jobs, trainer.get("num_threads"), largest, kind, accelerator,
                               memory_gb=packing.available_memory_gb(), gpus=gpus, mps=mps)
        self.split = split
        self._say(f"sweep: {split.describe()}")
        if split.threads is not None and not trainer.get("num_threads"):
            base = [*base, f"trainer.num_threads={split.threads}"]
        if len(split.gpus) > 1 and split.n_jobs > 1:  # each trial process claims a GPU (packing.claim_gpu)
            base = [*base, f"trial.gpus='{','.join(split.gpus)}'", f"trial.per_gpu={split.per_gpu}"]
        if str(sweep.n_jobs) != str(split.n_jobs):
            with open_dict(self.config):
                self.config.sweep.n_jobs = split.n_jobs  # the launcher presets read ${sweep.n_jobs}
            self.launcher = Plugins.instance().instantiate_launcher(
                hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        return base

    def _plan_fusing(self, name: str, cells, composed) -> None:
        """``sweep.fuse``: which cells may train together with the cells that differ from them only in ``seed``
        (``self.fuse_keys``: cell key -> the cell without its seed), at most how many (``self.fuse_max``), and one
        header line saying so, naming why the others train solo (sedbench.models.fused.fuse_reason)."""
        from collections import Counter

        from sedbench import sweep as sw
        from sedbench.errors import ConfigError
        from sedbench.hardware import runs_on_cpu
        from sedbench.models.fused import fuse_reason

        mode = str(self.config.sweep.get("fuse", "auto")).lower()
        self.fuse_keys, self.fuse_max = {}, float("inf")
        if mode not in ("auto", "off") and not (mode.isdigit() and int(mode) >= 2):
            raise ConfigError(f"sweep.fuse={mode}: must be auto (seeds of a configuration train together), off, or "
                              "the largest number of seeds to train together (2 or more). Fix: sweep.fuse=auto")
        if mode == "off" or not cells:
            return
        if mode != "auto":
            self.fuse_max = int(mode)
        solo, groups = Counter(), set()
        for cell, cfg in zip(cells, composed, strict=True):
            if "seed" not in sw.cell_params(cell):
                continue
            reason = fuse_reason(cfg, on_cpu=runs_on_cpu(str(cfg.trainer.get("accelerator", "cpu"))))
            if reason:
                solo[reason] += 1
                continue
            key = tuple(c for c in cell if not c.startswith("seed="))
            self.fuse_keys[sw.cell_key(cell)] = key
            groups.add(key)
        if not self.fuse_keys and not solo:
            return
        line = f"sweep {name}: seeds of a configuration train together (sweep.fuse={mode}): " \
               f"{len(self.fuse_keys)} cells of {len(groups)} configuration{'s' if len(groups) != 1 else ''}"
        if solo:
            line += "; solo: " + "; ".join(f"{n} cells ({reason})" for reason, n in solo.most_common())
        self._say(line)

    def _ask(self, study, sw, claims, cells, cfg, base, name, parent, jobs: int, trials: int) -> list[Job]:
        """Up to ``jobs`` jobs of at most ``trials`` trials in all, each claimed by this worker: one trial, or
        seeds of one configuration waiting next to each other, trained together (``sweep.fuse``)."""
        from optuna.trial import TrialState

        batch: list[Job] = []
        while len(batch) < jobs and trials > 0:
            got = self._pop(study, sw, claims, cells, cfg)
            if got is None:
                break
            members, other, trials = [got], None, trials - 1
            key = self.fuse_keys.get(sw.cell_key(got[1])) if cells else None
            if key is not None:
                waiting = sorted(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)),
                                 key=lambda t: t.number)  # study.ask pops the lowest number first
                # every process starting now gets work: a group takes at most its share of what waits
                cap = min(self.fuse_max, -(-(len(waiting) + 1) // max(1, jobs - len(batch))))
                keys = [self.fuse_keys.get(t.user_attrs.get("cell")) for t in waiting]
                mates = len(list(itertools.takewhile(lambda k, key=key: k == key, keys)))  # its seeds waiting next
                for _ in range(int(min(mates, cap - 1, trials))):
                    mate = self._pop(study, sw, claims, cells, cfg)
                    if mate is None:
                        break
                    trials -= 1
                    if self.fuse_keys.get(sw.cell_key(mate[1])) != key:  # another worker took the one peeked at:
                        other = mate  # this one is a job of its own (one more than asked for, once in a while)
                        break
                    members.append(mate)
            batch.append(self._job(members, base, name, parent, cfg))
            if other is not None:
                batch.append(self._job([other], base, name, parent, cfg))
        return batch

    def _pop(self, study, sw, claims, cells, cfg):
        """The next trial this worker trains and its cell (claimed, checked), or None when no cell waits."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        while True:
            if cells and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
            trial = study.ask()
            if not claims.take(trial.number):  # another worker popped the same waiting trial: it is theirs
                continue
            if cells:
                unwanted = ("empty" if "cell" not in trial.user_attrs  # another worker took the last waiting cell
                            else "duplicate" if sw.is_duplicate(study, trial) else None)
                if unwanted:
                    try:
                        trial.set_user_attr(unwanted, True)
                        study.tell(trial, state=TrialState.PRUNED)
                    except UpdateFinishedTrialError:  # pruned by a worker tidying up its finished grid
                        pass
                    continue
                cell = sw.cell_from_key(trial.user_attrs["cell"])
                for key in sw.cell_params(cell):  # fixed by the enqueued cell; recorded as Optuna params
                    trial.suggest_categorical(key, self.grid_choices[key])
            else:
                cell = self._suggest(trial, cfg.space)
                trial.set_user_attr("cell", sw.cell_key(cell))
            return trial, cell

    def _job(self, members: list, base: list[str], name: str, parent, cfg) -> Job:
        """The launcher's overrides for ``members`` (``(trial, cell)``): one trial's, or seeds trained together:
        the first member's cell and trial, and ``trial.members`` naming every member's trial and seed."""
        from sedbench import sweep as sw

        for trial, cell in members:
            sw.mark_worker(trial)
            trial.set_user_attr("overrides", [*base, *cell])
        first, cell = members[0]
        overrides = [*base, *cell, f"trial.number={first.number}", f"trial.study={name}",
                     f"trial.storage='{cfg.storage}'", f"trial.parent_run_id={parent or 'null'}",
                     f"trial.sweeper_pid={os.getpid()}"]
        if len(members) > 1:
            pairs = ",".join(f"[{t.number},{sw.cell_params(c)['seed']}]" for t, c in members)
            overrides.append(f"trial.members=[{pairs}]")
        return Job([t for t, _ in members], overrides)

    def _in_batches(self, study, ask):
        """(job, JobReturn) of batches of ``sweep.n_jobs`` jobs, each batch launched and awaited whole."""
        while batch := ask(self.split.n_jobs):
            yield from zip(batch, self._launch(study, batch), strict=True)

    def _as_they_finish(self, study, ask):
        """(job, JobReturn) as jobs finish, ``sweep.n_jobs`` of them always running: each job is launched alone
        from its own thread, so one slow trial does not hold the other processes idle (a batch waits for its
        slowest trial). Closed early, it waits for the running jobs and records them."""
        import queue

        finished, running = queue.Queue(), {}

        def run(job):
            try:
                finished.put((job, self._launch(study, [job]), None))
            except BaseException as exc:  # handed to the sweep's thread
                finished.put((job, None, exc))

        def start(jobs):
            for job in jobs:
                running[job.key] = job
                threading.Thread(target=run, args=(job,), daemon=True, name=f"trial-{job.key}").start()

        stopping = False
        try:
            start(ask(self.split.n_jobs))
            while running:
                job, rets, exc = finished.get()
                if exc is not None:  # the launcher failed (its trials are failed below with the others)
                    raise exc
                del running[job.key]
                if stopping:
                    for trial, ok, metrics in self._finished(study, job, rets[0]):
                        self._show(study, trial, ok, metrics)
                    continue
                try:
                    yield job, rets[0]
                except GeneratorExit:  # the sweep stops (failure rate): let the running trials end, record them
                    stopping = True
                    continue
                start(ask(self.split.n_jobs - len(running), [t.number for j in running.values() for t in j.trials]))
        except BaseException as exc:  # Ctrl-C, SIGTERM or a launcher error: running trials are failed, their
            # processes ended and their MLflow runs KILLED (a worker ended by the executor cannot end its own)
            error = interruption(exc) or f"the sweep stopped: {type(exc).__name__}: {exc}"[:2000]
            trials = [t for job in running.values() for t in job.trials]
            self._fail_unfinished(study, trials, error)
            if interruption(exc):
                self._requeue(study, trials)
            if running:
                from joblib.externals.loky import get_reusable_executor

                # kill_workers here too: an executor it replaces (other arguments) is ended, not awaited, since
                # its busy workers got no signal (SIGTERM comes to this process alone; Ctrl-C to the terminal's all)
                get_reusable_executor(kill_workers=True).shutdown(wait=False, kill_workers=True)
                self._end_runs(study.study_name, trials)
                log.warning("%s: trials %s marked failed (those not finished); run the same command again to "
                            "resume", error, sorted(t.number for t in trials))
            if isinstance(exc, KeyboardInterrupt):
                raise type(exc)(resumable(trials)) from None
            raise

    @staticmethod
    def _fail_unfinished(study, trials, error: str) -> None:
        """Mark ``trials`` failed with ``error``, but those that finished meanwhile (a member of seeds trained
        together is told its end by its own process)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        for t in trials:
            try:
                t.set_user_attr("error", error)
                study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
            except UpdateFinishedTrialError:
                pass

    def _requeue(self, study, trials) -> None:
        """The grid cells of trials stopped by Ctrl-C or SIGTERM (a SLURM job cancelled, preempted or out of
        time) queued again: another worker of the study trains them now, or the next run of the command."""
        from sedbench import sweep as sw

        if str(self.config.sweep.sampler) != "grid":
            return
        try:
            keys = {t.user_attrs.get("cell") for t in trials} - {None}
            sw.enqueue_missing(study, [sw.cell_from_key(k) for k in sorted(keys)])
        except Exception as exc:  # the storage out of reach: the next run queues them (sweep.enqueue_missing)
            log.warning("could not queue the stopped trials' cells again (%s); the next run does", exc)

    def _launch(self, study, batch: list[Job]) -> list:
        stop = threading.Event()
        trials = [t for job in batch for t in job.trials]

        def beat():
            while not stop.wait(self.config.sweep.heartbeat_seconds):
                for t in trials:
                    try:
                        t.set_user_attr("heartbeat", time.time())
                    except Exception:  # finished meanwhile
                        pass

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        with self._job_lock:  # trials are launched from several threads (_as_they_finish)
            first, self.job_idx = self.job_idx, self.job_idx + len(batch)
        try:
            results = self.launcher.launch([job.overrides for job in batch], initial_job_idx=first)
        except KeyboardInterrupt as exc:
            self._fail_unfinished(study, trials, interruption(exc))
            self._requeue(study, trials)
            log.warning("interrupted: trials %s marked failed (those not finished); run the same command again to "
                        "resume", [t.number for t in trials])
            raise type(exc)(resumable(trials)) from None
        except Exception as exc:  # the launcher failed (e.g. sbatch refused the array): nothing of it ran
            self._fail_unfinished(study, trials, f"the sweep stopped: {type(exc).__name__}: {exc}"[:2000])
            self._requeue(study, trials)
            raise
        finally:
            stop.set()
        return results

    def _reap(self, study, name: str, cells) -> None:
        """Fail the trials of dead workers, end their MLflow runs, and re-enqueue their grid cells."""
        from sedbench import sweep as sw

        stale = sw.fail_stale(study, self.storage, self.config.sweep.heartbeat_seconds)
        if not stale:
            return
        log.warning("trials %s had lost their worker: marked failed, their cells will be retried",
                    [t.number for t in stale])
        self._queue_again(study, name, stale, cells)

    def _queue_again(self, study, name: str, trials, cells) -> int:
        """Failed trials whose worker or job is gone: their MLflow runs ended KILLED (their process could not end
        them) and those of ``cells`` (the grid's now) queued again; returns how many."""
        from sedbench import sweep as sw

        self._end_runs(name, trials)
        keys = {t.user_attrs.get("cell") for t in trials}
        return sw.enqueue_missing(study, [c for c in cells if sw.cell_key(c) in keys])
