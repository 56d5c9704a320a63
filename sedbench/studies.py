"""Optuna studies in a database (SQLite by default, any SQLAlchemy URL), through Optuna's public API.

Every call to the study's database is here: Optuna's storage, and the one table sedbench adds to it (the
claims that let exactly one worker train a trial, :class:`Claims`). Shared by the sweeps (``sedbench.sweep``
and the Hydra sweeper) and by a trial's pruning callback, which
reports to its own trial from inside the training process. Trials are addressed by the study's name and
the trial's number; the storage's public methods turn those into the ids it works with.
"""

from __future__ import annotations

import os
import socket
import time

from sedbench.tracking import DEFAULT_STORAGE, make_sqlite_folder, redact, sqlite_file, sqlite_tables


def retry(fn, attempts: int = 6, first_wait: float = 0.2):
    """Call ``fn`` again on a database error: workers starting together race to create schemas."""
    from sqlalchemy.exc import SQLAlchemyError

    for i in range(attempts):
        try:
            return fn()
        except SQLAlchemyError:
            if i == attempts - 1:
                raise
            time.sleep(first_wait * 2**i)


CONNECT_TIMEOUT = 10  # seconds to reach a database server before giving up (no hang on a silent host)


def engine_kwargs(url: str) -> dict:
    """SQLAlchemy engine options for an Optuna storage URL: SQLite waits on locks; servers time out."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 120}}
    kwargs: dict = {"pool_pre_ping": True}  # a connection the server dropped is replaced, not used
    if url.startswith(("postgresql", "mysql")):
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    return kwargs


def check_storage(url: str) -> None:
    """Connect once to a server storage and fail with a clear error (not a hang) when it does not answer; a SQLite
    file that exists must read as a database without another program's tables (an MLflow store given by mistake)."""
    from sedbench.errors import ConfigError

    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None and path.is_file():
            import sqlite3

            try:
                tables = sqlite_tables(path)
            except sqlite3.Error as exc:
                raise ConfigError(f"{path}: not a readable Optuna storage ({exc}). Fix: give sweep.storage the "
                                  "storage your sweeps wrote (a corrupt file can be restored from a copy or removed; "
                                  "its sweeps are lost)") from None
            if "experiments" in tables and "studies" not in tables:  # another process may be creating the schema:
                # only MLflow's own tables, never a schema half made, are refused
                raise ConfigError(f"{path}: a database without Optuna's tables (it is an MLflow store). Fix: give "
                                  "sweep.storage the "
                                  f"Optuna storage (by default {DEFAULT_STORAGE}), not this file")
        return
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    fix = ("Fix: start the database server, or correct sweep.storage (host, port, user, password, database); "
           "see docs/scale-out.md")
    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs(url))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"sweep.storage {redact(url)!r} is not a usable database URL ({exc}). Fix: "
                          "sqlite:///PATH, or postgresql://USER:PASSWORD@HOST:PORT/DB with psycopg installed "
                          "(pip install 'sedbench[postgres]')") from None
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise ConfigError(f"the Optuna storage {redact(url)} does not answer "
                          f"({reason[0] if reason else type(exc).__name__}). {fix}") from None
    finally:
        engine.dispose()


def read_storage(url: str, option: str = "--storage"):
    """An existing Optuna storage opened for a command that only reads it: nothing is created. A SQLite file that
    is not there, a file that is not a database, a server that does not answer or a URL that does not parse is one
    :class:`sedbench.errors.SedbenchError` naming it (password hidden) and the fix."""
    from optuna.exceptions import StorageInternalError
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import SQLAlchemyError

    from sedbench.errors import ConfigError, SedbenchError

    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise SedbenchError(f"{path}: no Optuna storage here (no sweep has run with it). Fix: run from the project "
                            f"folder whose sweeps you want, start one (e.g. `sedbench sweep demo`), or give {option} "
                            "URL")
    if path is None:
        try:
            check_storage(url)
        except ConfigError as exc:
            raise SedbenchError(str(exc).replace("sweep.storage", option)) from None
    try:
        return retry(lambda: RDBStorage(url, engine_kwargs=engine_kwargs(url), skip_table_creation=True))
    except (SQLAlchemyError, StorageInternalError, ValueError, RuntimeError) as exc:
        cause = exc.__cause__ or exc.__context__ or exc  # Optuna wraps the database's own error
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()
        why = reason[0] if reason else type(exc).__name__
        raise SedbenchError(f"{redact(url)}: not a readable Optuna storage ({why}). Fix: give {option} the storage "
                            "your sweeps wrote (a corrupt file can be restored from a copy or removed; its sweeps are "
                            "lost)") from None


def load_for_reading(url: str, name: str, option: str = "--storage"):
    """The study ``name`` of an existing storage (:func:`read_storage`); a name it lacks is one error listing the
    names it has."""
    import optuna

    from sedbench.errors import SedbenchError

    storage = read_storage(url, option)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(sorted(s.study_name for s in optuna.get_all_study_summaries(storage,
                                                                                      include_best_trial=False)))
        raise SedbenchError(f"no sweep named {name!r} in {redact(url)}. Fix: one of: {known}" if known else
                            f"no sweep named {name!r} in {redact(url)}, which has none yet. Fix: run `sedbench sweep "
                            f"{name}` first, or give {option} the storage it wrote") from None


def make_pruner(name: str):
    import optuna

    pruners = {"none": optuna.pruners.NopPruner, "median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=2),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=2)}
    if name not in pruners:
        from sedbench.errors import ConfigError

        raise ConfigError(f"sweep.pruner must be one of {sorted(pruners)}, got {name!r}")
    return pruners[name]()


class Claims:
    """The atomic step of claiming a trial, in the study's own database (table ``sedbench_claims``).

    Optuna pops a WAITING trial by reading its state, then writing RUNNING; on SQLite nothing locks the row
    between the two (``SELECT ... FOR UPDATE`` is a no-op there), so two workers can pop the same trial and
    both train it. A claim is an INSERT of (study, trial number) under a primary key: on every SQLAlchemy
    database exactly one insert succeeds, and only the worker whose insert did trains the trial.

    Create it before the study is opened: claims left by a deleted study of the same name (``optuna
    delete-study``) are dropped then, in one statement that deletes nothing once the study exists again.
    """

    TABLE = "sedbench_claims"

    def __init__(self, url: str, study_name: str):
        import uuid

        import sqlalchemy

        self.study, self.worker = study_name, f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        make_sqlite_folder(url)
        self.engine = sqlalchemy.create_engine(url, **engine_kwargs(url))
        self._sql = sqlalchemy.text
        retry(self._create)  # workers starting together race to create it
        retry(self._forget_deleted_study)

    def _create(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._sql(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (study VARCHAR(512) NOT NULL, "
                                   "trial INTEGER NOT NULL, worker VARCHAR(255) NOT NULL, "
                                   "claimed_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (study, trial))"))

    def _forget_deleted_study(self) -> None:
        """Drop this study name's claims while no study of that name exists (Optuna's ``studies`` table)."""
        from sqlalchemy import inspect

        if not inspect(self.engine).has_table("studies"):  # a new storage: no Optuna schema, no old claims
            return
        with self.engine.begin() as conn:
            conn.execute(self._sql(f"DELETE FROM {self.TABLE} WHERE study = :s AND NOT EXISTS "
                                   "(SELECT 1 FROM studies WHERE study_name = :s)"), {"s": self.study})

    def take(self, number: int) -> bool:
        """Claim trial ``number``: True for exactly one worker, however many popped it."""
        from sqlalchemy.exc import IntegrityError

        row = {"s": self.study, "t": int(number), "w": self.worker, "c": time.time()}

        def insert() -> bool:
            try:
                with self.engine.begin() as conn:
                    conn.execute(self._sql(f"INSERT INTO {self.TABLE} (study, trial, worker, claimed_at) "
                                           "VALUES (:s, :t, :w, :c)"), row)
                return True
            except IntegrityError:  # claimed already: by another worker, or by this one before a lost reply
                return self.owner(number) == self.worker

        return retry(insert)

    def owner(self, number: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(self._sql(f"SELECT worker FROM {self.TABLE} WHERE study = :s AND trial = :t"),
                                {"s": self.study, "t": int(number)}).scalar()

    def close(self) -> None:
        self.engine.dispose()


def make_storage(url: str):
    """An RDBStorage on ``url``, its folder created for SQLite; retried while workers race to create the schema."""
    from optuna.storages import RDBStorage

    make_sqlite_folder(url)
    return retry(lambda: RDBStorage(url, engine_kwargs=engine_kwargs(url)))


def open_study(name: str, storage, direction: str = "maximize", sampler=None, pruner=None):
    """The study ``name`` in ``storage`` (a URL or an RDBStorage), created when missing."""
    import optuna

    storage = make_storage(storage) if isinstance(storage, str) else storage
    return retry(lambda: optuna.create_study(study_name=name, storage=storage, direction=direction, sampler=sampler,
                                             pruner=pruner, load_if_exists=True))


def check_objective(study, name: str, metric: str, direction: str) -> None:
    """The study optimizes ``metric`` in ``direction``: named so once (the Optuna dashboard shows it instead of
    "Objective 0"); a study started with another objective or direction is refused, as its values would not
    compare."""
    from sedbench.errors import ConfigError

    if not study.metric_names:
        retry(lambda: study.set_metric_names([metric]))
    recorded, wanted = study.metric_names[0], metric
    if recorded != wanted or study.direction.name.lower() != direction:
        raise ConfigError(f"sweep {name}: this study optimizes {recorded} ({study.direction.name.lower()}), now "
                          f"{wanted} ({direction}). Fix: the same optimized_metric, or a new sweep.name")


def objective_of(study) -> tuple[str, int]:
    """The metric a study optimizes (``val/<name>``; older studies: val/f1_frm) and its sign (+1: maximize)."""
    names = study.metric_names or ["val/f1_frm"]
    return names[0], 1 if study.direction.name == "MAXIMIZE" else -1


def end_trial(storage, study_name: str, number: int, state, attrs: dict, only_if=None, value: float | None = None
              ) -> bool:
    """End trial ``number`` of a study from outside the process that asked for it (a dead worker's trial, a
    leftover waiting cell, a member of seeds trained together): set ``attrs`` as user attributes, then ``state``
    (and ``value``, for a completed trial). With ``only_if``, only while the trial is still in that state. False
    when it had finished meanwhile (another worker got there first)."""
    from optuna.exceptions import UpdateFinishedTrialError

    tid = trial_id(storage, study_name, number)
    try:
        if only_if is not None and storage.get_trial(tid).state != only_if:
            return False
        for key, attr in attrs.items():
            storage.set_trial_user_attr(tid, key, attr)
        return bool(storage.set_trial_state_values(tid, state, values=None if value is None else [float(value)]))
    except UpdateFinishedTrialError:
        return False


def trial_state(storage, study_name: str, number: int):
    """Trial ``number`` of a study as the storage holds it now (a FrozenTrial), whoever changed it last."""
    return storage.get_trial(trial_id(storage, study_name, number))


def trial_attrs(metrics: dict, output_dir: str | None, provenance_differs: list | None = None) -> dict:
    """What a finished trial keeps as Optuna user attributes: its metrics.json's figures (not its dicts), what
    produced it and how that differs from what the sweep started with (``provenance_differs``), its run folder."""
    attrs = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if metrics.get("provenance"):
        attrs["provenance"] = metrics["provenance"]
        attrs["provenance_differs"] = list(provenance_differs or [])
    if output_dir:
        attrs["output_dir"] = str(output_dir)
    return attrs


def tell_member(storage_url: str, study_name: str, number: int, result: dict, compare=None) -> bool:
    """Record the end of trial ``number`` from the process that trained it, a member of seeds trained together
    (sedbench.training.fused): as the sweep records a trial (:func:`trial_attrs`; ``compare(start, now)``, the
    provenance differences), the moment the member is recorded, so that a group killed later keeps its finished
    members and only the others are retried. ``result``: ``state`` (complete, pruned, failed), ``value`` or
    ``error``, ``output_dir``. False when the trial had finished meanwhile (a sweep took its worker for dead)."""
    from optuna.trial import TrialState

    from sedbench.tracking import read_metrics

    storage = make_storage(storage_url)
    try:
        metrics = read_metrics(result["output_dir"])
        start = storage.get_study_user_attrs(storage.get_study_id_from_name(study_name)).get("provenance")
        differs = compare(start, metrics["provenance"]) if compare and metrics.get("provenance") else None
        attrs = trial_attrs(metrics, result["output_dir"], differs)
        state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(result["state"], TrialState.FAIL)
        value = result.get("value") if state == TrialState.COMPLETE else None
        if state == TrialState.COMPLETE and (value is None or value != value or abs(value) == float("inf")):
            state, attrs["error"], value = TrialState.FAIL, f"objective is {value}", None
        if result.get("error") and state == TrialState.FAIL:
            attrs["error"] = result["error"]
        return retry(lambda: end_trial(storage, study_name, number, state, attrs, only_if=TrialState.RUNNING,
                                       value=value))
    finally:
        storage.engine.dispose()


def set_study_attr(storage_url: str, study_name: str, key: str, value) -> None:
    """A user attribute of the study itself (finished trials' attributes cannot change in Optuna: what is decided
    about them later, e.g. which runs failed by a rule over their configuration, is recorded on the study)."""
    import optuna

    retry(lambda: optuna.load_study(study_name=study_name, storage=storage_url).set_user_attr(key, value))


def trial_id(storage, study_name: str, number: int) -> int:
    """The storage's id of trial ``number`` of ``study_name``."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), int(number))


class TrialReporter:
    """Intermediate values of one trial of a stored study, reported from the process that trains it, and
    the study's pruner asked whether to stop (what ``optuna.Trial.report`` / ``should_prune`` do, for a
    trial this process did not ``ask`` for)."""

    def __init__(self, study_name: str, url: str, number: int, pruner: str):
        import optuna

        self.storage = make_storage(url)
        self.study = optuna.load_study(study_name=study_name, storage=self.storage, pruner=make_pruner(pruner))
        self.trial_id = trial_id(self.storage, study_name, number)

    def report(self, value: float, step: int) -> None:
        self.storage.set_trial_intermediate_value(self.trial_id, int(step), float(value))

    def should_prune(self) -> bool:
        return self.study.pruner.prune(self.study, self.storage.get_trial(self.trial_id))
