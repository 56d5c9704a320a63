"""The report's figures that need a run's artifacts or extra evaluations, all read from MLflow.

- ``activity.png`` (paper Figs. 3 and 6): input features, ground truth and each family's
  event probabilities on one test excerpt (``activity.npz`` of each family's best run).
- ``filters.png`` (Fig. 7): inputs that maximize units of each convolutional layer of the
  best CRNN (else CNN), by 100 steps of gradient ascent from Gaussian noise.
- ``pitch_shift.png`` (Fig. 5): change of test F1_frm with the test audio pitch-shifted,
  from ``sedbench evaluate --pitch-shift``.
- ``learning_curves.png``: validation F1_frm against optimizer steps of the studied configurations (from
  each run's recorded ``val_curve``), and how many of their trials converged.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sedbench.report.collect import TrialRow, best_per_family, configurations, mean_score
from sedbench.report.common import figure, finish, pyplot, style, validation_axis, write_csv
from sedbench.report.items import Context, Figure
from sedbench.training.artifacts import ACTIVITY_PATH, BUNDLE_PATH

Fetch = Callable[[str, str], "Path | None"]  # (run id, artifact path) -> local file, None when missing


class ArtifactFigure(Figure):
    """A figure drawn from the best runs' artifacts (arrays, weights), embedded in the page as its PNG:
    ``draw(rows, fetch, out)`` writes the PNG and the CSV of what it shows and returns the PNG's name."""

    def __init__(self, file: str, title: str, hint: str, draw: Callable):
        self.file, self.title, self.hint, self.draw = file, title, hint, draw

    def write(self, ctx: Context) -> list[str]:
        self.records, self.text = [], None
        made = self.draw(ctx.rows, ctx.fetch, ctx.out)
        return [made, f"{self.stem}.csv"] if made else []


def activity() -> ArtifactFigure:
    return ArtifactFigure("activity.png", "ground truth and each family's event probabilities on a test excerpt "
                          "(Figs. 3, 6)", "needs the best runs' `activity.npz` artifacts (strong labels, "
                          "tracking.log_model=true)", write_activity)


def filters() -> ArtifactFigure:
    return ArtifactFigure("filters.png", "inputs that maximize convolutional units, gradient ascent from noise "
                          "(Fig. 7)", "needs a convolutional best run's `model/model.pt` artifact "
                          "(tracking.log_model=true)", write_filters)


def write_activity(rows: list[TrialRow], fetch: Fetch, out: Path) -> str | None:
    """Input, ground truth and each family's probabilities on the same test excerpt."""
    found: dict[str, dict] = {}
    for fam, r in best_per_family(rows).items():
        path = fetch(r.attrs.get("mlflow_run_id", ""), ACTIVITY_PATH)
        if path is not None:
            with np.load(path) as z:
                found[fam] = {k: z[k] for k in z.files}
    if not found:
        return None
    ref = next(iter(found.values()))
    same = {f: a for f, a in found.items()
            if str(a["filename"]) == str(ref["filename"]) and float(a["start"]) == float(ref["start"])}
    classes = [str(c) for c in ref["classes"]]
    truth = ref["truth"].astype(bool)
    shown = [k for k in range(len(classes)) if truth[:, k].any()] or list(range(len(classes)))
    hop, start = float(ref["hop"]), float(ref["start"])
    T = len(truth)
    extent_t = (start, start + T * hop)

    write_csv(out / "activity.csv", ["time_s", *[f"truth/{classes[k]}" for k in shown],
                                     *[f"{f}/{classes[k]}" for f in same for k in shown]],
              [[round(start + t * hop, 3), *truth[t, shown].astype(int),
                *[round(float(a["probs"][t, k]), 4) for a in same.values() for k in shown]] for t in range(T)])
    plt = pyplot()
    panels = 2 + len(same)
    fig, axes = plt.subplots(panels, 1, figsize=(9, 0.8 + 1.9 * panels), dpi=150, sharex=True,
                             constrained_layout=True)
    feats = ref["features"].astype(np.float32)
    im = axes[0].imshow(feats.T, aspect="auto", origin="lower", cmap="magma", extent=(*extent_t, 0, feats.shape[1]))
    axes[0].set_ylabel("feature (band)")
    axes[0].set_title(f"input features (z-normalized) of the best model: {ref['filename']}")
    fig.colorbar(im, ax=axes[0], pad=0.01, label="z-score")
    labels = [classes[k] for k in shown]

    def roll(ax, values, title, label):
        im = ax.imshow(values[:, shown].T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
                       interpolation="nearest", extent=(*extent_t, -0.5, len(shown) - 0.5))
        ax.set_yticks(range(len(shown)), labels, fontsize=6)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, pad=0.01, label=label)

    roll(axes[1], truth.astype(np.float32), "ground truth", "active")
    for ax, (fam, a) in zip(axes[2:], same.items(), strict=True):
        roll(ax, a["probs"].astype(np.float32), f"{fam.upper()}: event activity probability", "probability")
    axes[-1].set_xlabel("time in the test file (s)")
    fig.suptitle("Event activity on a test excerpt (cf. Cakir et al. 2017, Figs. 3 and 6); classes absent "
                 "from the excerpt omitted", fontsize=9)
    fig.savefig(out / "activity.png")
    plt.close(fig)
    return "activity.png"


def write_filters(rows: list[TrialRow], fetch: Fetch, out: Path, per_layer: int = 3, steps: int = 100) -> str | None:
    """Gradient-ascent inputs for units of each conv layer of the best CRNN (or CNN) of the sweep."""
    from sedbench.models.visualize import receptive_field, strongest_units
    from sedbench.training.artifacts import Bundle

    best = best_per_family(rows)
    for fam in best:  # the best family whose best run has a network with conv layers
        path = fetch(best[fam].attrs.get("mlflow_run_id", ""), BUNDLE_PATH)
        bundle = Bundle.load(path) if path is not None else None
        if bundle is not None and getattr(bundle.net, "pool", None):
            pick = best[fam]
            break
    else:
        return None
    n_bands = bundle.features.n_features(bundle.sample_rate)
    frames = 2 * receptive_field(bundle.net, len(bundle.net.pool)) + 7
    units = strongest_units(bundle.net, n_bands, per_layer=per_layer, frames=frames, steps=steps)
    layers = sorted({u.layer for u in units})
    write_csv(out / "filters.csv", ["layer", "channel", "activation_after_ascent", "receptive_field_frames"],
              [[u.layer, u.channel, round(u.activation, 4), receptive_field(bundle.net, u.layer)] for u in units])
    plt = pyplot()
    fig, axes = plt.subplots(len(layers), per_layer, figsize=(2.3 * per_layer + 1, 2.2 * len(layers) + 0.6),
                             dpi=150, squeeze=False, constrained_layout=True)
    vmax = max(float(np.abs(u.pattern).max()) for u in units)
    im = None
    for row, layer in enumerate(layers):
        mine = [u for u in units if u.layer == layer]
        rf = receptive_field(bundle.net, layer)
        for col in range(per_layer):
            ax = axes[row, col]
            if col >= len(mine):
                ax.axis("off")
                continue
            u = mine[col]
            c = frames // 2
            lo = max(0, c - rf // 2 - 2)
            crop = u.pattern[lo:c + rf // 2 + 3]
            im = ax.imshow(crop.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           extent=(lo - c - 0.5, lo - c + len(crop) - 0.5, -0.5, n_bands - 0.5))
            ax.set_title(f"layer {layer}, unit {u.channel}", fontsize=8)
            ax.tick_params(labelsize=6)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if col == 0:
                ax.set_ylabel("mel band")
            if row == len(layers) - 1:
                ax.set_xlabel(f"time (frames of {1000 * bundle.features.hop_seconds:g} ms)")
    fig.colorbar(im, ax=axes, shrink=0.6, label="input (z-score)")
    fig.suptitle(f"Inputs that maximize conv units, {steps} gradient-ascent steps from Gaussian noise\n"
                 f"({pick.family.upper()} trial {pick.number}; cf. Cakir et al. 2017, Fig. 7)", fontsize=9)
    fig.savefig(out / "filters.png")
    plt.close(fig)
    return "filters.png"


class PitchShift(Figure):
    """Absolute change of test F1_frm against pitch shift, mean over each family's evaluated runs."""

    file, title = "pitch_shift.png", "change of F1_frm with pitch-shifted test audio (Fig. 5)"
    hint = "run `sedbench evaluate --sweep {name} --pitch-shift=-2,-1,1,2`, then the report again"

    def data(self, ctx: Context) -> list[dict] | None:
        runs = [r for r in ctx.rows if r.pitch_shift and 0 in r.pitch_shift]
        return [{"trial": r.number, "family": r.family, "quarter_tones": q, "test_f1_frm": f,
                 "change_f1_frm": f - r.pitch_shift[0]} for r in runs for q, f in sorted(r.pitch_shift.items())]

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        plt, fig, ax = figure()
        for fam in sorted({r["family"] for r in records}):
            mine = [r for r in records if r["family"] == fam]
            runs = len({r["trial"] for r in mine})
            shifts = sorted({r["quarter_tones"] for r in mine})
            ys = [100 * statistics.fmean(r["change_f1_frm"] for r in mine if r["quarter_tones"] == q) for q in shifts]
            color, marker = style(fam)
            ax.plot(shifts, ys, color=color, marker=marker, label=f"{fam.upper()} ({runs} run{'s' * (runs > 1)})")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.xaxis.get_major_locator().set_params(integer=True)
        finish(plt, fig, ax, path, "pitch shift of the test audio (quarter tones)",
               "change in test F1_frm (percentage points)",
               "Frequency-shift robustness (cf. Cakir et al. 2017, Fig. 5)", {"title": "family"})

    def svg(self, ctx: Context, records: list[dict]) -> str:
        from sedbench.report.html import figure_pitch_shift

        return figure_pitch_shift(records, ctx.trials, ctx.link)


MAX_CURVES = 12
# one line style per configuration of a family (its colour): plain lines, then lines with markers
LINESTYLES = (("-", None), ("--", None), (":", None), ("-.", None), ("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"),
              ("-", "v"), ("--", "P"), (":", "X"), ("-.", "*"))


def studied_configurations(rows: list[TrialRow]) -> list[list[TrialRow]]:
    """The configurations whose trials recorded a learning curve, most trials (seeds) first, then the best mean
    validation score; at most :data:`MAX_CURVES`."""
    groups = [ts for ts in configurations(rows).values() if any(t.attrs.get("val_curve") for t in ts)]
    groups.sort(key=lambda ts: (-len(ts), -mean_score(ts)))
    return groups[:MAX_CURVES]


def mean_curve(trials: list[TrialRow]) -> list[tuple[int, float, int]]:
    """``(step, mean validation score, trials)`` at every step some trial validated at (early-stopped trials drop
    out of the mean after their last validation)."""
    by_step: dict[int, list[float]] = {}
    for t in trials:
        for step, value in t.attrs.get("val_curve") or []:
            by_step.setdefault(int(step), []).append(float(value))
    return [(s, statistics.fmean(v), len(v)) for s, v in sorted(by_step.items())]


class LearningCurves(Figure):
    file = "learning_curves.png"
    title = "learning curves: the validation objective against optimizer steps, and convergence"
    hint = "needs runs that recorded their validation curve (a current sedbench)"

    def data(self, ctx: Context) -> list[dict] | None:
        groups = studied_configurations(ctx.rows)
        if not groups:
            return None
        self.groups = groups
        objective = groups[0][0].objective  # what the runs monitored and recorded as their curve
        return [{"family": g[0].family, "config": g[0].config_key(), "trials": len(g),
                 "converged": sum(bool(t.attrs.get("converged")) for t in g), "step": s, "metric": objective,
                 "mean_validation": v, "trials_at_step": n} for g in groups for s, v, n in mean_curve(g)]

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        label, scale = validation_axis(records[0]["metric"])
        plt, fig, ax = figure()
        seen: dict[str, int] = {}
        for g in self.groups:
            fam = g[0].family
            color, _ = style(fam)
            k = seen[fam] = seen.get(fam, -1) + 1
            curve = mean_curve(g)
            conv = sum(bool(t.attrs.get("converged")) for t in g)
            linestyle, marker = LINESTYLES[k % len(LINESTYLES)]
            ax.plot([s for s, _, _ in curve], [scale * v for _, v, _ in curve], color=color, linestyle=linestyle,
                    marker=marker, markevery=max(1, len(curve) // 8), markersize=3.5, linewidth=1.2,
                    label=f"{fam.upper()} {_short(g[0])} ({conv}/{len(g)} converged)")
        finish(plt, fig, ax, path, "optimizer steps", f"{label}, mean over the seeds\nstill training at that step",
               "Learning curves of the studied configurations", {"fontsize": 6, "loc": "lower right"})

    def svg(self, ctx: Context, records: list[dict]) -> str:
        from sedbench.report.html import figure_learning_curves

        return figure_learning_curves(records)


def _short(r: TrialRow) -> str:
    """The configuration's settings without the family, short enough for a legend."""
    parts = [p for p in r.config_key().split() if not p.startswith("model=")]
    return " ".join(p.replace("model.", "").replace("data.", "") for p in parts) or "base"
