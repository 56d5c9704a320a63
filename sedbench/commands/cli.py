"""``sedbench``: the command line. Subcommand first; heavy libraries load only when used."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sedbench import __version__
from sedbench.console import quiet_libraries
from sedbench.errors import SedbenchError
from sedbench.tracking import DEFAULT_ARTIFACTS, DEFAULT_STORAGE, DEFAULT_TRACKING_URI

TRACKING_HELP = f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})"
STORAGE_HELP = f"Optuna storage URL (default {DEFAULT_STORAGE})"


def _add_mixture_args(p: argparse.ArgumentParser, minutes_train: float) -> None:
    p.add_argument("--out", type=Path, help="output folder (default: $SEDBENCH_DATA/NAME or ./data/NAME)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset (default 0)")
    p.add_argument("--minutes-train", type=float, default=minutes_train,
                   help=f"training audio, minutes (default {minutes_train:g})")
    p.add_argument("--minutes-validation", type=float, help="validation audio, minutes (default: train / 3)")
    p.add_argument("--minutes-test", type=float, help="test audio, minutes (default: train / 3)")
    p.add_argument("--mixture-seconds", type=float, default=60.0, help="length of one mixture file, s (default 60)")
    p.add_argument("--tracks", type=int, default=3, help="simultaneous layers of events (default 3)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def feature_kinds() -> list[str]:
    """The feature configs of conf/features (``data features --kind``)."""
    from sedbench.commands.launch import conf_dir

    return sorted(p.stem for p in (conf_dir() / "features").glob("*.yaml"))


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
                          description="Polyphonic mixtures of 16 synthesized classes, built like TUT-SED "
                                      "Synthetic 2016.")
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
    info.add_argument("dataset", help="a dataset folder or a registered name (under $SEDBENCH_DATA or ./data)")
    info.add_argument("--layout", help="force a layout (default: detected)")
    info.add_argument("--fold", type=int, help="test fold of a cross-validated dataset (default 1)")

    prep = dsub.add_parser("prepare", help="download, verify (md5) and extract a public dataset")
    prep.add_argument("name", help="tut_sed_synth_2016, tut_sed_2016, chime_home, urban_sed, esc10, esc50")
    prep.add_argument("--root", type=Path, help="destination (default: $SEDBENCH_DATA/NAME or ./data/NAME)")
    prep.add_argument("--features", action="store_true", help="also compute and cache log-mel features")

    feat = dsub.add_parser("features", help="compute (or load from cache) the features of every file")
    feat.add_argument("dataset", help="a dataset folder or a registered name")
    feat.add_argument("--kind", default="logmel", choices=feature_kinds(),
                      help="a feature config of conf/features, with its settings (default logmel)")
    feat.add_argument("--cache", type=Path, help="cache folder (default: the config's, $SEDBENCH_CACHE or "
                                                  "~/.cache/sedbench/features)")

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

    rep = sub.add_parser("report", help="tables and plots of a sweep: results/NAME/index.md and index.html",
                         description="The paper's tables and figures from a sweep's Optuna study and MLflow runs: "
                                     "Markdown and PNG (for papers) and index.html (one self-contained page whose "
                                     "figures show each trial on hover and open its MLflow run on click). The "
                                     "report is also logged to the sweep's parent MLflow run.")
    rep.add_argument("name", help="the sweep (Optuna study) name, e.g. demo")
    rep.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    rep.add_argument("--tracking", default=None, help=TRACKING_HELP)
    rep.add_argument("--out", type=Path, help="output folder (default results/NAME)")
    rep.add_argument("--html", action="store_true", help="accepted for clarity: index.html is always written")
    rep.add_argument("--mlflow-url", default="http://127.0.0.1:5000",
                     help="address of the MLflow UI the page links runs to (default: `sedbench dashboard`'s)")

    ev = sub.add_parser("evaluate", help="re-score recorded runs' best weights, e.g. on pitch-shifted test audio",
                        description="Re-score the best weights of recorded runs on their test data (or data=... "
                                    "overrides), with the test audio pitch-shifted by quarter tones through librosa "
                                    "(paper Fig. 5). Logs pitch_shift/* to the same MLflow runs; the sweep's "
                                    "report then adds pitch_shift.png.")
    ev.add_argument("run_ids", nargs="*", metavar="RUN_ID",
                    help="MLflow run ids, then optional data overrides, e.g. data=synth data.root=/other/test/set")
    ev.add_argument("--sweep", help="also every seed of each family's best configuration in this sweep")
    ev.add_argument("--pitch-shift", default="", help="quarter tones, comma-separated, e.g. -2,-1,1,2")
    ev.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP + ", with --sweep")
    ev.add_argument("--tracking", default=None, help=TRACKING_HELP)

    dash = sub.add_parser("dashboard", help="the MLflow UI (and --optuna: the Optuna dashboard) on 127.0.0.1",
                          description="Browse runs and sweeps. Serves the project's MLflow store on 127.0.0.1; "
                                      "Ctrl-C stops the servers and every worker process they started.")
    dash.add_argument("--port", type=int, default=5000, help="MLflow UI port (default 5000)")
    dash.add_argument("--sweep", help="the sweep to land on (default: the latest one in the store)")
    dash.add_argument("--open", action="store_true", help="open the printed addresses in the default browser")
    dash.add_argument("--optuna", action="store_true", help="also serve the Optuna dashboard over --storage")
    dash.add_argument("--optuna-port", type=int, default=8080, help="Optuna dashboard port (default 8080)")
    dash.add_argument("--tracking", default=None, help=TRACKING_HELP)
    dash.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    dash.add_argument("--artifacts", type=Path, default=Path(DEFAULT_ARTIFACTS),
                      help=f"artifact folder for experiments created from the UI (default {DEFAULT_ARTIFACTS})")
    dash.add_argument("--workers", type=int, default=1, help="MLflow server worker processes (default 1)")
    dash.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine "
                                                         "only; anything else exposes the stores without a login)")

    score = sub.add_parser(
        "score", help="score a system output against a reference (event lists in any sed_eval layout; PSDS)",
        description="Segment-based (the paper's F1/ER on frames and 1-s segments) and event-based scores of event "
                    "lists, computed exactly as sed_eval does; with --scores, PSDS1/PSDS2 and ROC AUC from frame "
                    "scores as sed_scores_eval computes them. Lists: 'filename onset offset event_label' tables "
                    "(tab, comma, semicolon or spaces; header optional, DESED/DCASE tsv), 5 columns with a scene, "
                    "per-file 'onset offset [event_label]' lists (TUT-SED .ann), or two folders of per-file lists "
                    "paired by base name. See docs/metrics.md.")
    score.add_argument("reference", type=Path, help="reference events: a table, a per-file list or a folder of lists")
    score.add_argument("estimated", type=Path, nargs="?",
                       help="system output events, the same way (optional with --scores)")
    score.add_argument("--scores", type=Path, metavar="DIR",
                       help="folder of per-file score tables (sed_scores_eval layout: <file>.tsv with columns onset "
                            "offset <class>...): adds PSDS1, PSDS2 and 1-s segment ROC AUC")
    score.add_argument("--durations", type=Path, metavar="TSV",
                       help="'filename duration' table for PSDS (default: each score table's last offset)")
    score.add_argument("--resolution", type=float, action="append",
                       help="segment length in seconds; repeatable (default: 0.02 and 1.0, F1_frm and F1_1sec)")
    score.add_argument("--engine", choices=["fast", "sed_eval"], default="fast",
                       help="fast (sedbench's paths, equal to sed_eval) or sed_eval's own implementation")
    score.add_argument("--no-events", action="store_true", help="skip the event-based scores")
    score.add_argument("--bootstrap", type=int, default=0, metavar="N",
                       help="95 %% intervals over files of every overall score from N bootstrap draws (e.g. 2000)")
    score.add_argument("--label", default="event",
                       help="class name for lists without labels ('onset offset' lines; default 'event')")
    score.add_argument("--json", action="store_true", help="print JSON instead of tables")
    from sedbench.commands import compare, status

    for module in (compare, status):  # subcommands that register themselves (parser and handler)
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("train", "params", "sweep") and not {"-h", "--help"} & set(argv[1:2]):
        from sedbench.commands.launch import run_hydra

        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
        try:
            return run_hydra(argv[0], argv[1:])
        except SedbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    quiet_libraries(verbose=args.verbose)  # known noise of the libraries the command will import (-v: all)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "data" and args.data_command is None:
        parser.parse_args(["data", "--help"])
    try:
        if args.command == "data":
            from sedbench.commands.data import COMMANDS as DATA

            return DATA[args.data_command](args) or 0
        return (getattr(args, "handler", None) or COMMANDS[args.command])(args) or 0
    except SedbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_score(args) -> None:
    from sedbench.commands.score import as_json, as_text, intervals, score_event_files, score_probabilities
    from sedbench.errors import SedbenchError

    if args.estimated is None and args.scores is None:
        raise SedbenchError("nothing to score. Fix: give the system's event list after the reference, or --scores DIR")
    if args.bootstrap < 0:
        raise SedbenchError(f"--bootstrap {args.bootstrap}: the number of draws must be >= 0 (e.g. 2000)")
    results, bounds = {}, None
    if args.estimated is not None:
        results = score_event_files(args.reference, args.estimated, args.resolution or [0.02, 1.0], args.engine,
                                    event_based=not args.no_events, label=args.label)
        bounds = intervals(results, args.bootstrap) if args.bootstrap else None
    psds = score_probabilities(args.reference, args.scores, args.durations, args.label, args.bootstrap) \
        if args.scores else None
    print(as_json(results, bounds, psds) if args.json else as_text(results, args.engine, bounds, psds, args.bootstrap))


def cmd_evaluate(args) -> None:
    from sedbench.commands.evaluate import evaluate, parse_shifts
    from sedbench.tracking import tracking_uri

    evaluate(args.run_ids, parse_shifts(args.pitch_shift), tracking_uri(args.tracking), args.sweep, args.storage)


def cmd_report(args) -> None:
    from sedbench.report.write import write_report
    from sedbench.tracking import tracking_uri

    out = write_report(args.name, args.storage, tracking_uri(args.tracking), args.out or Path("results") / args.name,
                       args.mlflow_url)
    print(f"report: {out / 'index.md'} (Markdown and PNG), {out / 'index.html'} (one page, interactive figures)")


def cmd_dashboard(args) -> int:
    from sedbench.commands.dashboard import serve
    from sedbench.tracking import tracking_uri

    return serve(tracking_uri(args.tracking), args.port, args.artifacts, args.storage if args.optuna else None,
                 args.optuna_port, args.workers, log=Path("results/dashboard.log"), host=args.host, sweep=args.sweep,
                 open_browser=args.open)


COMMANDS = {"score": cmd_score, "evaluate": cmd_evaluate, "report": cmd_report, "dashboard": cmd_dashboard}
