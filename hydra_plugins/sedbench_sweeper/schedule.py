"""When and where trials run: processes x threads (sedbench.packing), asking the study for the next trials
(claimed by one worker only), launching them in batches or as they finish with a heartbeat, and
retrying the cells of dead workers."""

from __future__ import annotations

import logging
import os
import threading
import time

from omegaconf import open_dict

log = logging.getLogger("sedbench.sweep")


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

    def _ask(self, study, sw, claims, cells, cfg, base, name, parent, want: int) -> list:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        batch = []
        while len(batch) < want:
            if cells and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                break
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
            sw.mark_worker(trial)
            trial.set_user_attr("overrides", [*base, *cell])
            batch.append((trial, [*base, *cell, f"trial.number={trial.number}", f"trial.study={name}",
                                  f"trial.storage='{cfg.storage}'", f"trial.parent_run_id={parent or 'null'}",
                                  f"trial.sweeper_pid={os.getpid()}"]))
        return batch

    def _in_batches(self, study, ask):
        """(trial, JobReturn) of batches of ``sweep.n_jobs`` trials, each batch launched and awaited whole."""
        while batch := ask(self.split.n_jobs):
            yield from ((trial, ret) for (trial, _), ret in zip(batch, self._launch(study, batch), strict=True))

    def _as_they_finish(self, study, ask):
        """(trial, JobReturn) as trials finish, ``sweep.n_jobs`` of them always running: each trial is launched
        alone from its own thread, so one slow trial does not hold the other processes idle (a batch waits for
        its slowest trial). Closed early, it waits for the running trials and records them."""
        import queue

        finished, running = queue.Queue(), {}

        def run(item):
            try:
                finished.put((item, self._launch(study, [item]), None))
            except BaseException as exc:  # handed to the sweep's thread
                finished.put((item, None, exc))

        def start(items):
            for item in items:
                running[item[0].number] = item
                threading.Thread(target=run, args=(item,), daemon=True, name=f"trial-{item[0].number}").start()

        stopping = False
        try:
            start(ask(self.split.n_jobs))
            while running:
                item, rets, exc = finished.get()
                if exc is not None:  # the launcher failed (its trial is failed below with the others)
                    raise exc
                del running[item[0].number]
                if stopping:
                    self._show(study, item[0], *self._tell(study, item[0], rets[0]))
                    continue
                try:
                    yield item[0], rets[0]
                except GeneratorExit:  # the sweep stops (failure rate): let the running trials end, record them
                    stopping = True
                    continue
                start(ask(self.split.n_jobs - len(running), len(running)))
        except BaseException as exc:  # Ctrl-C or a launcher error: running trials are failed, their processes ended
            from optuna.trial import TrialState

            error = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else \
                f"the sweep stopped: {type(exc).__name__}: {exc}"[:2000]
            for trial, _ in running.values():
                trial.set_user_attr("error", error)
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            if running:
                from joblib.externals.loky import get_reusable_executor

                get_reusable_executor().shutdown(wait=False, kill_workers=True)
                log.warning("%s: trials %s marked failed; run the same command again to resume", error,
                            sorted(running))
            raise

    def _launch(self, study, batch) -> list:
        from optuna.trial import TrialState

        stop = threading.Event()

        def beat():
            while not stop.wait(self.config.sweep.heartbeat_seconds):
                for t, _ in batch:
                    try:
                        t.set_user_attr("heartbeat", time.time())
                    except Exception:  # finished meanwhile
                        pass

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        with self._job_lock:  # trials are launched from several threads (_as_they_finish)
            first, self.job_idx = self.job_idx, self.job_idx + len(batch)
        try:
            results = self.launcher.launch([overrides for _, overrides in batch], initial_job_idx=first)
        except KeyboardInterrupt:
            for t, _ in batch:
                t.set_user_attr("error", "interrupted (Ctrl-C)")
                study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
            log.warning("interrupted: trials %s marked failed; run the same command again to resume",
                        [t.number for t, _ in batch])
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
        self._end_runs(name, stale)
        keys = {t.user_attrs.get("cell") for t in stale}
        sw.enqueue_missing(study, [c for c in cells if sw.cell_key(c) in keys])
