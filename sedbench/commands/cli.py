"""``sedbench``: the command line. Subcommand first; heavy libraries load only when used."""

from __future__ import annotations

import argparse
import logging
import sys

from sedbench import __version__
from sedbench.console import quiet_libraries
from sedbench.errors import SedbenchError


def build_parser() -> argparse.ArgumentParser:
    from sedbench.commands.options import OneLineParser

    parser = OneLineParser(  # a bad option is one line; its subcommands' parsers are of the same class
        prog="sedbench",
        description="Grid-search and benchmark harness for polyphonic sound event detection "
                    "(CRNN study of Cakir et al., TASLP 2017).",
        epilog="Quick start: `make demo`, then `make test`. Data: `sedbench data generate synth`.")
    parser.add_argument("--version", action="version", version=f"sedbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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

    from sedbench.commands import claims, compare, dashboard, data, evaluate, plan, report, score, status

    for module in (data, report, evaluate, dashboard, score, compare, claims, plan, status):  # parser, handler
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line: a user's mistake is one ``error:`` line and exit 2, Ctrl-C one line and 130 (SIGTERM:
    143), anything else one line naming the file that holds its traceback and exit 1 (never a traceback on the
    console)."""
    import signal
    import threading

    from sedbench.errors import Terminated, raise_terminated

    argv = sys.argv[1:] if argv is None else list(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if main_thread else None  # SIGTERM as Ctrl-C
    try:
        return _main(argv)
    except SedbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # what was running says what it recorded (a sweep: its trials, its runs)
        what, code = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
        print(f"interrupted ({what}){f': {exc}' if str(exc) else ''}", file=sys.stderr)
        return code
    except OSError as exc:  # the disk, a path or a permission: the user's to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}. Fix: check the path, its permissions and the free space",
              file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line, the traceback kept in a file
        print(f"error: internal error ({type(exc).__name__}: {str(exc)[:200]}); the traceback is in "
              f"{save_traceback(argv)}. Please report it with that file", file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def save_traceback(argv: list[str]) -> str:
    """The current exception's traceback and the command line, in a new file under the temporary folder."""
    import tempfile
    import time
    import traceback

    folder = tempfile.mkdtemp(prefix=f"sedbench-error-{time.strftime('%Y%m%d-%H%M%S')}-")
    path = f"{folder}/traceback.txt"
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"sedbench {__version__}: sedbench {' '.join(argv)}\n\n{traceback.format_exc()}")
    return path


def _main(argv: list[str]) -> int:
    if argv and argv[0] in ("train", "params", "sweep") and not {"-h", "--help"} & set(argv[1:2]):
        from sedbench.commands.launch import run_hydra

        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
        return run_hydra(argv[0], argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad option (its one line is written), --help or --version
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    quiet_libraries(verbose=args.verbose)  # known noise of the libraries the command will import (-v: all)
    if args.command is None:
        parser.print_help()
        return 0
    return args.handler(args) or 0


