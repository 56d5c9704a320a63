"""Where results are recorded, and every MLflow call sedbench makes.

- Default locations of the stores, each written once here; the configs read them through the
  ``sedbench.store`` resolver (``uri: ${sedbench.store:tracking}``) and the command line's defaults
  are the same constants.
- A training run's life in MLflow: :func:`make_logger` (the Lightning logger, its experiment and
  artifact location), :func:`log_artifact`, :func:`record` (final metrics, config, metrics.json),
  :func:`record_failure` (traceback, outcome, status).
- :class:`RunStore`: recorded runs read and amended afterwards (reports, ``sedbench evaluate``,
  the sweep's parent run, runs left behind by dead workers).

MLflow itself is imported only inside the functions that use it, so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///results/mlflow.db"   # MLflow runs (MLFLOW_TRACKING_URI wins when set)
DEFAULT_ARTIFACTS = "results/mlartifacts"              # MLflow artifacts of a local store
DEFAULT_STORAGE = "sqlite:///results/optuna.db"        # Optuna studies of the sweeps


def tracking_uri(explicit: str | None = None) -> str:
    """The MLflow store: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else the project's SQLite file."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


STORES: dict[str, Callable[[], str]] = {"tracking": tracking_uri, "artifacts": lambda: DEFAULT_ARTIFACTS,
                                        "storage": lambda: DEFAULT_STORAGE}


def register_resolver() -> None:
    """``${sedbench.store:tracking|artifacts|storage}`` in the configs: the defaults above; and
    ``${sedbench.jobs:${sweep.n_jobs}}`` in the launcher presets: the number, 1 while it is still ``auto``
    (the sweeper decides it, sedbench.packing, and hands it to the launcher before the first trial)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("sedbench.store"):
        OmegaConf.register_new_resolver("sedbench.store", lambda which: STORES[which]())
    if not OmegaConf.has_resolver("sedbench.jobs"):
        OmegaConf.register_new_resolver("sedbench.jobs", lambda n: 1 if str(n) == "auto" else int(n))


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL (Optuna storage or MLflow store), else None."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def make_sqlite_folder(url: str) -> None:
    """The folder of a ``sqlite:///PATH`` database, created so that the file can be."""
    db = sqlite_file(url)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)


def redact(url: str) -> str:
    """A database URL with its password hidden, for messages and logs."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def sqlite_tables(path: Path) -> set[str]:
    """The tables of an existing SQLite file, opened read-only (nothing is created or changed); a file that is not
    a database raises :class:`sqlite3.Error`."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def check_store(uri: str, option: str = "tracking.uri (or --tracking)") -> None:
    """An existing SQLite MLflow store reads as one, checked in milliseconds before any work: a file that is not a
    database, or a database without MLflow's tables (say, the Optuna storage given by mistake), is one
    :class:`sedbench.errors.SedbenchError` naming the file and the fix. A file not there yet is left to MLflow,
    which creates it when a run is recorded."""
    import sqlite3

    from sedbench.errors import SedbenchError

    path = sqlite_file(uri)
    if path is None or not path.is_file():
        return
    try:
        tables = sqlite_tables(path)
    except sqlite3.Error as exc:
        raise SedbenchError(f"{path}: not a readable MLflow store ({exc}). Fix: give {option} the store your "
                            "runs wrote (a corrupt file can be restored from a copy or removed; its runs are lost)"
                            ) from None
    if "studies" in tables and "experiments" not in tables:  # only Optuna's own tables, never a schema half made
        # by another process starting at the same time, are refused
        raise SedbenchError(f"{path}: a database without MLflow's tables (it is an Optuna storage). Fix: give "
                            f"{option} the MLflow store "
                            f"(by default {DEFAULT_TRACKING_URI}), not this file")


def is_server(uri: str) -> bool:
    return str(uri).startswith(("http://", "https://"))


def artifact_folder(tracking) -> Path | None:
    """The folder a local store keeps artifacts in (``tracking.artifacts``); None with a tracking server,
    which keeps them in its own store (``mlflow server --artifacts-destination``), so that workers on other
    machines need no shared file system."""
    if is_server(tracking.uri):
        return None
    return Path(tracking.get("artifacts") or DEFAULT_ARTIFACTS)


def artifact_location(tracking) -> str | None:
    folder = artifact_folder(tracking)
    return None if folder is None else folder.resolve().as_uri()


def ensure_experiment(client, tracking) -> str:
    """The experiment id of ``tracking.experiment``, created with the project's artifact folder."""
    exp = client.get_experiment_by_name(tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(tracking.experiment, artifact_location=artifact_location(tracking))
    except MlflowException:  # created by another worker meanwhile
        return client.get_experiment_by_name(tracking.experiment).experiment_id


# ---------------------------------------------------------------------------------------------- a training run
def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


def make_logger(cfg, run_name: str):
    """The run's Lightning MLflow logger, tagged (family, model, dataset, seed; sweep and trial, nested under
    the sweep's parent run) and holding every resolved config value as a parameter."""
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf
    from pytorch_lightning.loggers import MLFlowLogger

    uri = cfg.tracking.uri
    make_sqlite_folder(uri)
    ensure_experiment(MlflowClient(uri), cfg.tracking)  # made here, Lightning's logger warns on the console
    tags = {"family": cfg.model.family, "model": cfg.model.name, "dataset": cfg.data.name, "seed": str(cfg.seed)}
    trial = cfg.get("trial") or {}
    if trial.get("number") is not None:
        tags.update({"sweep": str(trial.study), "trial": str(trial.number)})
        if trial.get("parent_run_id"):
            tags["mlflow.parentRunId"] = str(trial.parent_run_id)  # nests the trial under its sweep in the UI
    logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, tracking_uri=uri, tags=tags,
                          run_name=cfg.tracking.run_name or run_name, artifact_location=artifact_location(cfg.tracking))
    logger.log_hyperparams(flatten(OmegaConf.to_container(cfg, resolve=True)))
    return logger


def provenance_tags(provenance: dict) -> dict[str, str]:
    """A run's provenance (sedbench.provenance.run_provenance) as MLflow tags ``provenance.code.commit``,
    ``provenance.libraries.torch``, ``provenance.dataset.fingerprint``, ... (lists joined, long ones cut to
    MLflow's tag length)."""
    def text(v) -> str:
        s = " ".join(map(str, v)) if isinstance(v, list) else str(v)
        return s if len(s) < 5000 else s[:4990] + " ..."

    out = {}
    for part, values in provenance.items():
        for k, v in (values or {}).items():
            out[f"provenance.{part}.{k}"] = text(v)
    return out


def tag_provenance(logger, provenance: dict) -> None:
    """Tag the run with what produced it as soon as it is known: a run that fails later still says."""
    client, run_id = logger.experiment, logger.run_id
    for key, value in provenance_tags(provenance).items():
        client.set_tag(run_id, key, value)


def log_artifact(logger, path: str | Path, artifact_path: str | None = None) -> None:
    logger.experiment.log_artifact(logger.run_id, str(path), artifact_path=artifact_path)


# metrics.json dicts that are not class-wise scores -> their MLflow prefix (one metric per class); the class-wise
# scores' own come from the metric registry (sedbench.metrics.registry)
CLASS_FIGURES = {"median_filter_s": "postprocess/median_filter_s"}


# metrics.json keys that describe the run rather than score it: kept out of MLflow's metrics (a parameter there)
NOT_METRICS = ("hop_seconds", "hardware", "provenance")
# metrics.json dicts whose entries become MLflow run tags ``<key>.<entry>``: ``hardware`` is where the run trained
# (device, CPU, GPU, CUDA, cuDNN, driver: sedbench.hardware.run_hardware) and its numerics policy
TAG_DICTS = ("hardware",)
# metrics.json keys that are also MLflow run tags: ``budget`` is ``truncated`` when the wall-clock guard ended
# training (its scores depend on the machine's speed), else ``complete``; ``convergence`` is early_stop, plateau,
# improving or truncated (sedbench.training.callbacks.convergence); ``fused_group`` names the seeds a run was
# trained together with (sedbench.training.fused)
TAGS = ("budget", "convergence", "fused_group", "energy_method", "peak_rss_scope")  # how a figure was obtained


def as_mlflow_metrics(metrics: dict) -> dict[str, float]:
    """metrics.json as MLflow metric names: class-wise dicts one metric per class, ``val/x`` as ``val/x_best``
    (beside its per-epoch curve), labels (strings) and :data:`NOT_METRICS` left out."""
    from sedbench.metrics.registry import class_wise_records

    prefixes = {**class_wise_records(), **CLASS_FIGURES}
    out = {}
    for key, value in metrics.items():
        if key in NOT_METRICS:
            continue
        if isinstance(value, dict):
            if key not in prefixes:
                raise ValueError(f"metrics.json key {key!r} holds a dict that is no registered class-wise metric "
                                 "(sedbench.metrics.registry): register it with class_wise=True")
            out.update({f"{prefixes[key]}/{label}": float(v) for label, v in value.items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{key}_best" if key.startswith("val/") else key] = float(value)
    return out


def record(logger, cfg, metrics: dict, run_dir: Path) -> None:
    """metrics.json and the resolved config in the run folder; final metrics and both files in MLflow."""
    from mlflow.entities import Metric
    from omegaconf import OmegaConf

    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    client, run_id = logger.experiment, logger.run_id
    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, 0) for k, v in as_mlflow_metrics(metrics).items()]
    for i in range(0, len(batch), 1000):  # one request per 1000 metrics (MLflow's limit), not one per metric
        client.log_batch(run_id, metrics=batch[i:i + 1000])
    tags = {key: str(metrics[key]) for key in TAGS if key in metrics}
    tags.update({f"{key}.{k}": str(v) for key in TAG_DICTS for k, v in (metrics.get(key) or {}).items()
                 if v is not None})
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for name in ("config.yaml", "metrics.json"):
        client.log_artifact(run_id, str(run_dir / name))


def read_metrics(run_dir: str | Path) -> dict:
    """A run folder's metrics.json (what :func:`record` wrote), or {} when there is none."""
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record_failure(logger, run_dir: Path, exc: BaseException) -> None:
    """Keep the traceback as an MLflow artifact and mark the run failed (killed when pruned or interrupted)."""
    import traceback

    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        (run_dir / "traceback.txt").write_text(text)
        client, run_id = logger.experiment, logger.run_id
        client.log_artifact(run_id, str(run_dir / "traceback.txt"))
        pruned = type(exc).__name__ == "TrialPruned"
        client.set_tag(run_id, "outcome", "pruned" if pruned else type(exc).__name__)
        client.set_terminated(run_id, "KILLED" if pruned or isinstance(exc, KeyboardInterrupt) else "FAILED")
    except Exception:  # recording must never hide the original error
        pass


# ---------------------------------------------------------------------------------------------- recorded runs
class RunStore:
    """Recorded runs of one MLflow store, read and amended after training."""

    def __init__(self, uri: str | None = None):
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri(uri)
        check_store(self.uri)
        self.client = MlflowClient(self.uri)

    @classmethod
    def existing(cls, uri: str | None = None, option: str = "--tracking") -> RunStore:
        """The store of a command that only reads runs: a SQLite file that is not there is one
        :class:`sedbench.errors.SedbenchError` with the fix, never a new empty store."""
        from sedbench.errors import SedbenchError

        path = sqlite_file(tracking_uri(uri))
        if path is not None and not path.is_file():
            raise SedbenchError(f"{path}: no MLflow store here (no run has been recorded in it). Fix: run from the "
                                f"project folder whose runs you want, or give {option} the store they were recorded "
                                "in")
        return cls(uri)

    def require(self, run_id: str) -> None:
        """The run exists, or a clear error with where to find run ids."""
        from mlflow.exceptions import MlflowException

        from sedbench.errors import SedbenchError

        try:
            self.client.get_run(run_id)
        except MlflowException:
            raise SedbenchError(f"no MLflow run {run_id!r} in {self.uri}. Fix: copy a run id from "
                                "`sedbench dashboard` or results/NAME/trials.csv, or pass --tracking") from None

    def read(self, run_id: str) -> tuple[dict[str, float], dict[str, str]] | None:
        """The run's metrics (latest value of each) and parameters; None when the run is gone from the store."""
        try:
            data = self.client.get_run(run_id).data
        except Exception:  # MlflowException or a store error: the run cannot be read
            return None
        return dict(data.metrics), dict(data.params)

    def history(self, run_id: str, key: str) -> dict[int, float]:
        """``step -> value`` of a metric, the latest value logged for each step."""
        entries = sorted(self.client.get_metric_history(run_id, key), key=lambda m: m.timestamp)
        return {int(m.step): m.value for m in entries}

    def download(self, run_id: str, path: str, dst: Path) -> Path | None:
        """A run's artifact downloaded under ``dst``; None when the run has no such artifact (older, toy,
        failed or weak-label runs) or is gone."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # small files, one at a time
        try:
            return Path(self.client.download_artifacts(run_id, path, str(dst)))
        except Exception:  # MlflowException, OSError: both mean "not there"
            return None

    def log_steps(self, run_id: str, series: dict[str, dict[int, float]], tags: dict[str, str]) -> None:
        """Metrics logged by step (e.g. ``pitch_shift/f1_frm`` by quarter tones) and tags, to an existing run."""
        for key, values in series.items():
            for step, value in values.items():
                self.client.log_metric(run_id, key, float(value), step=int(step))
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Tags set on an existing run (e.g. a decision the report records on each trial's run)."""
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def log_file(self, run_id: str, path: Path) -> None:
        """A file added to an existing run's artifacts (at their top level)."""
        self.client.log_artifact(run_id, str(path))

    # ------------------------------------------------------------------------------------- sweeps
    def open_sweep_run(self, tracking, name: str, tags: dict[str, str], known: str | None,
                       keep: Callable[[str], str]) -> str:
        """The sweep's parent run: ``known`` (set RUNNING again on resume), or a new one whose id ``keep``
        stores and returns; when another worker stored its own at the same moment, that one is used."""
        if known:
            self.client.update_run(known, status="RUNNING")
            return known
        exp = ensure_experiment(self.client, tracking)
        run = self.client.create_run(exp, run_name=f"sweep {name}", tags={"sweep": name, "kind": "sweep", **tags})
        stored = keep(run.info.run_id)
        if stored != run.info.run_id:
            self.client.delete_run(run.info.run_id)
        return stored

    def close(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def sweep_parent(self, sweep: str | None = None, experiment: str | None = None):
        """The parent run of the sweep ``sweep`` (the latest sweep when None) in ``experiment`` (every experiment
        when None), or None."""
        if experiment is None:
            experiments = [e.experiment_id for e in self.client.search_experiments()]
        else:
            exp = self.client.get_experiment_by_name(experiment)
            experiments = [exp.experiment_id] if exp is not None else []
        if not experiments:
            return None
        where = "tags.kind = 'sweep'" + (f" and tags.sweep = '{sweep}'" if sweep else "")
        runs = self.client.search_runs(experiments, where, order_by=["attributes.start_time DESC"], max_results=1)
        return runs[0] if runs else None

    def experiment_id(self, name: str) -> str | None:
        exp = self.client.get_experiment_by_name(name)
        return exp.experiment_id if exp is not None else None

    def runs(self, experiment_id: str, where: str = "") -> list:
        """The runs of an experiment matching an MLflow search filter (all when empty)."""
        return self.client.search_runs([experiment_id], where, max_results=5000)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.client.set_experiment_tag(experiment_id, key, value)

    def publish(self, run_id: str, files: list[Path], folder: str, description: str) -> None:
        """Files as the run's artifacts under ``folder`` and the run's description (shown when it is opened)."""
        for f in files:
            self.client.log_artifact(run_id, str(f), artifact_path=folder)
        self.client.set_tag(run_id, "mlflow.note.content", description[:8000])  # MLflow's limit for a tag

    def kill_trial_runs(self, tracking, sweep: str, trial_numbers: list[int]) -> None:
        """A dead worker's runs stay RUNNING forever: mark them KILLED (their metrics so far are kept)."""
        exp = ensure_experiment(self.client, tracking)
        for number in trial_numbers:
            runs = self.client.search_runs([exp], f"tags.sweep = '{sweep}' and tags.trial = '{number}' "
                                                  "and attributes.status = 'RUNNING'")
            for run in runs:
                self.client.set_tag(run.info.run_id, "outcome", "worker died")
                self.client.set_terminated(run.info.run_id, "KILLED")
