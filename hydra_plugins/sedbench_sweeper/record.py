"""What a finished trial leaves: its state and value told to the study, its metrics as trial attributes, its
error; the MLflow runs of dead workers ended; the sweep's MLflow parent run opened and closed."""

from __future__ import annotations

import logging
import math

from hydra.core.utils import JobStatus

log = logging.getLogger("sedbench.sweep")


class Recording:
    """The sweep's recording (a mixin of the
    sweeper, ``hydra_plugins.sedbench_sweeper.sweeper.SedbenchSweeper``, whose state it reads)."""

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

        from sedbench.errors import JobLost
        from sedbench.provenance import differences
        from sedbench.studies import trial_attrs
        from sedbench.tracking import read_metrics

        out_dir = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg is not None else None
        metrics = read_metrics(out_dir) if out_dir else {}
        # what produced it, and whether that is what the sweep started with
        differs = differences(self.provenance, metrics["provenance"]) if metrics.get("provenance") else None
        for key, value in trial_attrs(metrics, out_dir, differs).items():
            trial.set_user_attr(key, value)
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
        if isinstance(exc, JobLost):
            trial.set_user_attr("lost", True)  # the engine's loss, not the trial's failure: its cell is retried
        study.tell(trial, state=TrialState.FAIL)
        self._log_trial("trial %d failed (%s: %s); the sweep goes on", trial.number, type(exc).__name__, exc)
        return None, metrics

    def _finished(self, study, job, ret) -> list[tuple]:
        """Each trial of a finished job, recorded: ``(trial, ok, metrics)``, ok True when it completed, False
        when pruned, None when it failed."""
        if len(job.trials) == 1:
            trial = job.trials[0]
            return [(trial, *self._tell(study, trial, ret))]
        results = ret.return_value if ret.status == JobStatus.COMPLETED else None
        exc = self._job_exception(ret) if results is None else None
        return [self._member(study, trial, results, exc) for trial in job.trials]

    def _member(self, study, trial, results: dict | None, exc: BaseException | None) -> tuple:
        """A member of seeds trained together: its own process told its trial its end the moment the member was
        recorded (sedbench.training.fused); the sweep reads it back, and records it itself when that did not
        happen (the group failed as a whole, or the store was out of reach then)."""
        from sedbench.provenance import differences
        from sedbench.studies import tell_member, trial_state
        from sedbench.tracking import read_metrics

        if not trial_state(self.storage, study.study_name, trial.number).state.is_finished():
            if results is not None and trial.number in results:
                tell_member(self.config.sweep.storage, study.study_name, trial.number, results[trial.number],
                            compare=differences)
            else:
                from sedbench.errors import JobLost

                error = f"{type(exc).__name__}: {exc}"[:2000] if exc is not None else \
                    "its group ended without a result for it"
                if isinstance(exc, JobLost):
                    trial.set_user_attr("lost", True)
                self._fail_unfinished(study, [trial], error)
        frozen = trial_state(self.storage, study.study_name, trial.number)
        ok = {"COMPLETE": True, "PRUNED": False}.get(frozen.state.name)
        out_dir = frozen.user_attrs.get("output_dir")
        if ok is None:
            self._log_trial("trial %d failed (%s); the sweep goes on", trial.number, frozen.user_attrs.get("error"))
        return frozen, ok, read_metrics(out_dir) if out_dir else {}

    def _retry_lost(self, study, name: str, trials, cells) -> None:
        """Trials whose job the engine lost (``lost``: a SLURM job cancelled, a Ray node dead): their MLflow runs
        ended KILLED and their grid cells queued again in this sweep (``.schedule``'s ``_queue_again``)."""
        again = self._queue_again(study, name, trials, cells)
        if self.console is not None:
            self.console.extend(again)
        self._log_trial("trials %s were lost by the engine: %d cell(s) queued again", [t.number for t in trials],
                        again)

    def _provenance(self, study, name: str, composed) -> dict | None:
        """The provenance the sweep started with (the study's ``provenance`` attribute, set by its first launch);
        a launch on other code, libraries or datasets says so, and its trials are marked as they finish."""
        from sedbench.provenance import code_id, differences, library_changes, sweep_provenance

        try:
            now = sweep_provenance(composed)
        except Exception as exc:  # provenance must not stop a sweep whose preflight passed
            log.warning("could not fingerprint the sweep's datasets (%s); its trials are not compared", exc)
            return study.user_attrs.get("provenance")
        start = study.user_attrs.get("provenance")
        if start is None:
            study.set_user_attr("provenance", now)
            return now
        differ = differences(start, {"code": now["code"], "libraries": now["libraries"]})
        if set(now["datasets"]) - set(start.get("datasets") or []):
            differ.append("dataset")
        if differ:
            what = {"code": f"code {code_id(start.get('code'))} -> {code_id(now['code'])}",
                    "libraries": "libraries " + ", ".join(library_changes(start.get("libraries") or {},
                                                                          now["libraries"])),
                    "dataset": "another copy of the dataset (its fingerprint differs)"}
            self._say(f"sweep {name}: this launch runs on other {'; '.join(what[d] for d in differ)} than the sweep "
                      "started with: its trials are marked (sedbench status, the report)")
        return start

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

    def _end_runs(self, name: str, trials) -> None:
        """A dead worker's MLflow run stays RUNNING forever: mark it KILLED (its metrics so far are kept)."""
        try:
            from sedbench.tracking import RunStore

            RunStore(self.config.tracking.uri).kill_trial_runs(self.config.tracking, name, [t.number for t in trials])
        except Exception as exc:  # tracking must not stop a sweep
            log.warning("could not end the MLflow runs of trials %s (%s)", [t.number for t in trials], exc)

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
