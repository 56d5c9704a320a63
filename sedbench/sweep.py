"""Sweeps on an Optuna study: grid cells, claiming, resuming, stale workers, summaries.

Plain functions used by the Hydra sweeper plugin (``hydra_plugins/sedbench_sweeper``).

Resume and concurrency rest on the study itself (SQLite by default, any SQLAlchemy URL):

* a grid cell is a set of Hydra overrides; missing cells are enqueued as WAITING trials;
  a worker that pops one trains it only if its claim (an INSERT under a primary key, ``studies.Claims``)
  succeeds, so two workers never train the same trial, on SQLite as on PostgreSQL;
* if two workers enqueued the same cell at once, the lowest-numbered live trial of a cell
  wins and the others are marked ``duplicate`` before anything is trained;
* a completed or pruned cell is never enqueued again; a failed one is (retry);
* a RUNNING trial whose worker is gone (same host and the process is dead, or no
  heartbeat for ``4 x heartbeat_seconds``) is failed, so its cell is retried.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections.abc import Iterable, Sequence

from sedbench.studies import end_trial

LIVE = ("WAITING", "RUNNING", "COMPLETE", "PRUNED")


def grid_cells(blocks: Iterable[dict], extra: dict[str, list[str]] | None = None) -> list[tuple[str, ...]]:
    """Cells of a conditional grid: the union over ``blocks`` of each block's cartesian product.

    A block maps an override key to its values (``{"model": ["crnn", "cnn"], "model.maps": [96, 256]}``);
    ``extra`` (sweeps given on the command line, ``model.maps=96,256``) multiplies every block.
    A cell is a sorted tuple of ``key=value`` override strings.
    """
    blocks = [dict(b) for b in blocks] or [{}]
    cells: list[tuple[str, ...]] = []
    for block in blocks:
        dims = {**{k: [format_value(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals])]
                   for k, vals in block.items()}, **(extra or {})}
        keys = sorted(dims)
        for combo in itertools.product(*(dims[k] for k in keys)):
            cell = tuple(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            if cell and cell not in cells:
                cells.append(cell)
    return cells


def format_value(v) -> str:
    """A config value as Hydra override text: lists as ``[5,4,2]``, booleans lower-case."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ListConfig":
        return "[" + ",".join(format_value(x) for x in v) + "]"
    return str(v)


def cell_key(cell: Sequence[str]) -> str:
    """The cell as stored in a trial's ``cell`` attribute (JSON: values may hold spaces)."""
    return json.dumps(list(cell))


def cell_from_key(key: str) -> list[str]:
    return json.loads(key)


def cell_params(cell: Sequence[str]) -> dict[str, str]:
    return dict(c.split("=", 1) for c in cell)


def is_live(t) -> bool:
    return t.state.name in LIVE and not t.user_attrs.get("duplicate") and not t.user_attrs.get("empty")


def enqueue_missing(study, cells: Sequence[tuple[str, ...]]) -> int:
    """Enqueue every cell without a live trial (failed cells come back); returns how many."""
    live = {t.user_attrs.get("cell") for t in study.get_trials(deepcopy=False) if is_live(t)}
    added = 0
    for cell in cells:
        if cell_key(cell) not in live:
            study.enqueue_trial(cell_params(cell), user_attrs={"cell": cell_key(cell)})
            added += 1
    return added


def is_duplicate(study, trial) -> bool:
    """True when another live trial of the same cell is finished or has a lower number."""
    key = trial.user_attrs.get("cell")
    for t in study.get_trials(deepcopy=False):
        if t.number != trial.number and t.user_attrs.get("cell") == key and is_live(t):
            if t.state.name in ("COMPLETE", "PRUNED") or t.number < trial.number:
                return True
    return False


def mark_worker(trial) -> None:
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("heartbeat", time.time())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale(study, storage, heartbeat_seconds: float) -> list:
    """Fail RUNNING trials whose worker is gone (same host and its process is dead, or no heartbeat for
    ``4 x heartbeat_seconds``); returns those trials as they were (their ``cell`` attribute says what to
    retry). Several workers may check at once: a trial another worker has just failed is skipped."""
    from optuna.trial import TrialState

    host, now, failed = socket.gethostname(), time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        a = t.user_attrs
        dead_here = a.get("host") == host and a.get("pid") not in (None, os.getpid()) and not _pid_alive(a["pid"])
        beat = a.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else now)
        silent = now - beat > 4 * heartbeat_seconds
        if dead_here or silent:
            reason = "its worker process is gone" if dead_here else f"no heartbeat for {now - beat:.0f} s"
            # False: finished (or failed by another worker) meanwhile
            if end_trial(storage, study.study_name, t.number, TrialState.FAIL,
                         {"error": f"worker died (interrupted trial: {reason})"}):
                failed.append(t)
    return failed


def prune_leftovers(study, storage) -> int:
    """WAITING trials of cells that are already done (two workers enqueued the same cell at once) are
    marked duplicate and pruned, so that a finished study holds no work; returns how many."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = {t.user_attrs.get("cell") for t in trials if is_live(t) and t.state.name in ("COMPLETE", "PRUNED")}
    pruned = 0
    for t in trials:
        # a worker popping it meanwhile finds the same duplicate: either way it ends pruned
        if t.state.name == "WAITING" and t.user_attrs.get("cell") in done:
            pruned += end_trial(storage, study.study_name, t.number, TrialState.PRUNED, {"duplicate": True},
                                only_if=TrialState.WAITING)
    return pruned


def done_numbers(study) -> set[int]:
    """The numbers of the study's live trials that are done (complete or pruned)."""
    return {t.number for t in study.get_trials(deepcopy=False) if is_live(t) and t.state.name in ("COMPLETE", "PRUNED")}


def done_count(study) -> int:
    return len(done_numbers(study))


def left_to_ask(study, budget: int, in_flight) -> int:
    """How many more trials may be asked for: the budget less the done trials and the running ones
    (``in_flight``: their numbers). A member of seeds trained together is told its end by its own process
    while its job still runs: it counts once, as done."""
    done = done_numbers(study)
    return budget - len(done) - len(set(in_flight) - done)


def summary_table(study) -> str:
    """Every cell's result and the best per family: the sweep's printed summary."""
    from sedbench.metrics.registry import display
    from sedbench.report.collect import best_per_family, rows_from_study
    from sedbench.report.common import fmt

    rows = rows_from_study(study)
    cells = {r.number: " ".join(cell_from_key(r.attrs["cell"])) if r.attrs.get("cell") else "" for r in rows}
    w = max([8, *(len(r.family) + 1 for r in rows)])  # family column: as wide as the longest name

    def params(r) -> str:
        return f"{int(r.attrs['n_params']):,}" if r.attrs.get("n_params") else "-"

    objective = rows[0].objective if rows else "val/f1_frm"
    shown = display(objective)
    lines = [f"study {study.study_name}: {len(rows)} trials",
             f"{'#':>4} {'state':<9}{'family':<{w}}{'params':>10}{'val ' + shown:>{len(shown) + 6}}{'test F1':>9}"
             f"{'test ER':>9}  cell"]
    for r in rows:
        lines.append(f"{r.number:>4} {r.state:<9}{r.family:<{w}}{params(r):>10}"
                     f"{fmt(r.metrics.get(objective)):>{len(shown) + 6}}"
                     f"{fmt(r.attrs.get('test/f1_frm')):>9}{fmt(r.attrs.get('test/er_frm')):>9}  {cells[r.number]}")
    best = best_per_family(rows)
    if best:
        lines.append(f"best per family (by validation {shown}):")
        for fam, r in best.items():
            lines.append(f"  {fam:<{w}}val {shown} {fmt(r.get(objective))}  "
                         f"test F1_frm {fmt(r.attrs.get('test/f1_frm'))}"
                         f"  ER_frm {fmt(r.attrs.get('test/er_frm'))}  {params(r)} params  (trial {r.number}: "
                         f"{cells[r.number]})")
    return "\n".join(lines)
