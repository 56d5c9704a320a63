"""Hydra start-up for ``sedbench train``, ``sedbench params`` and ``sedbench sweep``.

The command line hands these tasks their overrides; this module finds the config folder,
checks a single run before Hydra creates anything for it, and runs the task under Hydra's
own command line (overrides, ``-m`` multirun, ``--cfg job``, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sedbench.errors import SedbenchError

HYDRA_TASKS = ("train", "params", "sweep")


def conf_dir() -> Path:
    """The Hydra config folder: $SEDBENCH_CONF or the repository's conf/."""
    import os

    return Path(os.environ.get("SEDBENCH_CONF") or Path(__file__).resolve().parents[2] / "conf")


def run_hydra(task: str, overrides: list[str]) -> int:
    """Run ``task`` under Hydra's own command line (overrides, -m multirun, --cfg job, ...); ``-v`` anywhere:
    ``sweep.console=full`` (every line of every library and trial, as it comes)."""
    import hydra

    verbose = [o for o in overrides if o in ("-v", "--verbose")]
    overrides = [o for o in overrides if o not in verbose] + (["sweep.console=full"] if verbose else [])

    from sedbench.tracking import register_resolver
    from sedbench.training.fused import train_job
    from sedbench.training.params import params

    register_resolver()
    folder = conf_dir()
    if not (folder / "config.yaml").is_file():
        raise SedbenchError(f"{folder}: Hydra configs not found. Fix: run from a sedbench checkout "
                            "(pip install -e .) or set SEDBENCH_CONF to its conf/ folder")
    if task == "sweep":
        if not overrides or overrides[0].startswith("-") or "=" in overrides[0]:
            raise SedbenchError("usage: sedbench sweep NAME [overrides]; NAME is a file sweeps/NAME.yaml")
        name, overrides = overrides[0], overrides[1:]
        sweeps = folder.parent / "sweeps"
        if not (sweeps / f"{name}.yaml").is_file():
            known = ", ".join(sorted(p.stem for p in sweeps.glob("*.yaml")))
            raise SedbenchError(f"{sweeps / name}.yaml: no such sweep. Fix: one of {known}")
        inspect = bool(INSPECT_FLAGS & set(overrides))  # --cfg job shows the sweep's base config: no multirun
        overrides = [*([] if inspect else ["-m"]), f"+sweeps={name}", f"hydra.searchpath=[file://{folder.parent}]",
                     *overrides]
    inspect = sorted(INSPECT_FLAGS & set(overrides))
    if inspect and ("-m" in overrides or "--multirun" in overrides):
        raise SedbenchError(f"-m and {inspect[0]} cannot go together: Hydra prints or runs, not both. Fix: drop -m to "
                            f"print one cell's configuration (sedbench {task} {inspect[0]} ...), or drop "
                            f"{inspect[0]} to run the sweep")
    cfg = None if inspect else check_composes(folder, overrides)
    if task == "params":
        from sedbench.preflight import check_ranges_of

        check_ranges_of(cfg if cfg is not None else compose(overrides, folder=folder))
    else:
        from sedbench.preflight import check_given_roots

        check_given_roots(overrides)
        preflight(folder, overrides, cfg)
    fn = as_task({"train": train_job, "params": params, "sweep": train_job}[task])
    saved = sys.argv
    if task == "params":  # a count, not a run: no output folder, no log file
        overrides = [*overrides, "hydra.output_subdir=null", "hydra.run.dir=.", "hydra/job_logging=none",
                     "hydra/hydra_logging=none"]
    sys.argv = [f"sedbench {task}", *overrides]
    try:
        hydra.main(config_path=str(folder), config_name="config", version_base="1.3")(fn)()
    except SystemExit as exc:  # Hydra exits on its own errors (bad override syntax, unknown key)
        return int(exc.code or 0)
    finally:
        sys.argv = saved
        _forget_hydra()
    return 0


def _forget_hydra() -> None:
    """Hydra keeps the last run's config in process-wide singletons: cleared, so that a later run or sweep in the
    same process (a notebook, a test, ``sedbench.bench``) composes afresh and ``train(cfg)`` called directly does
    not take that run's output folder for its own."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


def compose(overrides=(), hydra: bool = False, folder: Path | None = None):
    """The root config composed with ``overrides``, outside any Hydra run (``hydra=True`` adds its node)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from sedbench.tracking import register_resolver

    register_resolver()
    with initialize_config_dir(config_dir=str(folder or conf_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


# Hydra flags that print or inspect instead of running
INSPECT_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve", "--package", "-p",
                 "--shell-completion", "-sc"}


def one_value_each(overrides: list[str]) -> list[str] | None:
    """The overrides of a command line with every sweep (``a,b``, ``range(...)``, ``choice(...)``) reduced to its
    first value, flags dropped: what one cell composes from (None: a sweep only Hydra expands). A line Hydra
    cannot parse, or a sweep without ``-m``, is one :class:`SedbenchError` naming it and the fix."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser, out = OverridesParser.create(), []
    multirun = "-m" in overrides or "--multirun" in overrides
    for line in (o for o in overrides if not o.startswith("-")):
        try:
            (override,) = parser.parse_overrides([line])
        except OverrideParseException as exc:
            reason = " ".join(str(exc).split("See https://")[0].split())
            raise SedbenchError(f"{line!r} is not a valid override ({reason}). Fix: KEY=VALUE, +KEY=VALUE to add a "
                                "key, KEY=a,b to sweep (quote brackets and spaces for the shell); see "
                                "https://hydra.cc/docs/advanced/override_grammar/basic/") from None
        if override.is_sweep_override() and not multirun:
            raise SedbenchError(f"{line}: several values in one run. Fix: -m to sweep them (sedbench train -m ...), "
                                "or give one value")
        if override.is_sweep_override():
            try:
                line = f"{line.split('=', 1)[0]}={next(iter(override.sweep_string_iterator()))}"
            except Exception:  # a sweep Hydra expands itself (glob(...) of group options): its cells are checked
                return None    # by the sweeper, each composed
        out.append(line)
    return out


def check_composes(folder: Path, overrides: list[str]):
    """Hydra's own errors (a group option or key the configs lack, a value of the wrong type, a line it cannot
    parse) as one line with the fix, before Hydra starts; a sweep's cells are composed again by its sweeper.
    Returns the composed configuration (a sweep's first cell), None when only Hydra can expand the sweep."""
    one = one_value_each(overrides)
    if one is None:
        return None
    try:
        return compose(one, hydra=True, folder=folder)
    except SedbenchError:
        raise
    except Exception as exc:
        unknown_override(exc, one, folder)  # a model key: its own message, naming the model's settings
        reason = " ".join(str(exc).split("Config search path")[0].split("full_key:")[0].split())
        raise SedbenchError(f"the overrides do not compose: {reason.rstrip('.')}. Fix: correct that override "
                            "(`sedbench train --cfg job` prints the composed configuration)") from None


def preflight(folder: Path, overrides: list[str], cfg=None) -> None:
    """Before Hydra creates anything for a single run: compose its config and check it (sedbench.preflight:
    writable folders, live servers, known model keys, a precision this CPU runs natively), so that a typo
    fails at once, not after the data is read. A multirun is checked by the sweeper, once for all its cells,
    before it enqueues anything."""
    if INSPECT_FLAGS & set(overrides) or "-m" in overrides or "--multirun" in overrides:
        return
    from sedbench.preflight import check_single

    check_single(cfg if cfg is not None else compose(overrides, hydra=True, folder=folder))


def unknown_override(exc: Exception, overrides: list[str], folder: Path) -> None:
    """Hydra refuses ``model.poool=[4]`` (a key the config does not have) with "not in struct": for a model
    key, raise sedbench's error naming the key and the model's settings instead."""
    import re

    match = re.search(r"Could not override '(model\.[^']+)'", str(exc))
    if not match:
        return
    key = match.group(1)
    rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    try:
        model = dict(compose(rest, folder=folder).model)
    except Exception:  # the other overrides fail too: Hydra reports them
        return
    from sedbench.models.families import model_config

    model[key.split(".", 1)[1]] = None
    model_config(model)  # raises ConfigError: "model.poool is not a setting of model.arch=crnn ... Fix: ..."


def as_task(fn):
    """User errors (bad data, impossible config) end a single run with the message, not a traceback.

    In a multirun the exception goes on to the sweeper, which records the trial as failed; and the process
    that runs a trial is made to end with the sweep that started it (``sedbench.packing.exit_with_sweeper``),
    here in the launch layer, so that training itself knows nothing of the sweep's processes.
    """
    import functools

    @functools.wraps(fn)
    def wrapped(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            from sedbench.packing import claim_gpu, exit_with_sweeper

            trial = cfg.get("trial") or {}
            exit_with_sweeper(trial.get("sweeper_pid"))  # a worker process ends with its sweep
            if trial.get("gpus"):  # a multi-GPU sweep: this process's GPU, before anything touches CUDA
                import tempfile

                claim_gpu(str(trial.gpus).split(","), int(trial.per_gpu or 1),
                          Path(tempfile.gettempdir()) / f"sedbench-gpu-slots-{trial.get('sweeper_pid')}")
        from sedbench.errors import Terminated

        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        try:  # SIGTERM is raised as Terminated, a KeyboardInterrupt (sedbench.commands.cli.main)
            return fn(cfg)
        except SedbenchError as exc:
            if multirun:
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt as exc:  # the run is recorded KILLED (sedbench.tracking.record_failure)
            if multirun:
                raise
            what, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
            print(f"interrupted ({what}): a run already recorded is marked KILLED with what it had", file=sys.stderr)
            raise SystemExit(code) from None

    return wrapped
