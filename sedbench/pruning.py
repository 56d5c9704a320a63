"""Pruning measured against a finished full grid, by replaying its trials' learning curves.

A trial's training is deterministic (same cell, seed and threads: same numbers), and a pruner only stops it,
so a pruned sweep over the same grid would see exactly the validation curves the full grid recorded (MLflow
keeps the study's objective, ``val/f1_frm`` by default, after every epoch). :func:`replay` therefore runs
Optuna's own pruner on those curves, trial by trial in the grid's order, as one worker would: each epoch's value
is reported, the pruner is asked, and a pruned trial costs the epochs it ran. From that come the two figures
of ``make bench`` (``--pruning-from STUDY``):

* ``compute_fraction``: the pruned sweep's fit time over the full grid's (a pruned trial's share of its fit
  time is its epochs run over its epochs in the full grid);
* ``f1_gap_points``: the full grid's best test F1_frm minus the pruned sweep's, in points, each sweep's best
  chosen by validation F1_frm among its completed trials.

Each trial gets a new pruner, as in a sweep, where each trial's process loads the study with its own
(Hyperband's ``auto`` maximum resource then comes from the trials completed before that trial).
``tests/test_pruning.py`` checks the replay against real pruned sweeps of the same grid; a real Hyperband
sweep of the demo grid made exactly the replay's 14 decisions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Curve:
    """One completed trial of the full grid."""
    number: int
    cell: str
    values: tuple[float, ...]  # the study's objective (validation F1_frm by default) after each epoch
    objective: float           # the best of them (the trial's value)
    test_f1: float             # test F1_frm with the best epoch's weights
    fit_seconds: float
    sign: int = 1              # +1: the study maximizes its objective, -1: it minimizes it


def curves_from_study(name: str, storage: str, tracking_uri: str) -> list[Curve]:
    """The completed trials of a finished sweep with their per-epoch validation curves (from MLflow)."""
    import optuna

    from sedbench.errors import SedbenchError
    from sedbench.studies import load_for_reading, objective_of
    from sedbench.tracking import RunStore

    study = load_for_reading(storage, name, "--pruning-storage")

    key, sign = objective_of(study)
    store, out = RunStore(tracking_uri), []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        run_id = t.user_attrs.get("mlflow_run_id")
        history = store.history(run_id, key) if run_id else {}
        if not history:
            raise SedbenchError(f"trial {t.number} of sweep {name!r} has no validation curve in {tracking_uri}. "
                                "Fix: pass the MLflow store the sweep recorded to (--tracking)")
        out.append(Curve(t.number, str(t.user_attrs.get("cell", "")), tuple(history[s] for s in sorted(history)),
                         float(t.value), float(t.user_attrs.get("test/f1_frm", float("nan"))),
                         float(t.user_attrs.get("fit_seconds", 0.0)), sign))
    if not out:
        raise SedbenchError(f"sweep {name!r} has no completed trial to replay")
    return sorted(out, key=lambda c: c.number)


def replay(curves: list[Curve], pruner: str, study_name: str = "replay") -> dict:
    """Run ``sweep.pruner`` (``sedbench.studies.make_pruner``) over ``curves`` in order; the figures above, the
    epochs each trial ran, and best-so-far curves (test F1_frm of the best trial by validation so far, against
    fit seconds spent so far) for both sweeps. ``study_name`` matters for Hyperband, which assigns trials to
    its brackets by a hash of the study's name and the trial's number."""
    import optuna

    from sedbench.studies import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sign = curves[0].sign if curves else 1
    study = optuna.create_study(study_name=study_name, direction="maximize" if sign > 0 else "minimize",
                                pruner=make_pruner(pruner))
    epochs_run, spent_full, spent = {}, 0.0, 0.0
    best_full = best_pruned = None
    full_curve, pruned_curve = [], []
    for c in curves:
        # a new pruner for each trial, as each trial's process makes one (sedbench.studies.TrialReporter): Hyperband
        # sizes its brackets from the trials completed when it first prunes ("auto" max_resource)
        study.pruner = make_pruner(pruner)
        trial = study.ask()
        ran = len(c.values)
        for epoch, value in enumerate(c.values):
            trial.report(value, step=epoch)
            if trial.should_prune():
                ran = epoch + 1
                break
        per_epoch = c.fit_seconds / len(c.values)
        spent_full += c.fit_seconds
        spent += per_epoch * ran
        epochs_run[c.number] = ran
        if best_full is None or sign * (c.objective - best_full.objective) > 0:
            best_full = c
        full_curve.append((round(spent_full, 2), best_full.test_f1))
        if ran < len(c.values):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, c.objective)
            if best_pruned is None or sign * (c.objective - best_pruned.objective) > 0:
                best_pruned = c
        pruned_curve.append((round(spent, 2), None if best_pruned is None else best_pruned.test_f1))
    pruned = sum(epochs_run[c.number] < len(c.values) for c in curves)
    return {"pruner": pruner, "trials": len(curves), "pruned": pruned,
            "compute_fraction": spent / spent_full if spent_full else float("nan"),
            "f1_gap_points": 100 * (best_full.test_f1 - best_pruned.test_f1) if best_pruned else float("nan"),
            "full": {"fit_seconds": round(spent_full, 1), "best_trial": best_full.number, "best_cell": best_full.cell,
                     "best_test_f1_frm": best_full.test_f1},
            "pruned_sweep": {"fit_seconds": round(spent, 1), "best_trial": best_pruned.number if best_pruned else None,
                             "best_cell": best_pruned.cell if best_pruned else None,
                             "best_test_f1_frm": best_pruned.test_f1 if best_pruned else None},
            "epochs_run": epochs_run, "epochs_full": {c.number: len(c.values) for c in curves},
            "best_so_far": {"full": full_curve, "pruned": pruned_curve}}


def plot(results: list[dict], path) -> None:
    """Best-so-far test F1_frm against fit time spent, the full grid and each pruned replay (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    full = results[0]["best_so_far"]["full"]
    ax.step([x for x, _ in full], [100 * y for _, y in full], where="post", label="full grid", color="black",
            linewidth=4, alpha=0.3, zorder=1)
    ax.plot([full[-1][0]], [100 * full[-1][1]], "o", color="black", alpha=0.5)
    for r, style in zip(results, ("--", ":"), strict=False):
        pts = [(x, y) for x, y in r["best_so_far"]["pruned"] if y is not None]
        line, = ax.step([x for x, _ in pts], [100 * y for _, y in pts], style, where="post", zorder=2,
                        label=f"pruner={r['pruner']} ({r['compute_fraction']:.0%} of the compute, "
                              f"{r['f1_gap_points']:.1f} F1 points behind)")
        ax.plot([pts[-1][0]], [100 * pts[-1][1]], "o", color=line.get_color())  # where the sweep ends
    ax.set_xlabel("fit time spent (s, summed over trials)")
    ax.set_ylabel("test F1$_{frm}$ of the best trial by validation (%)")
    ax.set_title("Pruning against the full grid (replayed learning curves)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def over_study_names(curves: list[Curve], pruner: str, n: int = 20) -> dict:
    """Hyperband puts each trial into one of its brackets by a hash of the study's name and the trial's number,
    so the same grid under another name is pruned differently: the replay under ``n`` names (``grid-0`` ...)
    gives the spread of both figures, and how many of the names meet the goal (at most 40 % of the compute
    within 1 F1 point)."""
    import statistics

    runs = [replay(curves, pruner, study_name=f"grid-{i}") for i in range(n)]

    def spread(key: str) -> dict:
        values = [r[key] for r in runs]
        return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}

    return {"pruner": pruner, "names": n, "compute_fraction": spread("compute_fraction"),
            "f1_gap_points": spread("f1_gap_points"),
            "goal_met": sum(r["compute_fraction"] <= 0.40 and r["f1_gap_points"] <= 1.0 for r in runs)}
