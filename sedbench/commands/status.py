"""``sedbench status [NAME]``: where a sweep stands, read from its Optuna storage.

It reads only the storage (SQLite or PostgreSQL), so it works from another terminal or another machine
while the sweep runs: cells done, running, failed and waiting; the best trial so far per family;
throughput and the time left. ``--watch`` redraws it every few seconds.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from sedbench.errors import SedbenchError


def add_parser(sub) -> None:
    from sedbench.commands.options import add_storage, number

    p = sub.add_parser("status", help="a sweep's progress: done, running, failed, waiting, best so far, time left",
                       description="Where a sweep stands, from its Optuna storage alone: works while the sweep "
                                   "runs, from another terminal or machine (SQLite or PostgreSQL).",
                       epilog="Examples: sedbench status;  sedbench status demo --watch;  "
                              "sedbench status claims --storage postgresql://user@host/sedbench")
    p.add_argument("name", nargs="?", help="the sweep (Optuna study); without it, every study in the storage")
    add_storage(p)
    p.add_argument("--watch", nargs="?", type=number(float, 0, above=True), const=10.0, metavar="SECONDS",
                   help="redraw every SECONDS (default 10) until Ctrl-C")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    storage = _storage(args.storage)
    while True:
        text = status_text(storage, args.name) if args.name else studies_text(storage)
        if args.watch is None:
            print(text)
            return 0
        if sys.stdout.isatty():
            print("\033[2J\033[H", end="")  # clear the screen, cursor home
        print(f"{text}\n(every {args.watch:g} s; Ctrl-C stops)", flush=True)
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


def _storage(url: str):
    from sedbench.studies import read_storage

    return read_storage(url)


def studies_text(storage) -> str:
    import optuna

    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not summaries:
        return "no sweeps in this storage yet (sedbench sweep NAME starts one)"
    lines = [f"{'sweep':<28}{'trials':>8}  started"]
    for s in sorted(summaries, key=lambda s: s.datetime_start or datetime.min):
        started = s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else "-"
        lines.append(f"{s.study_name:<28}{s.n_trials:>8}  {started}")
    lines.append("sedbench status NAME: one sweep's progress")
    return "\n".join(lines)


def sweep_status(storage, name: str, now: float | None = None) -> dict:
    """The numbers :func:`status_text` prints: counts by state, best per family, throughput and time left."""
    import optuna

    from sedbench.sweep import cell_from_key, is_live

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
        raise SedbenchError(f"no sweep named {name!r} in this storage. Fix: one of: {known or '(none yet)'}") \
            from None
    now = time.time() if now is None else now
    trials = [t for t in study.get_trials(deepcopy=False) if is_live(t) or t.state.name == "FAIL"]
    by_state: dict[str, list] = {}
    for t in trials:
        by_state.setdefault(t.state.name, []).append(t)
    done = by_state.get("COMPLETE", []) + by_state.get("PRUNED", [])
    cells = {t.user_attrs.get("cell") for t in trials if is_live(t)}
    failed_cells = {t.user_attrs.get("cell") for t in by_state.get("FAIL", [])} - cells
    total = study.user_attrs.get("budget") or (len(cells | failed_cells) if None not in cells else None)
    left = None if total is None else max(0, total - len(done))

    def cell(t) -> str:
        from sedbench.console import short_cell

        return short_cell(cell_from_key(t.user_attrs["cell"])) if t.user_attrs.get("cell") else ""

    from sedbench.studies import objective_of

    objective, sign = objective_of(study)
    best: dict[str, object] = {}
    for t in by_state.get("COMPLETE", []):
        fam = str(t.user_attrs.get("family", "?"))
        if fam not in best or sign * (t.value - best[fam].value) > 0:
            best[fam] = t
    finished = [t for t in done if t.datetime_complete is not None]
    rate = eta = None
    if finished:
        first = min(t.datetime_start or t.datetime_complete for t in finished).timestamp()
        last = max(t.datetime_complete for t in finished).timestamp()
        if last > first:
            rate = len(finished) / ((last - first) / 3600)  # trials per hour of this sweep's wall time
            if left is not None:
                eta = left / rate * 3600
    return {"name": name, "total": total, "done": len(done), "complete": len(by_state.get("COMPLETE", [])),
            "pruned": len(by_state.get("PRUNED", [])), "failed": [(t.number, cell(t), t.user_attrs.get("error", ""))
                                                                  for t in by_state.get("FAIL", [])],
            "running": [(t.number, cell(t), now - t.datetime_start.timestamp() if t.datetime_start else 0.0,
                         f"{t.user_attrs.get('host', '?')}:{t.user_attrs.get('pid', '?')}")
                        for t in by_state.get("RUNNING", [])],
            "waiting": len(by_state.get("WAITING", [])),
            "best": {fam: (t.number, cell(t), t.value, t.user_attrs.get("test/f1_frm")) for fam, t in best.items()},
            "objective": objective, "rate_per_hour": rate, "eta_seconds": eta,
            "provenance": study.user_attrs.get("provenance"), "rounds": study.user_attrs.get("rounds"),
            "other": [(t.number, cell(t), t.user_attrs["provenance_differs"]) for t in trials
                      if t.user_attrs.get("provenance_differs")]}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min" if seconds >= 3600 else \
        f"{seconds // 60} min {seconds % 60:02d} s"


def status_text(storage, name: str) -> str:
    s = sweep_status(storage, name)
    total = "?" if s["total"] is None else s["total"]
    lines = [f"sweep {name}: {s['done']} of {total} done ({s['complete']} complete, {s['pruned']} pruned), "
             f"{len(s['running'])} running, {len(s['failed'])} failed, {s['waiting']} waiting",
             f"  throughput {s['rate_per_hour']:.1f} trials/hour; time left about {_duration(s['eta_seconds'])}"
             if s["rate_per_hour"] else "  throughput: no finished trial yet"]
    if s.get("rounds"):
        seeds = ", ".join(map(str, s["rounds"]["seeds"]))
        lines.append(f"  seeds in rounds ({seeds} a configuration): the count is the rounds run so far; each look "
                     f"decides which configurations get more (`sedbench report {name}`: the looks and verdicts)")
    if s["best"]:
        from sedbench.metrics.registry import get

        objective = get(s["objective"])
        shown = f"validation {objective.display}" if objective else s["objective"]
        lines.append(f"  best so far per family ({shown}, test F1_frm):")
        sign = objective.sign if objective else 1
        for fam, (number, cell, val, test) in sorted(s["best"].items(), key=lambda kv: -sign * kv[1][2]):
            test = f"{test:.3f}" if isinstance(test, (int, float)) else "-"
            lines.append(f"    {fam:<8} {val:.3f}  {test}  trial {number}: {cell}")
    for number, cell, seconds, where in s["running"]:
        lines.append(f"  running  trial {number}: {cell}  for {_duration(seconds)}  ({where})")
    for number, cell, error in s["failed"]:
        lines.append(f"  failed   trial {number}: {cell}  {error}"[:240])
    if s["provenance"]:
        from sedbench.provenance import code_id

        p = s["provenance"]
        lines.append(f"  started on code {code_id(p.get('code'))}, torch {p.get('libraries', {}).get('torch', '?')}, "
                     f"dataset {', '.join(p.get('datasets') or ['?'])}")
    for number, cell, differs in s["other"]:
        lines.append(f"  other    trial {number}: {cell}  ran on other {', '.join(differs)} than the sweep started "
                     "with")
    return "\n".join(lines)
