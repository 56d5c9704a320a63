"""The store options several commands share: where the Optuna studies and the MLflow runs are."""

from __future__ import annotations

import argparse
import math
import sys

from sedbench.tracking import DEFAULT_STORAGE, DEFAULT_TRACKING_URI


def add_storage(parser, note: str = "") -> None:
    """``--storage``: the Optuna storage URL (``note``: when the command reads it)."""
    parser.add_argument("--storage", default=DEFAULT_STORAGE,
                        help=f"Optuna storage URL (default {DEFAULT_STORAGE}){note}")


def add_tracking(parser) -> None:
    """``--tracking``: the MLflow store (None: $MLFLOW_TRACKING_URI, else the project's)."""
    parser.add_argument("--tracking", default=None,
                        help=f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad option or value as one ``error:`` line naming it and the fix (exit 2), not the usage
    block; ``--help`` still shows the usage."""

    def error(self, message: str):
        sys.stderr.write(f"error: {self.prog}: {message}. Fix: see `{self.prog} --help`\n")
        raise SystemExit(2)


def number(kind: type = float, low: float | None = None, high: float | None = None, above: bool = False,
           below: bool = False):
    """An argparse ``type``: ``kind`` at least ``low`` (greater than ``low`` with ``above``) and at most ``high``
    (less than ``high`` with ``below``); anything else is argparse's one-line error naming the option and the
    range."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        bad = ((low is not None and (value <= low if above else value < low))
               or (high is not None and (value >= high if below else value > high)))
        if bad:
            def fmt(v: float) -> str:
                return f"{v:,.0f}" if float(v).is_integer() else f"{v:g}"

            rng = (f"{'greater than' if above else 'at least'} {fmt(low)}" if low is not None else "") + \
                (f"{' and ' if low is not None else ''}{'less than' if below else 'at most'} {fmt(high)}"
                 if high is not None else "")
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {rng}")
        return value
    parse.__name__ = "whole number" if kind is int else "number"
    return parse
