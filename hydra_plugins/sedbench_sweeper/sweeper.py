"""``hydra/sweeper=sedbench``: ask/tell an Optuna study, launch trials through Hydra's launcher.

The sweep's settings are the ``sweep`` node of the composed config (see conf/config.yaml
and sweeps/*.yaml); command-line sweeps (``model.maps=96,256``) add grid dimensions.
"""


import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.sedbench_sweeper.record import Recording
from hydra_plugins.sedbench_sweeper.schedule import Scheduling, packing_kind
from hydra_plugins.sedbench_sweeper.space import SearchSpace
from sedbench import tracking

log = logging.getLogger("sedbench.sweep")
tracking.register_resolver()  # Hydra imports its plugins before it composes: the configs' ${sedbench.store:...}


@dataclass
class SedbenchSweeperConf:
    _target_: str = "hydra_plugins.sedbench_sweeper.sweeper.SedbenchSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="sedbench", node=SedbenchSweeperConf, provider="sedbench")


class SedbenchSweeper(SearchSpace, Scheduling, Recording, Sweeper):
    """Hydra's sweeper: one study per sweep; the cells and search space (.space), the scheduling
    (.schedule) and the recording (.record) are its mixins, each in its own module."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None
        self.job_idx = 0
        self._job_lock = threading.Lock()
        self.storage = None  # the study's RDBStorage, opened by the sweep
        self.split = None  # processes x threads (sedbench.packing), decided by the sweep
        self.console = None  # sedbench.console.SweepConsole, unless sweep.console=full
        self.provenance = None  # what the sweep started with (sedbench.provenance): trials are compared with it
        self.fuse_keys, self.fuse_max = {}, float("inf")  # seeds trained together (sweep.fuse; .schedule)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config, self.task_function = hydra_context, config, task_function
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    # ------------------------------------------------------------------ the sweep
    def sweep(self, arguments: list[str]) -> Any:
        import sys

        from sedbench.errors import SedbenchError

        try:
            return self._sweep(arguments)
        except SedbenchError as exc:  # a user error: the message, not a traceback
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def _sweep(self, arguments: list[str]) -> Any:
        import hashlib

        import optuna

        from sedbench import studies
        from sedbench import sweep as sw
        from sedbench.console import SweepConsole, quiet_libraries

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cfg = self.config.sweep
        full = str(cfg.get("console", "trials")) == "full"
        quiet_libraries(verbose=full)
        self.console = None if full else SweepConsole()
        base, cli_grid = self._split(arguments)
        sampler_name = cfg.sampler
        cells = sw.grid_cells(OmegaConf.to_container(cfg.grid, resolve=True) or [], cli_grid) \
            if sampler_name == "grid" else []
        name = cfg.name or "adhoc-" + hashlib.sha1(" ".join(sorted(base) + [sw.cell_key(c) for c in cells])
                                                     .encode()).hexdigest()[:8]
        sampler = {"grid": None, "tpe": optuna.samplers.TPESampler(seed=cfg.seed),
                   "random": optuna.samplers.RandomSampler(seed=cfg.seed)}[sampler_name]
        rounds = self._rounds(name, cells)
        grid, cells = cells, cells if rounds is None else []   # with rounds: the cells of the round now running
        budget = cfg.n_trials or (len(grid) if grid else None)
        if budget is None:
            from sedbench.errors import ConfigError

            raise ConfigError(f"sweep {name}: sweep.n_trials is required for the {sampler_name} sampler")
        pruner = studies.make_pruner(cfg.pruner)
        # what cells share, storage and objective included: one clear error, nothing enqueued
        composed, objective = self._preflight(base, grid)
        self._check_reference(name, grid)
        base = self._pack(base, composed)  # sweep.n_jobs=auto: processes x threads for this machine
        claims = studies.Claims(cfg.storage, name)  # before the study: it forgets the claims of a deleted one
        self.storage = studies.make_storage(cfg.storage)
        study = studies.open_study(name, self.storage, direction=objective.direction, sampler=sampler, pruner=pruner)
        studies.check_objective(study, name, f"val/{objective.name}", objective.direction)
        study.set_user_attr("packing", self.split.describe())  # this launch's processes x threads, and why
        study.set_user_attr("claims", str(cfg.get("claims") or "claims"))  # what the report and the rounds decide
        if cfg.get("energy_reference"):  # what the report's energy-weighted score divides by
            study.set_user_attr("energy_reference", str(cfg.energy_reference))
        if rounds is not None:
            study.set_user_attr("rounds", {"seeds": list(rounds), "spending": str(cfg.spending)})
            cells = self._round_cells(study, name, grid, rounds)
            budget = len(cells)
        study.set_user_attr("budget", budget)  # what `sedbench status` counts the trials done against
        self.provenance = self._provenance(study, name, composed)
        self._check_base(study, name, base)
        self.grid_choices = self._choices(grid)
        if cells:
            self._check_grid(study, name)
        parent = self._parent_run(study, name)
        self._reap(study, name, cells=[])  # enqueue_missing below retries every failed cell
        if cells:
            added = sw.enqueue_missing(study, cells)
            self._say(f"sweep {name}: {len(cells)} cells, {sw.done_count(study)} done, {added} to run now "
                      f"(storage {tracking.redact(cfg.storage)})")
        else:
            self._say(f"sweep {name}: {cfg.sampler} search, {sw.done_count(study)} of {budget} trials done "
                      f"(storage {tracking.redact(cfg.storage)})")
        self._plan_fusing(name, grid, composed)
        if self.console is not None:
            self.console.start(budget, sw.done_count(study))
        t0, fits, failures, finished = time.perf_counter(), [], 0, 0
        status, verdict = "FINISHED", None

        def ask(jobs: int, in_flight=()) -> list:
            self._reap(study, name, cells)  # a worker that died meanwhile: its cell is retried here
            trials = sw.left_to_ask(study, budget, in_flight)
            return self._ask(study, sw, claims, cells, cfg, base, name, parent, jobs, trials) if trials > 0 else []

        # local processes: a free process starts the next trial at once; otherwise batches of n_jobs (job arrays)
        parallel = self.split.n_jobs > 1 and packing_kind(self.config) == "local"
        try:
            while True:  # one pass; with rounds (sweep.rounds), one pass per round of seeds
                before = finished
                results = self._as_they_finish(study, ask) if parallel else self._in_batches(study, ask)
                for job, ret in results:
                    lost = []
                    for trial, ok, metrics in self._finished(study, job, ret):
                        finished += 1
                        self._show(study, trial, ok, metrics)
                        if ok is None:
                            failures += 1
                            if trial.user_attrs.get("lost"):
                                lost.append(trial)
                        elif ok:
                            fits.append(float(metrics.get("fit_seconds") or 0.0))
                    if lost:  # the engine lost the job (not the trial's fault): its cells are trained again
                        self._retry_lost(study, name, lost, cells)
                    if finished >= 4 and failures / finished > cfg.max_failure_rate:
                        status = "FAILED"
                        verdict = (f"sweep {name} stopped: {failures} of {finished} trials failed, more than "
                                   f"sweep.max_failure_rate={cfg.max_failure_rate:g}; see the errors above")
                        log.error("sweep %s: %d of %d trials failed (> max_failure_rate %.2f): stopping", name,
                                  failures, finished, cfg.max_failure_rate)
                        break
                results.close()  # trials still running finish and are recorded (nothing recorded is lost)
                if finished and failures == finished and verdict is None:
                    status = "FAILED"
                    verdict = (f"sweep {name} failed: none of the {finished} trials run now completed; see the "
                               "errors above")
                if rounds is None or verdict or finished == before or sw.done_count(study) < budget:
                    break  # nothing new, or a round with failed cells (rerun to retry them before the next look)
                cells = self._round_cells(study, name, grid, rounds)
                if len(cells) <= budget:  # no configuration needs more seeds: the study is decided
                    break
                budget = len(cells)
                study.set_user_attr("budget", budget)
                sw.enqueue_missing(study, cells)
                if self.console is not None:
                    self.console.start(budget, sw.done_count(study))
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            if sw.done_count(study) >= budget:
                sw.prune_leftovers(study, self.storage)
            self._close_parent(parent, status)
            claims.close()
            if self.console is not None:
                self.console.close()
            wall = time.perf_counter() - t0
            print(sw.summary_table(study))
            if finished == 0 and status != "KILLED":
                print(f"sweep {name}: nothing new to train ({sw.done_count(study)} of {budget} trials done)")
            elif fits and sum(fits) > 0:
                print(f"orchestration: sweep wall {wall:.0f} s / sum of trial fit times {sum(fits):.0f} s = "
                      f"{wall / sum(fits):.2f}  ({finished} trials run now, {failures} failed)")
        if verdict:  # a failed sweep is a failed command: the reason is its last line
            print(f"error: {verdict}", flush=True)
            raise SystemExit(1)
        return study

    # ------------------------------------------------------------------ console
    def _say(self, line: str) -> None:
        """A header line: on the sweep's console, or logged (sweep.console=full)."""
        if self.console is not None:
            self.console.header(line)
        else:
            log.info(line)

    def _show(self, study, trial, ok: bool | None, metrics: dict) -> None:
        """The finished trial's one line on the console (sweep.console=full: its own output says it all)."""
        if self.console is None:
            return
        from optuna.trial import TrialState

        from sedbench import sweep as sw
        from sedbench.console import TRIAL_LOG, short_cell, trial_line

        attrs = trial.user_attrs
        cell = short_cell(sw.cell_from_key(attrs["cell"])) if attrs.get("cell") else ""
        state = "complete" if ok else "pruned" if ok is False else "lost" if attrs.get("lost") else "failed"
        log_path = f"{attrs['output_dir']}/{TRIAL_LOG}" if attrs.get("output_dir") else None
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        self.console.set_running(running)
        self.console.finished(trial_line(trial.number, cell, state, metrics, attrs.get("error"), log_path,
                                         attrs.get("provenance_differs")),
                              failed=ok is None)
