"""``hydra/sweeper=sedbench``: ask/tell an Optuna study, launch trials through Hydra's launcher.

The sweep's settings are the ``sweep`` node of the composed config (see conf/config.yaml
and sweeps/*.yaml); command-line sweeps (``model.maps=96,256``) add grid dimensions.
"""


import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from sedbench import tracking

log = logging.getLogger("sedbench.sweep")
tracking.register_resolver()  # Hydra imports its plugins before it composes: the configs' ${sedbench.store:...}


@dataclass
class SedbenchSweeperConf:
    _target_: str = "hydra_plugins.sedbench_sweeper.sweeper.SedbenchSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="sedbench", node=SedbenchSweeperConf, provider="sedbench")


def packing_kind(config) -> str:
    """``local``, ``sequential`` or ``remote``: where the configured launcher runs trials (sedbench.packing)."""
    from sedbench.packing import launcher_kind

    return launcher_kind(config.hydra.launcher.get("_target_", ""))


class SedbenchSweeper(Sweeper):
    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None
        self.job_idx = 0
        self._job_lock = threading.Lock()
        self.storage = None  # the study's RDBStorage, opened by the sweep
        self.split = None  # processes x threads (sedbench.packing), decided by the sweep
        self.console = None  # sedbench.console.SweepConsole, unless sweep.console=full

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
        budget = cfg.n_trials or (len(cells) if cells else None)
        if budget is None:
            from sedbench.errors import ConfigError

            raise ConfigError(f"sweep {name}: sweep.n_trials is required for the {sampler_name} sampler")
        pruner = studies.make_pruner(cfg.pruner)
        composed = self._preflight(base, cells)  # what cells share, storage included: one clear error, nothing enqueued
        base = self._pack(base, composed)  # sweep.n_jobs=auto: processes x threads for this machine
        claims = sw.Claims(cfg.storage, name)  # before the study: it forgets the claims of a deleted one
        self.storage = studies.make_storage(cfg.storage)
        objective = self._objective(name, composed)
        study = studies.open_study(name, self.storage, direction=objective.direction, sampler=sampler, pruner=pruner)
        studies.check_objective(study, name, f"val/{objective.name}", objective.direction)
        study.set_user_attr("packing", self.split.describe())  # this launch's processes x threads, and why
        study.set_user_attr("budget", budget)  # what `sedbench status` counts the trials done against
        self._check_base(study, name, base)
        self.grid_choices = self._choices(cells)
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
        if self.console is not None:
            self.console.start(budget, sw.done_count(study))
        t0, fits, failures, finished = time.perf_counter(), [], 0, 0
        status, verdict = "FINISHED", None

        def ask(want: int, in_flight: int = 0) -> list:
            self._reap(study, name, cells)  # a worker that died meanwhile: its cell is retried here
            want = min(want, budget - sw.done_count(study) - in_flight)
            return self._ask(study, sw, claims, cells, cfg, base, name, parent, want) if want > 0 else []

        # local processes: a free process starts the next trial at once; otherwise batches of n_jobs (job arrays)
        parallel = self.split.n_jobs > 1 and packing_kind(self.config) == "local"
        results = self._as_they_finish(study, ask) if parallel else self._in_batches(study, ask)
        try:
            for trial, ret in results:
                ok, metrics = self._tell(study, trial, ret)
                finished += 1
                self._show(study, trial, ok, metrics)
                if ok is None:
                    failures += 1
                elif ok:
                    fits.append(float(metrics.get("fit_seconds") or 0.0))
                if finished >= 4 and failures / finished > cfg.max_failure_rate:
                    status = "FAILED"
                    verdict = (f"sweep {name} stopped: {failures} of {finished} trials failed, more than "
                               f"sweep.max_failure_rate={cfg.max_failure_rate:g}; see the errors above")
                    log.error("sweep %s: %d of %d trials failed (> max_failure_rate %.2f): stopping", name, failures,
                              finished, cfg.max_failure_rate)
                    break
            results.close()  # trials still running finish and are recorded (nothing recorded is lost)
            if finished and failures == finished and verdict is None:
                status = "FAILED"
                verdict = f"sweep {name} failed: none of the {finished} trials run now completed; see the errors above"
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
            if finished == 0:
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
        state = "complete" if ok else "pruned" if ok is False else "failed"
        log_path = f"{attrs['output_dir']}/{TRIAL_LOG}" if attrs.get("output_dir") else None
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        self.console.set_running(running)
        self.console.finished(trial_line(trial.number, cell, state, metrics, attrs.get("error"), log_path),
                              failed=ok is None)

    # ------------------------------------------------------------------ steps
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

    def _end_runs(self, name: str, trials) -> None:
        """A dead worker's MLflow run stays RUNNING forever: mark it KILLED (its metrics so far are kept)."""
        try:
            from sedbench.tracking import RunStore

            RunStore(self.config.tracking.uri).kill_trial_runs(self.config.tracking, name, [t.number for t in trials])
        except Exception as exc:  # tracking must not stop a sweep
            log.warning("could not end the MLflow runs of trials %s (%s)", [t.number for t in trials], exc)

    def _split(self, arguments: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        base, grid = [], {}
        for o in parser.parse_overrides(arguments):
            key = o.get_key_element()
            if o.is_sweep_override():
                if not o.is_discrete_sweep():
                    from sedbench.errors import ConfigError

                    raise ConfigError(f"{key}: only lists of values (a,b,c) can be swept on the command line")
                grid[key] = [str(v) for v in o.sweep_string_iterator()]
            else:
                base.append(f"{key}={o.get_value_element_as_str()}")
        return base, grid

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

    def _preflight(self, base: list[str], cells) -> None:
        """Compose every cell (or, for a search, the base) and check what they share (sedbench.preflight)."""
        from sedbench.errors import ConfigError
        from sedbench.preflight import check_sweep

        loader, composed = self.hydra_context.config_loader, []
        for cell in cells or [()]:
            try:
                composed.append((cell, loader.load_sweep_config(self.config, [*base, *cell])))
            except Exception as exc:  # Hydra's composition errors: bad key, unknown group option, bad value
                reason = " ".join(str(exc).split("Config search path")[0].split())
                raise ConfigError(f"sweep cell {' '.join(cell) or '(the base configuration)'} does not compose: "
                                  f"{reason}. Fix: correct the grid (sweeps/*.yaml or the command line)") from None
        check_sweep(composed, self.config.sweep.storage)
        return [c for _, c in composed]

    @staticmethod
    def _objective(name: str, composed):
        """The metric every cell optimizes (``optimized_metric``; ``auto`` by each cell's dataset labels): one
        study has one objective and one direction, so cells that would optimize different metrics are refused."""
        from sedbench.data.layouts import dataset_from_config
        from sedbench.errors import ConfigError
        from sedbench.metrics.registry import AUTO, objective

        found, weak = {}, {}
        for cfg in composed:
            metric = str(cfg.optimized_metric)
            if metric == AUTO:
                data = OmegaConf.to_yaml(cfg.data, resolve=True)
                if data not in weak:
                    weak[data] = dataset_from_config(cfg.data).weak
                found.setdefault(objective(metric, weak[data]).name, metric)
            else:
                found.setdefault(objective(metric).name, metric)
        if len(found) > 1:
            raise ConfigError(f"sweep {name}: its cells optimize different metrics ({', '.join(found)}: frame and "
                              "clip labels under optimized_metric=auto); one study has one objective. Fix: sweep "
                              "frame-labelled and clip-labelled datasets separately")
        return objective(f"val/{next(iter(found))}")

    def _pack(self, base: list[str], composed) -> list[str]:
        """Decide ``sweep.n_jobs`` and the threads per trial (sedbench.packing), hand the number to the launcher
        and the threads to every trial (``trainer.num_threads``, an override that does not change what a cell
        means); the decision is logged and kept on the study."""
        from hydra.core.plugins import Plugins

        from sedbench import packing

        sweep, trainer = self.config.sweep, composed[0].trainer
        kind = packing_kind(self.config)
        largest = packing.largest_model(composed) if str(sweep.n_jobs) == "auto" and kind == "local" else None
        split = packing.choose(sweep.n_jobs, trainer.get("num_threads"), largest, kind,
                               str(trainer.get("accelerator", "cpu")), memory_gb=packing.available_memory_gb())
        self.split = split
        self._say(f"sweep: {split.describe()}")
        if split.threads is not None and not trainer.get("num_threads"):
            base = [*base, f"trainer.num_threads={split.threads}"]
        if str(sweep.n_jobs) != str(split.n_jobs):
            with open_dict(self.config):
                self.config.sweep.n_jobs = split.n_jobs  # the launcher presets read ${sweep.n_jobs}
            self.launcher = Plugins.instance().instantiate_launcher(
                hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        return base

    # overrides that change where or how fast a sweep runs, not what its trials compute (paths may differ
    # between the machines of one sweep)
    NEUTRAL = ("hydra.", "hydra/", "sweep.", "tracking.", "trial.", "trainer.num_threads=", "data.num_workers=",
               "data.root=", "features.cache_dir=")

    def _check_base(self, study, name: str, base: list[str]) -> None:
        """A study's cells mean the same thing on every run: its result-relevant overrides are fixed."""
        from sedbench.errors import ConfigError

        relevant = sorted(o for o in base if not o.startswith(self.NEUTRAL))
        recorded = study.user_attrs.get("base_overrides")
        if recorded is None:
            study.set_user_attr("base_overrides", relevant)
        elif recorded != relevant:
            raise ConfigError(f"sweep {name}: started with overrides {recorded}, now {relevant}; its finished cells "
                              "would not mean the same. Fix: pass the same overrides, or a new sweep.name")

    def _check_grid(self, study, name: str) -> None:
        """A study keeps one grid: Optuna's categorical parameters cannot change their choices."""
        from sedbench.errors import ConfigError

        choices = self.grid_choices
        recorded = study.user_attrs.get("grid_choices")
        if recorded is None:
            study.set_user_attr("grid_choices", choices)
        elif recorded != choices:
            changed = sorted(k for k in set(recorded) | set(choices) if recorded.get(k) != choices.get(k))
            raise ConfigError(f"sweep {name}: the grid differs from the one this study was started with "
                              f"(keys {changed}). Fix: give the new grid its own sweep.name, or restore the grid")

    @staticmethod
    def _choices(cells) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for cell in cells:
            for c in cell:
                k, v = c.split("=", 1)
                if v not in out.setdefault(k, []):
                    out[k].append(v)
        return out

    @staticmethod
    def _suggest(trial, space) -> list[str]:
        """Define-by-run suggestion: a parameter with ``when`` is drawn only if its condition holds."""
        from sedbench.sweep import format_value

        chosen: dict[str, str] = {}
        for key, spec in (space or {}).items():
            spec = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
            cond = spec.get("when") or {}
            if any(chosen.get(k) not in [format_value(v) for v in vals] for k, vals in cond.items()):
                continue
            if "choices" in spec:
                value = trial.suggest_categorical(key, [format_value(c) for c in spec["choices"]])
            elif spec.get("int"):
                value = trial.suggest_int(key, spec["low"], spec["high"], log=spec.get("log", False))
            else:
                value = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
            chosen[key] = format_value(value)
        return [f"{k}={v}" for k, v in chosen.items()]

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

    def _tell(self, study, trial, ret) -> tuple[bool | None, dict]:
        """Record one finished job: (True = completed, False = pruned, None = failed; its metrics.json)."""
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            return self._record(study, trial, ret)
        except UpdateFinishedTrialError:  # another worker took this one for dead (no heartbeat) and failed it
            log.warning("trial %d had been failed by another worker (no heartbeat seen); its cell was retried "
                        "there, so this result is not counted (its run folder and MLflow run are kept)",
                        trial.number)
            return None, {}

    def _record(self, study, trial, ret) -> tuple[bool | None, dict]:
        import optuna
        from optuna.trial import TrialState

        from sedbench.sweep import read_metrics

        out_dir = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg is not None else None
        metrics = read_metrics(out_dir) if out_dir else {}
        for key, value in metrics.items():
            if not isinstance(value, dict):
                trial.set_user_attr(key, value)
        if out_dir:
            trial.set_user_attr("output_dir", str(out_dir))
        if ret.status == JobStatus.COMPLETED:
            value = ret.return_value
            if value is None or not math.isfinite(float(value)):
                trial.set_user_attr("error", f"objective is {value}")
                study.tell(trial, state=TrialState.FAIL)
                self._log_trial("trial %d failed: objective is %s", trial.number, value)
                return None, metrics
            study.tell(trial, float(value))
            return True, metrics
        exc = self._job_exception(ret)
        if isinstance(exc, optuna.TrialPruned):
            study.tell(trial, state=TrialState.PRUNED)
            self._log_trial("trial %d pruned", trial.number)
            return False, metrics
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
        study.tell(trial, state=TrialState.FAIL)
        self._log_trial("trial %d failed (%s: %s); the sweep goes on", trial.number, type(exc).__name__, exc)
        return None, metrics

    def _log_trial(self, message: str, *args) -> None:
        """A trial's end: logged as a warning with sweep.console=full; else its console line says it."""
        log.log(logging.DEBUG if self.console is not None else logging.WARNING, message, *args)

    @staticmethod
    def _job_exception(ret) -> BaseException:
        """The exception a failed job raised: Hydra's public ``JobReturn.return_value`` re-raises it (after
        writing "Error executing job" to stderr, which is kept out of the log: the sweep reports it itself)."""
        import contextlib
        import io

        try:
            with contextlib.redirect_stderr(io.StringIO()):
                ret.return_value  # noqa: B018 (read for the exception it raises)
        except BaseException as exc:  # any exception of the job, KeyboardInterrupt and TrialPruned included
            return exc
        raise AssertionError("a failed job without an exception")

    # ------------------------------------------------------------------ MLflow parent run
    def _parent_run(self, study, name: str) -> str | None:
        from sedbench.studies import retry
        from sedbench.tracking import RunStore

        key = "mlflow_parent_run_id"

        def keep(run_id: str) -> str:
            study.set_user_attr(key, run_id)
            return study.user_attrs.get(key)  # another worker's, if it stored its own meanwhile

        try:
            store = RunStore(self.config.tracking.uri)
            tags = {"sampler": self.config.sweep.sampler}
            return retry(lambda: store.open_sweep_run(self.config.tracking, name, tags,
                                                      study.user_attrs.get(key), keep))
        except Exception as exc:  # tracking must not stop a sweep
            log.warning("no MLflow parent run (%s)", exc)
            return None

    def _close_parent(self, run_id: str | None, status: str) -> None:
        if not run_id:
            return
        try:
            from sedbench.tracking import RunStore

            RunStore(self.config.tracking.uri).close(run_id, status)
        except Exception as exc:
            log.warning("could not close the MLflow parent run (%s)", exc)
