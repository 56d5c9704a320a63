"""Checks made before any training starts: every folder a run writes to is writable, the servers answer.

A sweep that would fail on its first write after minutes of feature extraction, or hang on a tracking
server that is down, fails here at once with the folder or URL and the fix.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sedbench.errors import ConfigError

HEALTH_TIMEOUT = 5.0  # seconds a tracking server gets to answer /health


def check_writable(path: str | Path, what: str, key: str) -> None:
    """``path`` (a folder, created later if missing) can be written: probed with a real temporary file,
    so read-only mounts, full disks and permissions all count (``os.access`` is always True for root)."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    fix = f"Fix: make it writable, or set {key} to a writable folder"
    if not existing.is_dir():
        raise ConfigError(f"{path}: cannot write the {what} there: {existing} is a file, not a folder. {fix}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sedbench-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the {what} there ({exc.strerror or exc}"
                          f"{'' if existing == path else f' in {existing}'}). {fix}") from None


def check_tracking(uri: str) -> None:
    """An MLflow tracking server (http/https URI) answers ``/health`` within a few seconds; a SQLite store that
    exists reads as one (:func:`sedbench.tracking.check_store`)."""
    from sedbench.tracking import check_store, is_server

    if not is_server(uri):
        check_store(uri)
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT) as r:
            if r.status == 200:
                return
            reason = f"HTTP {r.status}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
    raise ConfigError(f"the MLflow tracking server {uri} does not answer ({reason}). Fix: start it "
                      "(`mlflow server ...`, see docs/scale-out.md), or set tracking.uri / MLFLOW_TRACKING_URI")


def run_targets(cfg, multirun: bool) -> list[tuple[Path, str, str]]:
    """(folder, what, config key) for every place a run (or a sweep) writes to."""
    from sedbench.data.features import default_cache_dir
    from sedbench.tracking import artifact_folder, sqlite_file

    hydra = cfg.get("hydra")
    out = []
    if hydra is not None:
        out.append((Path(hydra.sweep.dir if multirun else hydra.run.dir),
                    "sweep's run folders" if multirun else "run folder",
                    "hydra.sweep.dir" if multirun else "hydra.run.dir"))
    tracking = cfg.tracking
    db = sqlite_file(str(tracking.uri))
    if db is not None:
        out.append((db.parent, "MLflow store", "tracking.uri"))
    artifacts = artifact_folder(tracking)  # None with a server: it stores artifacts itself
    if artifacts is not None:
        out.append((artifacts, "MLflow artifacts", "tracking.artifacts"))
    cache = cfg.features.get("cache_dir")
    out.append((Path(cache) if cache else default_cache_dir(), "feature cache",
                "features.cache_dir (or SEDBENCH_CACHE)"))
    if multirun:
        storage = sqlite_file(str(cfg.sweep.storage))
        if storage is not None:
            out.append((storage.parent, "Optuna storage", "sweep.storage"))
    return out


def check_run(cfg, multirun: bool) -> None:
    """Everything a run needs before it loads any data: writable folders and a live tracking server.
    (A sweep's storage is checked by the sweeper itself, before it opens the study.)"""
    for path, what, key in run_targets(cfg, multirun):
        check_writable(path, what, key)
    check_tracking(str(cfg.tracking.uri))


def check_given_roots(overrides: list[str]) -> None:
    """A ``data.root`` typed on the command line that does not exist is an error naming it, never a dataset
    generated at a misspelled path: only a root set in a config file (the data config's own, or a sweep file's)
    is generated on first use (:func:`sedbench.data.layouts.dataset_from_config`). Each value of a swept root
    (``data.root=a,b``) is checked; ``${oc.env:...}`` in a value is resolved."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from sedbench.data.layouts import data_home, is_in_data_home

    roots = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] == "data.root"]
    if not roots:
        return
    try:
        parsed = OverridesParser.create().parse_overrides(roots)
    except Exception:  # bad syntax: Hydra reports it with its own message
        return
    for override in parsed:
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        for value in values:
            try:
                root = Path(str(OmegaConf.create({"root": value}).root))
            except Exception:  # an interpolation Hydra resolves later, with its own message
                continue
            if root.exists() or not is_in_data_home(root):
                continue  # a root elsewhere that is missing is named by the dataset's reader
            home = data_home()
            have = sorted(p.name for p in home.iterdir() if p.is_dir() and not p.name.startswith(".")) \
                if home.is_dir() else []
            raise ConfigError(f"data.root={root}: no dataset there, and a root given on the command line is never "
                              f"generated (a typo would start a new dataset). Fix: check the name (the data home "
                              f"{home} has: {', '.join(have) or 'nothing yet'}); make it with `sedbench data generate "
                              "synth --out ROOT`; or leave data.root out to use the dataset's own (generated on first "
                              "use)")


def check_objective(metric: str, weak: bool | None = None) -> None:
    """``optimized_metric`` is a score validation logs (:func:`sedbench.metrics.registry.objective`); with ``weak``
    known, one the dataset's labels can produce. Its direction is honoured by every stage that ranks runs."""
    from sedbench.metrics.registry import objective

    objective(metric, weak)


def check_single(cfg) -> None:
    """A single run (``sedbench train``): its objective, folders and servers, its model keys, its precision."""
    from sedbench.hardware import check_precision
    from sedbench.models.families import model_config

    check_objective(cfg.optimized_metric)
    check_ranges_of(cfg)
    check_run(cfg, multirun=False)
    model_config(cfg.model)
    check_precision(cfg.trainer)
    check_dataset(cfg)
    check_model_fits(cfg)


def check_model_fits(cfg) -> None:
    """The model can be built on the run's features (``model.pool=[10,10,10]`` cannot pool 40 bands): built once
    here, in milliseconds, rather than after the features are extracted."""
    from sedbench.training.params import count_parameters_of

    count_parameters_of(cfg, default_classes=1)  # the classes do not decide whether it fits


def check_dataset(cfg) -> None:
    """The run's dataset exists and reads, and can produce its ``optimized_metric`` (a clip-labelled dataset
    has no frame scores): read here, before a run folder or an MLflow run exists, unless it is an embedded
    dataset still to be generated on first use (the run generates it, with its progress bar)."""
    from omegaconf import OmegaConf

    from sedbench.data.layouts import dataset_from_config, to_generate

    if to_generate(OmegaConf.to_container(cfg.data, resolve=True)):
        return
    check_objective(cfg.optimized_metric, dataset_from_config(cfg.data, generate=False).weak)


def check_ranges_of(cfg) -> None:
    """The run's numeric and enumerated settings in range (sedbench.ranges), the model's keys known first."""
    from sedbench.models.families import arch_keys, model_config
    from sedbench.ranges import check_ranges

    model = model_config(cfg.model)
    check_ranges(cfg, arch_keys(model.get("arch", "crnn")))


def check_sweep(cells: list[tuple[tuple[str, ...], object]], storage: str):
    """What the cells of a sweep share, checked once before anything is enqueued: ``cells`` are (overrides,
    composed config) pairs. The first cell's folders are writable and its tracking server answers; every
    distinct model has only known keys; every distinct trainer can run here (no emulated bf16); the Optuna
    ``storage`` answers; every distinct dataset exists and reads (the embedded ``synth`` is generated here,
    once, if it is missing) and can produce the cell's ``optimized_metric``. Cheap checks come first, so that
    nothing is read or generated for a sweep that cannot run. An error names the cell it was found in.

    Returns the objective every cell optimizes (a :class:`sedbench.metrics.registry.Metric`; ``auto`` resolved
    by each dataset's labels): one study has one objective and one direction, so cells that would optimize
    different metrics are refused."""
    from sedbench.data.layouts import dataset_from_config
    from sedbench.hardware import check_precision
    from sedbench.models.families import model_config
    from sedbench.studies import check_storage

    for metric in sorted({str(cfg.optimized_metric) for _, cfg in cells}):
        check_objective(metric)  # known at all, before anything is read
    check_run(cells[0][1], multirun=True)
    _check_each_distinct(cells, "model", model_config)
    _check_each_distinct(cells, ("model", "data", "trainer", "features"), check_ranges_of)
    _check_each_distinct(cells, ("model", "data", "features", "n_classes"), check_model_fits)
    _check_each_distinct(cells, "trainer", check_precision)
    check_storage(storage)
    found: dict[str, str] = {}

    def objective_of(cfg) -> None:
        from sedbench.metrics.registry import objective

        found.setdefault(objective(cfg.optimized_metric, dataset_from_config(cfg.data).weak).name,
                         str(cfg.optimized_metric))

    _check_each_distinct(cells, ("data", "optimized_metric"), objective_of)
    if len(found) > 1:
        raise ConfigError(f"the sweep's cells optimize different metrics ({', '.join(f'val/{m}' for m in found)}: "
                          "frame and clip labels under optimized_metric=auto); one study has one objective. Fix: "
                          "sweep frame-labelled and clip-labelled datasets separately")
    from sedbench.metrics.registry import REGISTRY

    return REGISTRY[next(iter(found))]


def _check_each_distinct(cells: list[tuple[tuple[str, ...], object]], node: str | tuple[str, ...], check) -> None:
    """``check(cfg[node])`` once per distinct value of the config node among the cells; with several nodes,
    ``check(cfg)`` once per distinct combination of their values."""
    from omegaconf import OmegaConf

    from sedbench.errors import SedbenchError

    seen: set[str] = set()
    for overrides, cfg in cells:
        nodes = node if isinstance(node, tuple) else (node,)
        values = [OmegaConf.select(cfg, n) for n in nodes]
        key = " ".join(OmegaConf.to_yaml(v, resolve=True) if OmegaConf.is_config(v) else str(v) for v in values)
        if key in seen:
            continue
        seen.add(key)
        try:
            check(cfg if isinstance(node, tuple) else cfg[node])
        except SedbenchError as exc:
            where = f" (found in sweep cell {' '.join(overrides)})" if overrides and len(cells) > 1 else ""
            raise ConfigError(f"{exc}{where}") from None
