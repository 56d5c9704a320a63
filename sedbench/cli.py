"""``sedbench``: the command line. Subcommand first; heavy libraries load only when used."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from sedbench import __version__
from sedbench.errors import SedbenchError


def _add_mixture_args(p: argparse.ArgumentParser, minutes_train: float) -> None:
    p.add_argument("--out", type=Path, help="output folder (default: $SEDBENCH_DATA/NAME or ./data/NAME)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset (default 0)")
    p.add_argument("--minutes-train", type=float, default=minutes_train, help=f"training audio, minutes (default {minutes_train:g})")
    p.add_argument("--minutes-validation", type=float, help="validation audio, minutes (default: train / 3, i.e. 60/20/20)")
    p.add_argument("--minutes-test", type=float, help="test audio, minutes (default: train / 3)")
    p.add_argument("--mixture-seconds", type=float, default=60.0, help="length of one mixture file, s (default 60)")
    p.add_argument("--tracks", type=int, default=3, help="simultaneous layers of events (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sedbench",
        description="Grid-search and benchmark harness for polyphonic sound event detection "
                    "(CRNN study of Cakir et al., TASLP 2017).",
        epilog="Quick start: `make demo`, then `make test`. Data: `sedbench data generate synth`.")
    parser.add_argument("--version", action="version", version=f"sedbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="generate, mix, inspect, prepare and featurize datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")

    gen = dsub.add_parser("generate", help="write the embedded synthetic dataset (no download)",
                          description="Polyphonic mixtures of 16 synthesized classes built like TUT-SED Synthetic 2016.")
    gen.add_argument("name", choices=["synth"], help="dataset to generate")
    _add_mixture_args(gen, 12.0)
    gen.add_argument("--instances-per-class", type=int, default=20,
                     help="distinct sources per class, split 60/20/20 (default 20; paper: 994/16 = 62)")
    gen.add_argument("--sample-rate", type=int, default=44100, help="Hz (default 44100, as the paper)")
    gen.add_argument("--paper-size", action="store_true",
                     help="the paper's size: 100 mixtures, about 566 minutes, 62 instances per class")

    mix = dsub.add_parser("mix", help="build mixtures from a folder of isolated events (one subfolder per class)")
    mix.add_argument("--events", type=Path, required=True, help="folder of class subfolders, e.g. ESC-10")
    mix.add_argument("--name", default="esc10_mix", help="dataset name (default esc10_mix)")
    _add_mixture_args(mix, 12.0)

    info = dsub.add_parser("info", help="classes, hours per split, events per class, polyphony")
    info.add_argument("dataset", help="a dataset folder or a registered name (looked up under $SEDBENCH_DATA or ./data)")
    info.add_argument("--layout", help="force a layout (default: detected)")
    info.add_argument("--fold", type=int, default=1, help="fold for fold-based datasets (default 1)")

    prep = dsub.add_parser("prepare", help="download, verify (md5) and extract a public dataset")
    prep.add_argument("name", help="tut_sed_synth_2016, tut_sed_2016, chime_home, urban_sed, esc10, esc50")
    prep.add_argument("--root", type=Path, help="destination (default: $SEDBENCH_DATA/NAME or ./data/NAME)")
    prep.add_argument("--features", action="store_true", help="also compute and cache log-mel features")

    feat = dsub.add_parser("features", help="compute (or load from cache) the features of every file")
    feat.add_argument("dataset", help="a dataset folder or a registered name")
    feat.add_argument("--kind", default="logmel", choices=["logmel", "stft", "mfcc"])
    feat.add_argument("--cache", type=Path, help="cache folder (default: $SEDBENCH_CACHE or ~/.cache/sedbench/features)")

    for name, text in (("train", "train one configuration: sedbench train [hydra overrides], e.g. model=cnn "
                                 "model.maps=96 trainer=paper; -m for a multirun"),
                       ("params", "print the trainable parameter count: sedbench params [overrides] [n_classes=K]")):
        p = sub.add_parser(name, help=text, description=text + ". Config groups: data, features, model, trainer, "
                                                               "tracking (see conf/).")
        p.add_argument("overrides", nargs=argparse.REMAINDER, help="Hydra overrides, e.g. model.pool=[5,4,2]")

    sw = sub.add_parser("sweep", help="run sweeps/NAME.yaml on an Optuna study; the same command again resumes",
                        description="Run a sweep definition. Completed trials are never repeated; failed or "
                                    "interrupted ones are retried. Several processes may share one study.")
    sw.add_argument("name", help="a file sweeps/NAME.yaml (e.g. demo, paper_grid_crnn)")
    sw.add_argument("overrides", nargs=argparse.REMAINDER, help="Hydra overrides, e.g. data=esc10_mix sweep.n_jobs=2")

    rep = sub.add_parser("report", help="tables and plots of a sweep: results/NAME/index.md",
                         description="The paper's tables and figures from a sweep's Optuna study and MLflow runs.")
    rep.add_argument("name", help="the sweep (Optuna study) name, e.g. demo")
    rep.add_argument("--storage", default="sqlite:///results/optuna.db", help="Optuna storage URL")
    rep.add_argument("--tracking", default=None, help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or "
                                                        "sqlite:///results/mlflow.db)")
    rep.add_argument("--out", type=Path, help="output folder (default results/NAME)")

    ev = sub.add_parser("evaluate", help="re-score recorded runs' best weights, e.g. on pitch-shifted test audio",
                        description="Re-score the best weights of recorded runs on their test data (or data=... "
                                    "overrides), with the test audio pitch-shifted by quarter tones through librosa "
                                    "(paper Fig. 5). Logs pitch_shift/* to the same MLflow runs; the sweep's "
                                    "report then adds pitch_shift.png.")
    ev.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                    help="MLflow run ids, then optional data overrides, e.g. data=synth data.root=/other/test/set")
    ev.add_argument("--sweep", help="instead of run ids: the best trial of each family in this sweep")
    ev.add_argument("--pitch-shift", default="", help="quarter tones, comma-separated, e.g. -2,-1,1,2")
    ev.add_argument("--storage", default="sqlite:///results/optuna.db", help="Optuna storage URL (with --sweep)")
    ev.add_argument("--tracking", default=None, help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or "
                                                      "sqlite:///results/mlflow.db)")

    dash = sub.add_parser("dashboard", help="the MLflow UI (and --optuna: the Optuna dashboard) on 127.0.0.1",
                          description="Browse runs and sweeps. Serves the project's MLflow store on 127.0.0.1; "
                                      "Ctrl-C stops the servers and every worker process they started.")
    dash.add_argument("--port", type=int, default=5000, help="MLflow UI port (default 5000)")
    dash.add_argument("--optuna", action="store_true", help="also serve the Optuna dashboard over --storage")
    dash.add_argument("--optuna-port", type=int, default=8080, help="Optuna dashboard port (default 8080)")
    dash.add_argument("--tracking", default=None, help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or "
                                                        "sqlite:///results/mlflow.db)")
    dash.add_argument("--storage", default="sqlite:///results/optuna.db", help="Optuna storage URL")
    dash.add_argument("--artifacts", type=Path, default=Path("results/mlartifacts"),
                      help="artifact folder for experiments created from the UI (default results/mlartifacts)")
    dash.add_argument("--workers", type=int, default=1, help="MLflow server worker processes (default 1)")
    dash.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine "
                                                         "only; anything else exposes the stores without a login)")

    score = sub.add_parser("score", help="score a system output against a reference (DCASE tsv files)",
                           description="Segment-based F1, precision, recall and error rate, micro-averaged over "
                                       "files, computed exactly as sed_eval does (or by sed_eval itself).")
    score.add_argument("reference", type=Path, help="reference tsv: filename onset offset event_label")
    score.add_argument("estimated", type=Path, help="system output tsv, same columns")
    score.add_argument("--resolution", type=float, action="append",
                       help="segment length in seconds; repeatable (default: 0.02 and 1.0, F1_frm and F1_1sec)")
    score.add_argument("--engine", choices=["fast", "sed_eval"], default="fast",
                       help="fast (vectorized, equal to sed_eval) or the sed_eval reference implementation")
    score.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser


HYDRA_TASKS = ("train", "params", "sweep")


def conf_dir() -> Path:
    """The Hydra config folder: $SEDBENCH_CONF or the repository's conf/."""
    import os

    return Path(os.environ.get("SEDBENCH_CONF") or Path(__file__).resolve().parents[1] / "conf")


def run_hydra(task: str, overrides: list[str]) -> int:
    """Run ``task`` under Hydra's own command line (overrides, -m multirun, --cfg job, ...)."""
    import hydra

    from sedbench.training import train as tasks

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
        overrides = ["-m", f"+sweeps={name}", f"hydra.searchpath=[file://{folder.parent}]", *overrides]
    if task != "params":
        preflight(folder, overrides)
    fn = _clean_errors({"train": tasks.train, "params": tasks.params, "sweep": tasks.train}[task])
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
    return 0


# Hydra flags that print or inspect instead of running
INSPECT_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve", "--package", "-p",
                 "--shell-completion", "-sc"}


def preflight(folder: Path, overrides: list[str]) -> None:
    """Before Hydra creates anything for a single run: compose its config and check that every folder it
    writes to can be written and that its servers answer (sedbench.preflight). A multirun is checked by the
    sweeper, once for all its cells, before it enqueues anything."""
    if INSPECT_FLAGS & set(overrides) or "-m" in overrides or "--multirun" in overrides:
        return
    from hydra import compose, initialize_config_dir

    from sedbench.preflight import check_run

    try:
        with initialize_config_dir(config_dir=str(folder), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    except Exception:  # a bad override: Hydra itself reports it, with its own message
        return
    check_run(cfg, multirun=False)


def _clean_errors(fn):
    """User errors (bad data, impossible config) end a single run with the message, not a traceback.

    In a multirun the exception goes on to the sweeper, which records the trial as failed.
    """
    import functools

    @functools.wraps(fn)
    def wrapped(cfg):
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        try:
            return fn(cfg)
        except SedbenchError as exc:
            if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapped


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in HYDRA_TASKS and not {"-h", "--help"} & set(argv[1:2]):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
        try:
            return run_hydra(argv[0], argv[1:])
        except SedbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "score":
            return cmd_score(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "dashboard":
            from sedbench.dashboard import serve

            return serve(tracking_uri(args), args.port, args.artifacts, args.storage if args.optuna else None,
                         args.optuna_port, args.workers, log=Path("results/dashboard.log"), host=args.host)
        if args.command == "data":
            if args.data_command is None:
                parser.parse_args(["data", "--help"])
            return DATA_COMMANDS[args.data_command](args)
    except SedbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def _out(args, name: str) -> Path:
    from sedbench.data.layouts import data_home

    return args.out if args.out is not None else data_home() / name


def cmd_generate(args) -> int:
    from sedbench.data.synth import generate_synth

    out = _out(args, "synth")
    t0 = time.perf_counter()
    minutes = generate_synth(out, seed=args.seed, minutes_train=args.minutes_train,
                             minutes_validation=args.minutes_validation, minutes_test=args.minutes_test,
                             mixture_seconds=args.mixture_seconds, tracks=args.tracks,
                             instances_per_class=args.instances_per_class, sample_rate=args.sample_rate,
                             paper_size=args.paper_size, overwrite=args.overwrite, progress=not args.quiet)
    secs = 60 * sum(minutes.values())
    wall = time.perf_counter() - t0
    print(f"wrote {out}: {secs / 60:.1f} min of audio in {wall:.1f} s ({secs / wall:.0f}x real time)")
    return 0


def cmd_mix(args) -> int:
    from sedbench.data.mix import (
        EventFolderBank,
        MixtureRecipe,
        split_minutes,
        write_mixture_dataset,
    )

    bank = EventFolderBank(args.events, seed=args.seed)
    minutes = split_minutes(args.minutes_train, args.minutes_validation, args.minutes_test)
    recipe = MixtureRecipe(mixture_seconds=args.mixture_seconds, tracks=args.tracks)
    readmes = sorted(args.events.glob("README*"))
    files = {"SOURCE_README.md": f"Source events: {args.events.resolve()}\n\n" + readmes[0].read_text(encoding="utf-8")} \
        if readmes else {}
    out = _out(args, args.name)
    t0 = time.perf_counter()
    write_mixture_dataset(out, args.name, bank, recipe, minutes, bank.sample_rate, args.seed,
                          overwrite=args.overwrite, progress=not args.quiet, extra_files=files,
                          extra={"source_events": str(args.events.resolve())})
    print(f"wrote {out} from {args.events} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_info(args) -> int:
    from sedbench.data.info import format_info
    from sedbench.data.layouts import load_dataset

    print(format_info(load_dataset(args.dataset, layout=args.layout, fold=args.fold)))
    return 0


def cmd_prepare(args) -> int:
    from sedbench.data.layouts import data_home
    from sedbench.data.prepare import prepare

    root = prepare(args.name, args.root or data_home() / args.name)
    print(f"{args.name} ready in {root}")
    if args.features:
        from sedbench.data.layouts import load_dataset

        _featurize(load_dataset(args.name, root=root), None, "logmel")
    return 0


def cmd_features(args) -> int:
    from sedbench.data.layouts import load_dataset

    _featurize(load_dataset(args.dataset), args.cache, args.kind)
    return 0


def _featurize(ds, cache_dir: Path | None, kind: str) -> None:
    from sedbench.data.datamodule import split_features
    from sedbench.data.features import FeatureCache, FeatureParams

    cache = FeatureCache(cache_dir)
    params = FeatureParams(kind=kind)
    t0 = time.perf_counter()
    secs = 0.0
    for split in ds.splits:
        split_features(ds, split, params, cache)
        secs += sum(r.duration or 0.0 for r in ds.recordings(split))
    wall = time.perf_counter() - t0
    print(f"{ds.name}: {params.kind} features of {secs / 60:.1f} min of audio in {wall:.2f} s "
          f"({secs / wall:.0f}x real time; cache {cache.dir}: {cache.hits} hits, {cache.misses} computed)")


DATA_COMMANDS = {"generate": cmd_generate, "mix": cmd_mix, "info": cmd_info, "prepare": cmd_prepare,
                 "features": cmd_features}


def cmd_score(args) -> int:
    import json

    from sedbench.data.annotations import read_event_table
    from sedbench.metrics.segment import group_by_file, segment_scores

    ref = group_by_file((name, ev) for _, name, ev in read_event_table(args.reference))
    est = group_by_file((name, ev) for _, name, ev in read_event_table(args.estimated))
    classes = sorted({e.label for evs in (*ref.values(), *est.values()) for e in evs})
    if args.engine == "sed_eval":
        from sedbench.metrics.event import sed_eval_segment as engine
    else:
        engine = segment_scores
    results = {}
    for res in args.resolution or [0.02, 1.0]:
        t0 = time.perf_counter()
        results[res] = (engine(ref, est, classes, res), time.perf_counter() - t0)
    if args.json:
        print(json.dumps({f"{res:g}": {"overall": r.overall, "class_wise": r.class_wise, "class_average": r.class_average,
                                        "files": r.files, "evaluated_seconds": r.evaluated_seconds, "seconds": round(t, 4)}
                          for res, (r, t) in results.items()}, indent=2, default=float))
        return 0
    from sedbench.report.text import score_table

    for res, (r, t) in results.items():
        print(score_table(r, f"segment-based, {res:g}-s segments ({args.engine}, {t:.3f} s)"))
    return 0


def tracking_uri(args) -> str:
    import os

    return args.tracking or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///results/mlflow.db"


def cmd_evaluate(args) -> int:
    from sedbench.training.evaluate import evaluate_run, format_results, parse_shifts

    shifts = parse_shifts(args.pitch_shift)
    overrides = [a for a in args.run_ids if "=" in a]
    run_ids = [a for a in args.run_ids if "=" not in a]
    if args.sweep:
        from sedbench.report.collect import collect
        from sedbench.report.write import best_per_family

        try:
            rows, _ = collect(args.sweep, args.storage, None)
        except KeyError:
            raise SedbenchError(f"no sweep named {args.sweep!r} in {args.storage}. Fix: run `sedbench sweep "
                                f"{args.sweep}` first, or pass --storage") from None
        best = {r.attrs["mlflow_run_id"]: r.family for r in best_per_family(rows).values() if r.attrs.get("mlflow_run_id")}
    else:
        best = {}
    if not run_ids and not best:
        raise SedbenchError("nothing to evaluate. Fix: give MLflow run ids or --sweep NAME")
    for run_id in run_ids:
        print(format_results(run_id, evaluate_run(run_id, tracking_uri(args), shifts, overrides)))
    for run_id, family in best.items():  # a sweep's best runs: one that cannot be evaluated does not stop the rest
        try:
            print(format_results(f"{run_id} ({family})", evaluate_run(run_id, tracking_uri(args), shifts, overrides)))
        except SedbenchError as exc:
            print(f"skipped {run_id} ({family}): {exc}", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from sedbench.report.write import write_report

    tracking = tracking_uri(args)
    try:
        out = write_report(args.name, args.storage, tracking, args.out or Path("results") / args.name)
    except KeyError:
        raise SedbenchError(f"no sweep named {args.name!r} in {args.storage}. Fix: run `sedbench sweep "
                            f"{args.name}` first, or pass --storage") from None
    print(f"report: {out / 'index.md'}")
    return 0
