"""Errors that name the file (and line) at fault and say how to fix it."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("sedbench")


class SedbenchError(Exception):
    """A user-facing error: the CLI prints it without a traceback."""


class ConfigError(SedbenchError, ValueError):
    """An impossible configuration (e.g. a pooling schedule that pools more bands than there are)."""


class DivergedError(SedbenchError, FloatingPointError):
    """The training loss became NaN or infinite: the run stops (a sweep records the trial as failed)."""


class DataError(SedbenchError):
    """Bad input data.

    The message reads ``FILE[:LINE]: what is wrong. Fix: what to do``.
    """

    def __init__(self, path: str | Path | None, problem: str, fix: str = "", line: int | None = None):
        self.path = Path(path) if path is not None else None
        self.line = line
        self.problem = problem
        self.fix = fix
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{problem}" + (f". Fix: {fix}" if fix else ""))


_noted: set[str] = set()


def note(message: str, once: str | None = None) -> None:
    """A data note (resampling, mixing down, clipping): logged as a warning, never fatal.

    With ``once``, only the first note of that key is logged in this process (e.g. one
    note per folder of binaural files instead of one per file).
    """
    if once is not None:
        if once in _noted:
            return
        _noted.add(once)
        message += " (further files like it are not reported)"
    log.warning(message)


class JobLost(RuntimeError):
    """A trial's job ended without a result of its own: the engine lost it (a SLURM job cancelled or preempted,
    a Ray node that died). Not the trial's fault: the sweep fails the trial and trains its cell again."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process was (as Ctrl-C raises KeyboardInterrupt), so that a run it ends is
    recorded KILLED with what it had and the command exits 143."""


def raise_terminated(signum, frame) -> None:
    """A SIGTERM handler: raise :class:`Terminated`."""
    raise Terminated()
