"""Optuna studies in a database (SQLite by default, any SQLAlchemy URL), through Optuna's public API.

Shared by the sweeps (``sedbench.sweep`` and the Hydra sweeper) and by a trial's pruning callback, which
reports to its own trial from inside the training process. Trials are addressed by the study's name and
the trial's number; the storage's public methods turn those into the ids it works with.
"""

from __future__ import annotations

import time

from sedbench.tracking import make_sqlite_folder, redact


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
    """Connect once to a server storage and fail with a clear error (not a hang) when it does not answer."""
    from sedbench.errors import ConfigError

    if url.startswith("sqlite"):
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


def make_pruner(name: str):
    import optuna

    pruners = {"none": optuna.pruners.NopPruner, "median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=2),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=2)}
    if name not in pruners:
        from sedbench.errors import ConfigError

        raise ConfigError(f"sweep.pruner must be one of {sorted(pruners)}, got {name!r}")
    return pruners[name]()


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


def end_trial(storage, study_name: str, number: int, state, attrs: dict, only_if=None) -> bool:
    """End trial ``number`` of a study from outside the process that asked for it (a dead worker's trial, a
    leftover waiting cell): set ``attrs`` as user attributes, then ``state``. With ``only_if``, only while the
    trial is still in that state. False when it had finished meanwhile (another worker got there first)."""
    from optuna.exceptions import UpdateFinishedTrialError

    tid = trial_id(storage, study_name, number)
    try:
        if only_if is not None and storage.get_trial(tid).state != only_if:
            return False
        for key, value in attrs.items():
            storage.set_trial_user_attr(tid, key, value)
        return bool(storage.set_trial_state_values(tid, state))
    except UpdateFinishedTrialError:
        return False


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
