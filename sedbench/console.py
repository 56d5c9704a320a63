"""The console as an interface: what a sweep, a run and the tools print, and what they keep in files.

* :func:`quiet_libraries` silences the known noise of pinned dependencies at its source (named loggers,
  and warnings matched by message and module), so that a warning raised by sedbench's own code, or a new
  one of a library, still shows.
* :func:`trial_output` sends everything a sweep's trial prints (Lightning, warnings, a traceback), at the
  file-descriptor level, to ``trial.log`` in its run folder; the sweep's console shows one line per trial.
* :class:`SweepConsole` is that console: a header, one progress bar, one line per finished trial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

TRIAL_LOG = "trial.log"

# loggers whose INFO lines are noise on a console: Lightning's tips and device lines ("GPU available",
# "TPU available", "Restoring states from the checkpoint"), MLflow's and Alembic's database set-up, the
# launchers' per-job lines (joblib's "Joblib.Parallel(...) is launching", Hydra's override list per trial)
NOISY_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning_fabric.utilities.seed", "lightning.fabric.utilities.seed",
                 "pytorch_lightning.accelerators.cuda", "lightning.pytorch.accelerators.cuda",
                 "mlflow", "alembic", "hydra_plugins.hydra_joblib_launcher",
                 "hydra_plugins.hydra_submitit_launcher", "hydra._internal.core_plugins.basic_launcher",
                 "optuna")
# loggers whose errors are raised again to the caller, which reports them: MLflow's database session logs a
# database error with its traceback (on the console of a single run; seen when Ctrl-C lands inside a SQLite
# write), then raises it as an MlflowException
RERAISED_LOGGERS = ("mlflow.store.db.utils",)

# (message regex, module regex) of warnings known and understood; each says why it is harmless here
KNOWN_WARNINGS = (
    # dcase_util (sed_eval's reader) imports pkg_resources; nothing to do until dcase_util drops it
    (r"pkg_resources is deprecated", r"dcase_util"),
    # Lightning 2 on a newer torch: an internal isinstance check, no effect on training
    (r".*isinstance\(treespec, LeafSpec\).* is deprecated", r""),
    # small datasets have fewer batches per epoch than Lightning's logging interval: metrics are logged per epoch
    (r"The number of training batches \(\d+\) is smaller than the logging interval", r""),
    # workers are set by data.num_workers on purpose (auto: none on the CPU, where a batch is a memory-mapped slice)
    (r"The '\w+_dataloader' does not have many workers", r""),
    # sedbench logs its own hyperparameters; Lightning's reminder to save the module's is not for it
    (r"Attribute '\w+' is an instance of `nn.Module` and is already saved", r""),
    # on a machine with SLURM's client tools, Lightning asks for `srun` before every run: it matters to several
    # processes training one model together, and a sedbench trial trains in one process (a SLURM job's own)
    (r"The `srun` command is available on your system but is not used", r""),
    # Optuna marks APIs experimental that sedbench uses on purpose (set_metric_names, heartbeat-free studies)
    (r".*is experimental \(supported from v\d", r""),
)


def quiet_libraries(verbose: bool = False) -> None:
    """Silence the known noise of sedbench's dependencies (idempotent); ``verbose`` leaves everything on."""
    if verbose:
        return
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow sets its loggers' level when imported
    # the process-pool's resource tracker, a process of its own, warns at exit about the semaphores of workers
    # that a stopped sweep killed (joblib/loky): the filter reaches it through its environment
    tracker = "ignore:resource_tracker:UserWarning"
    if tracker not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(w for w in (os.environ.get("PYTHONWARNINGS"), tracker) if w)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in RERAISED_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for message, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    with contextlib.suppress(ImportError):  # Optuna's experimental-API warnings have their own category
        from optuna.exceptions import ExperimentalWarning

        warnings.filterwarnings("ignore", category=ExperimentalWarning)


@contextlib.contextmanager
def trial_output(run_dir: Path, capture: bool = True):
    """Everything this process writes to stdout and stderr (Python and C level) goes to ``run_dir/trial.log``
    while the block runs; an exception's traceback is written there too, then the exception goes on.
    Yields the log's path (None when ``capture`` is False: output stays where it was)."""
    if not capture:
        yield None
        return
    import traceback

    path = Path(run_dir) / TRIAL_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):  # Python's streams too, wherever they point
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield path
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def short_cell(overrides) -> str:
    """``model=crnn model.maps=32 model.kernel=[5,5] seed=0`` -> ``crnn maps=32 k=5x5 seed=0``."""
    out = []
    for item in overrides:
        key, _, value = str(item).partition("=")
        if key in ("model", "data"):
            out.append(value)
            continue
        short = key.rsplit(".", 1)[-1]
        short = {"kernel": "k", "seq_len": "seq", "rnn_layers": "rnn", "fnn_layers": "fnn"}.get(short, short)
        if value.startswith("[") and value.endswith("]") and short == "k":
            value = "x".join(v.strip() for v in value[1:-1].split(","))
        out.append(f"{short}={value}")
    return " ".join(out)


def _num(value, digits: int = 3) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def trial_line(number: int, cell: str, state: str, metrics: dict, error: str | None = None,
               log_path: str | None = None, differs: list[str] | None = None) -> str:
    """One finished trial, as the sweep's console shows it; ``differs``: what of its code, libraries and dataset
    was not what the sweep started with (sedbench.provenance.differences)."""
    if state == "lost":  # the engine lost its job (sedbench.errors.JobLost): the sweep trains the cell again
        error = (error or "").removeprefix("JobLost: ")[:200]
        return f"trial {number:>3}  {cell:<34} LOST: {error}; its cell is trained again"
    if state == "failed":
        line = f"trial {number:>3}  {cell:<34} FAILED: {error or 'see its log'}"[:300]
        return line + (f"  (log: {log_path})" if log_path else "")
    steps = metrics.get("steps")
    epochs = metrics.get("epochs")
    budget = f"{epochs} ep" if epochs is not None else ""
    if steps is not None:
        budget += f" {steps} steps" if budget else f"{steps} steps"
    wall = metrics.get("time/wall") or metrics.get("fit_seconds")
    val = next((v for k, v in metrics.items() if k.startswith("val/")), None)  # the trial's objective
    line = (f"trial {number:>3}  {cell:<34} {budget:>16}  val {_num(val)}"
            f"  test {_num(metrics.get('test/f1_frm'))}  {_num(wall, 0):>4} s")
    if state == "complete" and metrics.get("budget") == "truncated":
        line += "  truncated by trainer.max_time (!)"
    elif state == "pruned":
        line += "  pruned"
    if differs:
        line += f"  ran on other {', '.join(differs)} (!)"
    return line


class SweepConsole:
    """A sweep's console: header lines, one progress bar, one line per finished trial, then the summary.

    Writes to a duplicate of the process's stderr taken at the start, so that a trial run in this process
    (sequential launcher), whose output goes to its log file, does not take the console with it. The bar is
    drawn on a terminal only; in a log file or a pipe each trial's line says how far the sweep is."""

    def __init__(self):
        self.stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8")
        self.bar = None
        self.total, self.done, self.failed, self.running = 0, 0, 0, 0

    def header(self, line: str) -> None:
        self._write(line)

    def start(self, total: int, done: int) -> None:
        """The bar: ``done`` of ``total`` trials (a resumed sweep starts where it stands)."""
        self.total, self.done = total, done
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="trials", unit="trial", file=self.stream, smoothing=0,
                            dynamic_ncols=True, bar_format="{desc} {n}/{total} |{bar}| {postfix} "
                                                           "[{elapsed} elapsed, {remaining} left]")
            self._postfix()

    def set_running(self, n: int) -> None:
        self.running = n
        self._postfix()

    def extend(self, n: int) -> None:
        """``n`` more trials to run: cells queued again (their jobs were lost)."""
        self.total += n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def finished(self, line: str, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if self.bar is not None:
            self.bar.update(1)
        self._write(f"[{self.done:>{len(str(self.total))}}/{self.total}] {line}")
        self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"running {self.running}, failed {self.failed}", refresh=True)

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.stream.flush()
