"""``sedbench report NAME``: results/NAME/ with index.md, tables (Markdown) and plots (PNG + CSV).

Items appear when the sweep's trials support them: the filter-shape table needs trials that
vary ``model.kernel``, the sequence-length plot trials that vary ``data.seq_len``, and so on.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

from sedbench.report.collect import TrialRow, collect

FAMILY_STYLE = {"crnn": ("tab:red", "o"), "cnn": ("tab:blue", "s"), "rnn": ("tab:green", "^"),
                "fnn": ("tab:purple", "D"), "gmm": ("tab:gray", "x")}
METRICS = (("test/f1_frm", "F1_frm"), ("test/er_frm", "ER_frm"), ("test/f1_1sec", "F1_1sec"), ("test/er_1sec", "ER_1sec"))


def _fmt(v: float, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def _mean_std(values: list[float], pct: bool) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    scale = 100 if pct else 1
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.1f}" if pct else f"{mean:.2f}"
    std = statistics.stdev(values) * scale
    return f"{mean:.1f} ± {std:.1f}" if pct else f"{mean:.2f} ± {std:.2f}"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _style(family: str) -> tuple[str, str]:
    return FAMILY_STYLE.get(family, ("tab:orange", "v"))


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    ax.grid(True, alpha=0.3)
    return plt, fig, ax


def _finish(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str, legend: dict) -> str:
    """Every plot: labelled axes with units, a title, a legend; saved as PNG and closed."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**legend)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def completed(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.state == "COMPLETE"]


def best_per_family(rows: list[TrialRow]) -> dict[str, TrialRow]:
    best: dict[str, TrialRow] = {}
    for r in completed(rows):
        if r.family not in best or r.get("val/f1_frm") > best[r.family].get("val/f1_frm"):
            best[r.family] = r
    return dict(sorted(best.items(), key=lambda kv: -kv[1].get("val/f1_frm")))


def write_trials_csv(rows: list[TrialRow], out: Path) -> str:
    keys = sorted({k for r in rows for k in r.params})
    metric_keys = sorted({k for r in rows for k in r.metrics})
    header = ["trial", "state", "family", *keys, "n_params", *metric_keys, "fit_seconds", "run_name",
              "mlflow_run_id", "error"]
    _write_csv(out / "trials.csv", header,
               [[r.number, r.state, r.family, *[r.params.get(k, "") for k in keys], r.attrs.get("n_params", ""),
                 *[r.metrics.get(k, "") for k in metric_keys], r.attrs.get("fit_seconds", ""),
                 r.attrs.get("run_name", ""), r.attrs.get("mlflow_run_id", ""), r.attrs.get("error", "")]
                for r in rows])
    return "trials.csv"


def write_params_vs_f1(rows: list[TrialRow], out: Path) -> str | None:
    pts = [r for r in completed(rows) if r.attrs.get("n_params") and not math.isnan(r.get("test/f1_frm"))]
    if not pts:
        return None
    _write_csv(out / "params_vs_f1.csv", ["trial", "family", "n_params", "test_f1_frm", "config"],
               [[r.number, r.family, r.attrs["n_params"], r.get("test/f1_frm"), r.config_key()] for r in pts])
    plt, fig, ax = _figure()
    for fam in sorted({r.family for r in pts}):
        color, marker = _style(fam)
        sel = [r for r in pts if r.family == fam]
        ax.scatter([r.attrs["n_params"] for r in sel], [100 * r.get("test/f1_frm") for r in sel], c=color,
                   marker=marker, label=fam.upper(), alpha=0.8, edgecolors="black", linewidths=0.4)
    ax.set_xscale("log")
    return _finish(plt, fig, ax, out / "params_vs_f1.png", "trainable parameters (count, log scale)",
                   "test F1_frm (%)", "Parameters vs. accuracy (cf. Cakir et al. 2017, Fig. 4)", {"title": "family"})


def write_best(rows: list[TrialRow], out: Path) -> str | None:
    best = best_per_family(rows)
    if not best:
        return None
    lines = ["# Best configuration per family (Table I)", "",
             "Chosen by validation F1_frm; test scores of that trial.", "",
             "| family | parameters | val F1_frm (%) | test F1_frm (%) | test ER_frm | configuration | trial |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for fam, r in best.items():
        lines.append(f"| {fam.upper()} | {int(r.attrs.get('n_params', 0)):,} | {_fmt(r.get('val/f1_frm'), True)} | "
                     f"{_fmt(r.get('test/f1_frm'), True)} | {_fmt(r.get('test/er_frm'))} | `{r.config_key()}` | {r.number} |")
    (out / "best.md").write_text("\n".join(lines) + "\n")
    return "best.md"


def write_scores(rows: list[TrialRow], out: Path) -> str | None:
    """Table II: per family, its best configuration's scores as mean ± std over seeds."""
    groups: dict[tuple[str, str], list[TrialRow]] = defaultdict(list)
    for r in completed(rows):
        groups[(r.family, r.config_key())].append(r)
    if not groups:
        return None
    per_family: dict[str, list[TrialRow]] = {}
    for (fam, _), trials in groups.items():
        mean_val = statistics.fmean(t.get("val/f1_frm") for t in trials)
        if fam not in per_family or mean_val > statistics.fmean(t.get("val/f1_frm") for t in per_family[fam]):
            per_family[fam] = trials
    lines = ["# Scores (Table II)", "", "Each family's best configuration (by mean validation F1_frm); mean ± std "
             "over its seeds (n = number of seeds). F1 in %, ER as a ratio.", "",
             "| method | n | " + " | ".join(name for _, name in METRICS) + " |", "|---|---:|" + "---:|" * len(METRICS)]
    for fam, trials in sorted(per_family.items(), key=lambda kv: -statistics.fmean(t.get("test/f1_frm") for t in kv[1])):
        cells = [_mean_std([t.get(key) for t in trials], key.startswith("test/f1")) for key, _ in METRICS]
        lines.append(f"| {fam.upper()} | {len(trials)} | " + " | ".join(cells) + " |")
    (out / "scores.md").write_text("\n".join(lines) + "\n")
    return "scores.md"


def write_per_class(rows: list[TrialRow], out: Path) -> str | None:
    best = {f: r for f, r in best_per_family(rows).items() if r.class_f1}
    if not best:
        return None
    classes = sorted({c for r in best.values() for c in r.class_f1})
    fams = list(best)
    lines = ["# Class-wise F1_frm (Table III)", "", "Test F1_frm (%) of each family's best trial.", "",
             "| class | " + " | ".join(f.upper() for f in fams) + " |", "|---|" + "---:|" * len(fams)]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(_fmt(best[f].class_f1.get(c, float('nan')), True) for f in fams) + " |")
    (out / "per_class.md").write_text("\n".join(lines) + "\n")
    return "per_class.md"


def _by_param(rows: list[TrialRow], key: str) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in completed(rows):
        if key in r.params and not math.isnan(r.get("test/f1_frm")):
            out[(r.family, r.params[key])].append(r.get("test/f1_frm"))
    return out


def write_filter_shape(rows: list[TrialRow], out: Path) -> list[str]:
    groups = _by_param(rows, "model.kernel")
    shapes = sorted({s for _, s in groups}, key=lambda s: [int(x) for x in s.strip("[]").split(",")])
    if len(shapes) < 2:
        return []
    fams = sorted({f for f, _ in groups})
    _write_csv(out / "filter_shape.csv", ["family", "kernel_freq_time", "trials", "mean_test_f1_frm"],
               [[f, s, len(groups[(f, s)]), statistics.fmean(groups[(f, s)])] for f in fams for s in shapes
                if (f, s) in groups])
    lines = ["# F1_frm vs. filter shape (Table IV)", "", "Mean test F1_frm (%) over the trials with each "
             "filter shape (frequency, time); the number of trials in brackets.", "",
             "| filter (freq, time) | " + " | ".join(f.upper() for f in fams) + " |", "|---|" + "---:|" * len(fams)]
    for s in shapes:
        cells = [f"{_fmt(statistics.fmean(groups[(f, s)]), True)} ({len(groups[(f, s)])})" if (f, s) in groups else "–"
                 for f in fams]
        lines.append(f"| ({s.strip('[]')}) | " + " | ".join(cells) + " |")
    (out / "filter_shape.md").write_text("\n".join(lines) + "\n")
    plt, fig, ax = _figure()
    width = 0.8 / len(fams)
    for i, f in enumerate(fams):
        xs = [j + i * width for j, s in enumerate(shapes) if (f, s) in groups]
        ys = [100 * statistics.fmean(groups[(f, s)]) for s in shapes if (f, s) in groups]
        ax.bar(xs, ys, width=width, color=_style(f)[0], label=f.upper(), edgecolor="black", linewidth=0.4)
    ax.set_xticks([j + width * (len(fams) - 1) / 2 for j in range(len(shapes))])
    ax.set_xticklabels([f"({s.strip('[]')})" for s in shapes])
    return ["filter_shape.md", _finish(plt, fig, ax, out / "filter_shape.png",
                                       "filter shape (frequency, time) [bins, frames]", "mean test F1_frm (%)",
                                       "Accuracy vs. convolution filter shape (cf. Table IV)", {"title": "family"})]


def write_seq_len(rows: list[TrialRow], out: Path) -> str | None:
    groups = _by_param(rows, "data.seq_len")
    lengths = sorted({int(s) for _, s in groups})
    if len(lengths) < 2:
        return None
    fams = sorted({f for f, _ in groups})
    _write_csv(out / "seq_len.csv", ["family", "seq_len_frames", "seq_len_seconds", "trials", "mean_test_f1_frm"],
               [[f, n, n * 0.02, len(groups[(f, str(n))]), statistics.fmean(groups[(f, str(n))])]
                for f in fams for n in lengths if (f, str(n)) in groups])
    plt, fig, ax = _figure()
    for f in fams:
        pts = [(n * 0.02, 100 * statistics.fmean(groups[(f, str(n))])) for n in lengths if (f, str(n)) in groups]
        color, marker = _style(f)
        ax.plot(*zip(*pts, strict=True), color=color, marker=marker, label=f.upper())
    ax.set_xscale("log", base=2)
    return _finish(plt, fig, ax, out / "seq_len.png", "sequence length (s, log scale; 20 ms frames)",
                   "mean test F1_frm (%)", "Accuracy vs. sequence length", {"title": "family"})


def write_importance(study, out: Path) -> str | None:
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    names = {k for t in done for k in t.params}
    if len(done) < 3 or len(names) < 2:
        return None
    try:
        imp = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError):  # e.g. parameters not shared by all trials
        return None
    if not imp:
        return None
    _write_csv(out / "importance.csv", ["parameter", "importance"], [[k, v] for k, v in imp.items()])
    plt, fig, ax = _figure()
    keys = list(imp)[::-1]
    ax.barh(keys, [imp[k] for k in keys], color="tab:blue", edgecolor="black", linewidth=0.4,
            label="fANOVA importance")
    return _finish(plt, fig, ax, out / "importance.png",
                   "importance for validation F1_frm (fraction of variance, fANOVA)", "hyperparameter",
                   f"Hyperparameter importance ({study.study_name})", {"loc": "lower right"})


def write_report(name: str, storage: str, tracking_uri: str | None, out: Path) -> Path:
    rows, study = collect(name, storage, tracking_uri)
    out.mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, str]] = []

    def add(title: str, produced):
        for p in (produced if isinstance(produced, list) else [produced]):
            if p:
                items.append((title, p))

    add("every trial, flattened", write_trials_csv(rows, out))
    add("test F1_frm against parameter count (Fig. 4)", write_params_vs_f1(rows, out))
    add("best configuration per family (Table I)", write_best(rows, out))
    add("scores, mean ± std over seeds (Table II)", write_scores(rows, out))
    add("class-wise F1_frm per family (Table III)", write_per_class(rows, out))
    add("F1_frm per filter shape (Table IV)", write_filter_shape(rows, out))
    add("F1_frm against sequence length", write_seq_len(rows, out))
    add("hyperparameter importance (Optuna's fANOVA, over the parameters every completed trial has)",
        write_importance(study, out))
    states = defaultdict(int)
    for r in rows:
        states[r.state] += 1
    lines = [f"# Report: {name}", "", f"Optuna study `{name}` ({storage}); MLflow `{tracking_uri}`.", "",
             "Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) + ".", ""]
    lines += [f"- [{p}]({p}): {title}" for title, p in items]
    (out / "index.md").write_text("\n".join(lines) + "\n")
    return out
