"""``sedbench report NAME``: results/NAME/ with index.md, tables (Markdown) and plots (PNG + CSV).

Items appear when the sweep's trials support them: the filter-shape table needs trials that
vary ``model.kernel``, the sequence-length plot trials that vary ``data.seq_len``, and so on.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from sedbench.metrics import registry
from sedbench.report.collect import (
    MATCHED_PARAMS,
    TrialRow,
    best_groups,
    best_per_family,
    collect,
    completed,
    file_counts,
    matched_controls,
    matched_groups,
)
from sedbench.report.common import (
    figure,
    finish,
    fmt,
    half_interval,
    mean_std,
    style,
    write_csv,
)
from sedbench.report.costs import ENERGY, MACS, PARAMS, CostVsF1, write_costs
from sedbench.report.items import Context, Figure, Item


def _detection_columns() -> tuple[tuple[str, str], ...]:
    """Beyond the paper (docs/metrics.md), each raw and post-processed (``<key>_pp``): the segment F1 scores
    that have a post-processed twin, then the registry's detection table."""
    twins = tuple((k, name) for k, name in registry.table("paper") if k.startswith("test/f1")
                  and registry.get(k + "_pp") is not None)
    return twins + registry.table("detection")


class TrialsCsv(Item):
    file, title = "trials.csv", "every trial, flattened"

    def write(self, ctx: Context) -> list[str]:
        return [write_trials_csv(ctx.rows, ctx.out)]

    def html(self, ctx: Context) -> str:
        return f'<p><a href="{self.file}">{self.file}</a></p>'


class Table(Item):
    """A Markdown table written by ``make(ctx)`` (which returns its file name, or None when unsupported)."""

    def __init__(self, file: str, title: str, make: Callable[[Context], str | None], hint: str = ""):
        self.file, self.title, self.make, self.hint = file, title, make, hint

    def write(self, ctx: Context) -> list[str]:
        made = self.make(ctx)
        return [made] if made else []


def write_trials_csv(rows: list[TrialRow], out: Path) -> str:
    keys = sorted({k for r in rows for k in r.params})
    tail = ["epochs", "steps", "converged", "convergence", "val_gain_last_quarter", "failed_run", "failed_reason",
            "fit_seconds", "budget", "run_name", "mlflow_run_id", "error"]
    # what the architecture costs (sedbench.training.train.model_costs), then what the run spent (its records)
    costs = ["n_params", "macs_per_10s", "energy_train_kwh", "energy_test_kwh", "energy_method", "peak_rss_gb"]
    metric_keys = sorted({k for r in rows for k in r.metrics} - {*costs, *tail})
    write_csv(out / "trials.csv", ["trial", "state", "family", *keys, *costs, *metric_keys, *tail],
              [[r.number, r.state, r.family, *[r.params.get(k, "") for k in keys],
                *[r.metrics.get(k, r.attrs.get(k, "")) for k in [*costs, *metric_keys]],
                *[r.attrs.get(k, r.metrics.get(k, "")) for k in tail]] for r in rows])
    return "trials.csv"


def _with_interval(value: float, counts: list[list[int]] | None, statistic: str, pct: bool) -> str:
    if not counts:
        return fmt(value, pct)
    from sedbench.stats import bootstrap_files

    ci = bootstrap_files(counts, statistic)
    return f"{fmt(value, pct)} [{fmt(ci.low, pct)}, {fmt(ci.high, pct)}]"


def write_best(rows: list[TrialRow], out: Path, fetch=None) -> str | None:
    best = best_per_family(rows)
    if not best:
        return None
    clips = any(not math.isnan(r.get("test/accuracy")) for r in best.values())  # clip classification runs
    objective = next(iter(best.values())).objective
    extra = " test accuracy (%) |" if clips else ""
    lines = ["# Best configuration per family (Table I)", "",
             f"Chosen by the validation score the sweep optimized ({registry.display(objective)}); "
             "test scores of that trial, in brackets their 95 % bootstrap interval over the test files (2000 "
             "resamples of the run's per-file counts; one seed: seed-to-seed spread is in scores.md).", "",
             f"| family | parameters | validation {registry.display(objective)}"
             f"{' (%)' if registry.is_percent(objective) else ''} | test F1_frm (%) | test ER_frm |"
             f"{extra} configuration | trial |",
             "|---|---:|---:|---:|---:|" + ("---:|" if clips else "") + "---|---:|"]
    for fam, r in best.items():
        acc = f" {fmt(r.get('test/accuracy'), True)} |" if clips else ""
        config = r.config_key() or "base configuration"
        note = " ⚠ budget truncated by the clock" if r.truncated else ""
        frames = file_counts(r, fetch).get("frm")
        val = fmt(r.get(objective), registry.is_percent(objective))
        lines.append(f"| {fam.upper()} | {int(r.attrs.get('n_params', 0)):,} | {val} | "
                     f"{_with_interval(r.get('test/f1_frm'), frames, 'f1', True)} | "
                     f"{_with_interval(r.get('test/er_frm'), frames, 'er', False)} |{acc} `{config}`{note} | "
                     f"{r.number} |")
    (out / "best.md").write_text("\n".join(lines) + "\n")
    return "best.md"




def _score_cell(trials: list[TrialRow], key: str, fetch) -> str:
    """mean ± std [t interval] over the trials; one trial alone: its value [bootstrap interval over files]."""
    pct = registry.is_percent(key)
    metric = registry.get(key)
    if len(trials) == 1 and metric is not None and metric.per_file:
        tag, statistic = metric.per_file
        counts = file_counts(trials[0], fetch).get(tag)
        if counts:
            return _with_interval(trials[0].get(key), counts, statistic, pct) + " (files)"
    return mean_std([t.get(key) for t in trials], pct)


def write_scores(rows: list[TrialRow], out: Path, fetch=None) -> str | None:
    """Table II: per family, its best configuration's scores as mean ± std over seeds (and folds)."""
    per_family = best_groups(rows)
    if not per_family:
        return None
    present = [(key, name) for key, name in registry.table("paper") + registry.table("clips")
               if any(not math.isnan(t.get(key)) for trials in per_family.values() for t in trials)]

    def rank(kv):  # best first: frame F1 where there is one, else clip accuracy
        values = [t.get("test/f1_frm") for t in kv[1]]
        if all(math.isnan(v) for v in values):
            values = [t.get("test/accuracy") for t in kv[1]]
        return -statistics.fmean(0.0 if math.isnan(v) else v for v in values)

    lines = ["# Scores (Table II)", "", "Each family's best configuration (by mean validation score); mean ± std "
             "over its seeds and cross-validation folds (n = trials) and, in brackets, the 95 % t interval of the "
             "mean; a configuration trained once shows its score and, marked (files), the 95 % bootstrap interval "
             "over its test files instead (seed-to-seed spread unknown: run more seeds). F1 and accuracy in %, "
             "ER and EER as ratios.", "",
             "| method | n | " + " | ".join(name for _, name in present) + " |", "|---|---:|" + "---:|" * len(present)]
    ranked = sorted(per_family.items(), key=rank)
    for fam, trials in ranked:
        cells = [_score_cell(trials, key, fetch) for key, _ in present]
        lines.append(f"| {fam.upper()} | {_n_cell(trials)} | " + " | ".join(cells) + " |")
    lines += _detection_table(ranked)
    (out / "scores.md").write_text("\n".join(lines) + "\n")
    return "scores.md"


def _n_cell(trials: list[TrialRow]) -> str:
    cut = sum(t.truncated for t in trials)
    return f"{len(trials)}" + (f" ({cut} truncated ⚠)" if cut else "")


def _detection_table(ranked: list[tuple[str, list[TrialRow]]]) -> list[str]:
    """The same configurations' event-based, PSDS and ROC AUC scores, raw and after the median filters tuned
    on validation (runs recorded before these scores existed are left out)."""
    present = [(key, name) for key, name in _detection_columns()
               if any(not math.isnan(t.get(key + "_pp")) for _, trials in ranked for t in trials)]
    if not present:
        return []
    lines = ["", "## Detection scores, raw and post-processed", "",
             "The same configurations. *raw*: the network's output thresholded at C, as in the table above; "
             "*post-processed*: after class-wise median filters whose lengths were chosen on the validation split "
             "(docs/metrics.md). Event-based F1/ER: onset collar 200 ms, offset collar max(200 ms, 20 %) "
             "(sed_eval); PSDS1/PSDS2 (DCASE settings) and 1-s segment ROC AUC from the probabilities "
             "(sed_scores_eval), as ratios. Mean ± std [95 % t interval] over the trials.", "",
             "| method | output | n | " + " | ".join(name for _, name in present) + " |",
             "|---|---|---:|" + "---:|" * len(present)]
    for fam, trials in ranked:
        for label, suffix in (("raw", ""), ("post-processed", "_pp")):
            cells = [mean_std([t.get(key + suffix) for t in trials], registry.is_percent(key)) for key, _ in present]
            lines.append(f"| {fam.upper()} | {label} | {_n_cell(trials)} | " + " | ".join(cells) + " |")
    return lines


def write_per_class(rows: list[TrialRow], out: Path) -> str | None:
    """Table III: class-wise test F1_frm of each family's best configuration, mean ± std over its trials."""
    best = {f: trials for f, trials in best_groups(rows).items() if any(t.class_f1 for t in trials)}
    if not best:
        return None
    classes = sorted({c for trials in best.values() for t in trials for c in t.class_f1})
    fams = list(best)
    lines = ["# Class-wise F1_frm (Table III)", "",
             "Test F1_frm (%) of each family's best configuration (by mean validation score): mean ± std over its "
             "seeds and folds and, in brackets, the 95 % t interval of the mean (n = trials). A configuration trained "
             "once has no interval here: class-wise counts per file are not recorded (overall ones are, see "
             "scores.md).", "",
             "| class | " + " | ".join(f"{f.upper()} (n = {len(best[f])})" for f in fams) + " |",
             "|---|" + "---:|" * len(fams)]
    for c in classes:
        cells = [mean_std([t.class_f1.get(c, float("nan")) for t in best[f]], True) for f in fams]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    (out / "per_class.md").write_text("\n".join(lines) + "\n")
    return "per_class.md"


def _by_param(rows: list[TrialRow], key: str) -> tuple[dict[tuple[str, str], list[float]], dict[str, str]]:
    """Test F1_frm per (family, value of ``key``) over configurations that differ only in ``key``
    (:func:`matched_groups`), and each family's other settings."""
    out: dict[tuple[str, str], list[float]] = {}
    contexts: dict[str, str] = {}
    for fam in sorted({r.family for r in completed(rows)}):
        for value, trials in matched_groups(rows, fam, key).items():
            scores = [t.get("test/f1_frm") for t in trials if not math.isnan(t.get("test/f1_frm"))]
            if scores:
                out[(fam, value)] = scores
                contexts[fam] = " ".join(p for p in trials[0].config_key().split() if not p.startswith(f"{key}="))
    return out, contexts


def _shape_key(shape: str) -> list[int]:
    return [int(x) for x in shape.strip("[]").split(",")]


class FilterShape(Figure):
    """Table IV: test F1_frm per filter shape, all other settings equal, and beside it each shape at the maps that
    match the (5,5) model's parameter count (the capacity control); a table, a bar chart, its SVG."""

    file, title = "filter_shape.png", "F1_frm per filter shape (Table IV)"
    hint = "needs trials that vary model.kernel (e.g. `sedbench sweep filter_shape`)"

    def data(self, ctx: Context) -> list[dict] | None:
        groups, self.contexts = _by_param(ctx.rows, "model.kernel")
        shapes = sorted({s for _, s in groups}, key=_shape_key)
        if len(shapes) < 2:
            return None
        self.groups = groups
        self.controls = {}   # (family, shape) -> the capacity control's scores, and its maps and parameters
        compared = {fam: matched_groups(ctx.rows, fam, "model.kernel") for fam in sorted({f for f, _ in groups})}
        for fam, by_shape in compared.items():
            for shape, trials in matched_controls(ctx.rows, fam, by_shape).items():
                scores = [t.get("test/f1_frm") for t in trials if not math.isnan(t.get("test/f1_frm"))]
                if scores:
                    self.controls[(fam, shape)] = (scores, trials[0].params.get("model.maps"),
                                                   int(trials[0].attrs["n_params"]))
        out = [{"family": f, "kernel_freq_time": s, "trials": len(groups[(f, s)]),
                "mean_test_f1_frm": statistics.fmean(groups[(f, s)]), "capacity_control": False,
                "maps": compared[f][s][0].params.get("model.maps", ""),
                "n_params": compared[f][s][0].attrs.get("n_params", "")}
               for f in sorted({f for f, _ in groups}) for s in shapes if (f, s) in groups]
        out += [{"family": f, "kernel_freq_time": s, "trials": len(v[0]), "mean_test_f1_frm": statistics.fmean(v[0]),
                 "capacity_control": True, "maps": v[1], "n_params": v[2]}
                for (f, s), v in sorted(self.controls.items())]
        return out

    def _series(self, records: list[dict]) -> list[tuple[str, bool]]:
        """The bar series: each family, and after it its capacity control where there is one."""
        fams = sorted({r["family"] for r in records})
        return [(f, c) for f in fams for c in (False, True) if not c or any(k[0] == f for k in self.controls)]

    def _scores(self, family: str, shape: str, control: bool) -> list[float] | None:
        if control:
            return self.controls[(family, shape)][0] if (family, shape) in self.controls else None
        return self.groups.get((family, shape))

    def markdown(self, ctx: Context, records: list[dict]) -> str:
        fams = sorted({r["family"] for r in records})
        shapes = sorted({r["kernel_freq_time"] for r in records}, key=_shape_key)
        series = self._series(records)
        head = [f"{f.upper()} at the (5,5) model's parameters" if c else f.upper() for f, c in series]
        lines = ["# F1_frm vs. filter shape (Table IV)", "", "Test F1_frm (%) over the trials with each filter "
                 "shape (frequency, time), all other settings equal: mean ± std [95 % t interval of the mean] "
                 "(n = trials).", "", *[f"- {f.upper()}: `{self.contexts[f]}`" for f in fams]]
        if self.controls:
            lines += ["", f"*At the (5,5) model's parameters* (the capacity control, sedbench's extension): each "
                          f"shape at the number of maps whose parameter count is within {100 * MATCHED_PARAMS:g} % "
                          "of the (5,5) model's, every other setting the same."]
        lines += ["", "| filter (freq, time) | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
        for s in shapes:
            cells = []
            for f, c in series:
                scores = self._scores(f, s, c)
                extra = f"; {self.controls[(f, s)][1]} maps, {self.controls[(f, s)][2]:,} parameters" if c and \
                    scores else ""
                cells.append(f"{mean_std(scores, True)} (n = {len(scores)}{extra})" if scores else "–")
            lines.append(f"| ({s.strip('[]')}) | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        shapes = sorted({r["kernel_freq_time"] for r in records}, key=_shape_key)
        series = self._series(records)
        plt, fig, ax = figure()
        width = 0.8 / len(series)
        for i, (f, c) in enumerate(series):
            have = [(j, self._scores(f, s, c)) for j, s in enumerate(shapes) if self._scores(f, s, c)]
            ax.bar([j + i * width for j, _ in have], [100 * statistics.fmean(v) for _, v in have], width=width,
                   color=style(f)[0], label=f"{f.upper()} at the (5,5) model's parameters" if c else f.upper(),
                   edgecolor="black", linewidth=0.4, hatch="//" if c else None, alpha=0.6 if c else 1.0,
                   yerr=[100 * half_interval(v) for _, v in have], capsize=3, error_kw={"linewidth": 0.8})
        ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(shapes))])
        ax.set_xticklabels([f"({s.strip('[]')})" for s in shapes])
        finish(plt, fig, ax, path, "filter shape (frequency, time) [bins, frames]",
               "mean test F1_frm (%), bars: 95 % t interval", "Accuracy vs. convolution filter shape (cf. Table IV)",
               {"title": "family"})

    def svg(self, ctx: Context, records: list[dict]) -> str:
        from sedbench.report.html import figure_filter_shape

        return figure_filter_shape(records)


class SeqLen(Figure):
    """Mean test F1_frm against the sequence length in seconds (frames times each run's frame hop)."""

    file, title = "seq_len.png", "F1_frm against sequence length"
    hint = "needs trials that vary data.seq_len (e.g. `sedbench sweep seq_len`)"

    def data(self, ctx: Context) -> list[dict] | None:
        groups: dict[tuple[str, int, float], list[float]] = {}  # (family, frames, seconds), all else equal
        for fam in sorted({r.family for r in completed(ctx.rows)}):
            for value, trials in matched_groups(ctx.rows, fam, "data.seq_len").items():
                hop = trials[0].hop_seconds
                scores = [t.get("test/f1_frm") for t in trials if not math.isnan(t.get("test/f1_frm"))]
                if hop and scores:
                    groups[(fam, int(value), round(int(value) * hop, 4))] = scores
        if len({s for _, _, s in groups}) < 2:
            return None
        self.groups = groups
        return [{"family": f, "seq_len_frames": n, "seq_len_seconds": s, "trials": len(groups[(f, n, s)]),
                 "mean_test_f1_frm": statistics.fmean(groups[(f, n, s)])}
                for f, n, s in sorted(groups, key=lambda k: (k[0], k[2]))]

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        plt, fig, ax = figure()
        for f in sorted({r["family"] for r in records}):
            mine = [(r["family"], r["seq_len_frames"], r["seq_len_seconds"]) for r in records if r["family"] == f]
            color, marker = style(f)
            ax.errorbar([s for _, _, s in mine], [100 * statistics.fmean(self.groups[k]) for k in mine],
                        yerr=[100 * half_interval(self.groups[k]) for k in mine], color=color, marker=marker,
                        capsize=3, label=f.upper())
        ax.set_xscale("log", base=2)
        finish(plt, fig, ax, path, "sequence length (s, log scale)", "mean test F1_frm (%), bars: 95 % t interval",
               "Accuracy vs. sequence length", {"title": "family"})


class Importance(Figure):
    file = "importance.png"
    title = "hyperparameter importance (Optuna's fANOVA, over the parameters every completed trial has)"

    def data(self, ctx: Context) -> list[dict] | None:
        import optuna

        done = [t for t in ctx.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        names = {k for t in done for k in t.params}
        if len(done) < 3 or len(names) < 2:
            return None
        try:
            fanova = optuna.importance.FanovaImportanceEvaluator(seed=0)
            imp = optuna.importance.get_param_importances(ctx.study, evaluator=fanova)
        except (RuntimeError, ValueError):  # e.g. parameters not shared by all trials
            return None
        return [{"parameter": k, "importance": v} for k, v in imp.items()]

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        from sedbench.studies import objective_of

        plt, fig, ax = figure()
        keys = [r["parameter"] for r in records][::-1]
        ax.barh(keys, [r["importance"] for r in records][::-1], color="tab:blue", edgecolor="black",
                linewidth=0.4, label="fANOVA importance")
        finish(plt, fig, ax, path, f"importance for validation {registry.display(objective_of(ctx.study)[0])} "
               "(fraction of variance, fANOVA)", "hyperparameter",
               f"Hyperparameter importance ({ctx.study.study_name})", {"loc": "lower right"})

    def svg(self, ctx: Context, records: list[dict]) -> str:
        from sedbench.report.html import figure_importance

        return figure_importance(records)


def fill_deferred_psds(rows: list[TrialRow], fetch, tracking_uri: str | None) -> int:
    """PSDS of the configurations the tables show, for runs recorded with ``evaluation.psds=report``: computed
    from each run's test scores artifact and recorded in its MLflow run (once: a later report reads them)."""
    from sedbench.training.artifacts import TEST_SCORES_PATH

    todo = [t for trials in best_groups(rows).values() for t in trials
            if math.isnan(t.get("test/psds1")) and t.attrs.get("mlflow_run_id")]
    todo = [(t, path) for t in todo if (path := fetch(t.attrs["mlflow_run_id"], TEST_SCORES_PATH)) is not None]
    if not todo:
        return 0
    from tqdm.auto import tqdm

    from sedbench.tracking import RunStore, as_mlflow_metrics
    from sedbench.training.scoring import deferred_psds

    store = RunStore(tracking_uri)
    # the bar on a terminal only (disable=None): in a log file its redraws would be noise
    for t, path in tqdm(todo, desc="PSDS of the report's runs (evaluation.psds=report)", unit="run", disable=None):
        metrics = as_mlflow_metrics(registry.as_record(deferred_psds(path)))  # named as the run would have
        store.log_steps(t.attrs["mlflow_run_id"], {k: {0: v} for k, v in metrics.items()}, {})
        t.metrics.update({k: v for k, v in metrics.items() if k.count("/") == 1})
    return len(todo)


def artifact_fetcher(tracking_uri: str | None, folder: Path):
    """``fetch(run_id, path)``: a run's artifact downloaded under ``folder`` (once: the tables and figures
    asking for the same run's artifact share the download), or None when it has none."""
    if not tracking_uri:
        return lambda run_id, path: None
    from sedbench.tracking import RunStore

    store, fetched = RunStore(tracking_uri), {}

    def fetch(run_id: str, path: str):
        if run_id and (run_id, path) not in fetched:
            fetched[(run_id, path)] = store.download(run_id, path, folder / run_id)
        return fetched.get((run_id, path))

    return fetch


def report_items() -> list[Item]:
    """The report's tables and figures, in the order index.md and index.html show them."""
    from sedbench.report import figures
    from sedbench.report.rounds import write_study_claims

    return [TrialsCsv(), CostVsF1(PARAMS), CostVsF1(MACS), CostVsF1(ENERGY),
            Table("costs.md", "what each configuration costs, with its energy-weighted F1_frm (DCASE)",
                  lambda c: write_costs(c, c.energy_reference), "needs runs with test F1_frm"),
            Table("per_class.md", "class-wise F1_frm of each family's best configuration (Table III)",
                  lambda c: write_per_class(c.rows, c.out), "needs runs with class-wise test scores"),
            FilterShape(), SeqLen(), Importance(),
            Table("best.md", "best configuration per family, with intervals over test files (Table I)",
                  lambda c: write_best(c.rows, c.out, c.fetch)),
            Table("scores.md", "scores, mean ± std and 95 % interval over seeds (Table II)",
                  lambda c: write_scores(c.rows, c.out, c.fetch)),
            Table("claims.md", "the paper's claims with verdicts: holds, contradicted or inconclusive",
                  write_study_claims),
            figures.activity(), figures.filters(), figures.PitchShift(), figures.LearningCurves()]


def record_failures(rows: list[TrialRow], name: str, storage: str, tracking_uri: str | None) -> None:
    """Which completed runs failed by the rule (``sedbench.stats.FAIL_RULE``, judged within each configuration),
    recorded where a run's other results are: ``failed_run`` and ``failed_reason`` in the rows (trials.csv), each
    MLflow run's tags and its metrics.json, and the study's ``failed_runs`` attribute ``{trial: reason}``
    (Optuna keeps a finished trial's own attributes fixed). Written when the report is, since the rule needs the
    configuration's other seeds."""
    import json
    import logging
    import os

    from sedbench.report.claims import failure_records
    from sedbench.studies import set_study_attr

    records = failure_records(rows)
    store = None
    if tracking_uri:
        from sedbench.tracking import RunStore

        store = RunStore(tracking_uri)
    for r in rows:
        if r.number not in records:
            continue
        reason = records[r.number]
        tags = {"failed_run": str(bool(reason)).lower(), "failed_reason": reason or "-"}
        known = (r.attrs.get("failed_run"), r.attrs.get("failed_reason"))
        r.attrs["failed_run"], r.attrs["failed_reason"] = bool(reason), reason
        if known == (bool(reason), reason):
            continue
        if store is not None and r.attrs.get("mlflow_run_id"):
            try:
                store.set_tags(r.attrs["mlflow_run_id"], tags)
            except Exception as exc:  # MlflowException: a run gone from the store; the tables are still written
                logging.getLogger("sedbench").warning("trial %s: its MLflow run %s could not take the failed_run "
                                                      "tag (%s)", r.number, r.attrs["mlflow_run_id"],
                                                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        metrics = Path(str(r.attrs.get("output_dir", ""))) / "metrics.json"
        if r.attrs.get("output_dir") and metrics.is_file():
            data = json.loads(metrics.read_text())
            data.update(failed_run=bool(reason), failed_reason=reason)
            partial = metrics.with_name(f".{metrics.name}.partial")
            partial.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(partial, metrics)   # never a half-written metrics.json
    failed = {str(n): why for n, why in records.items() if why}
    set_study_attr(storage, name, "failed_runs", failed)


def provenance_lines(rows: list[TrialRow], name: str) -> list[str]:
    """The report header's account of what produced its completed runs: their code states, dataset fingerprints
    and library versions (sedbench.provenance), and the trials that ran on other ones than the sweep started
    with."""
    from collections import Counter

    from sedbench.provenance import code_id, library_changes

    done = [r for r in rows if r.state == "COMPLETE"]
    have = [r.attrs["provenance"] for r in done if r.attrs.get("provenance")]
    if not have:
        return ["Provenance: the runs recorded none (recorded by a sedbench older than its provenance records)."]

    def listed(counts: Counter) -> str:
        return ", ".join(f"`{k}` ({n} runs)" for k, n in counts.most_common())

    codes = Counter(code_id(p.get("code")) for p in have)
    data = Counter(f"{p['dataset'].get('name')} {p['dataset']['fingerprint']}" for p in have if p.get("dataset"))
    libs = Counter(tuple(sorted(p["libraries"].items())) for p in have if p.get("libraries"))
    lines = [f"Provenance of the completed runs: code {listed(codes)}; dataset {listed(data) or 'not recorded'}."]
    if len(libs) == 1:
        lines.append("Libraries: " + ", ".join(f"{k} {v}" for k, v in next(iter(libs))) + ".")
    elif libs:
        (first, _), *others = libs.most_common()
        lines.append(f"Libraries: {len(libs)} sets among the runs; against the most common: " + "; ".join(
            ", ".join(library_changes(dict(first), dict(o))) for o, _ in others) + ".")
    other = [r for r in done if r.attrs.get("provenance_differs")]
    if other:
        lines.append("⚠ " + ", ".join(f"trial {r.number} ({', '.join(r.attrs['provenance_differs'])})" for r in other)
                     + f" ran on other code, libraries or data than the sweep started with (`sedbench status {name}`)"
                     ": comparisons that mix them say so, and claims across two copies of the dataset get no verdict.")
    if len(have) < len(done):
        lines.append(f"{len(done) - len(have)} completed runs recorded no provenance.")
    return [part for line in lines for part in (line, "")][:-1]   # one paragraph each


def write_report(name: str, storage: str, tracking_uri: str | None, out: Path,
                 mlflow_url: str | None = "http://127.0.0.1:5000", allow_mixed: bool = False,
                 energy_reference: str | None = None) -> Path:
    import tempfile

    from sedbench.report.html import run_link, write_html

    rows, study = collect(name, storage, tracking_uri)
    out.mkdir(parents=True, exist_ok=True)
    record_failures(rows, name, storage, tracking_uri)
    parent = sweep_parent_run(tracking_uri, name)
    experiment = parent.info.experiment_id if parent else None
    written: list[tuple[Item, list[str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fetch = artifact_fetcher(tracking_uri, Path(tmp))
        fill_deferred_psds(rows, fetch, tracking_uri)  # before any table: PSDS the trials left to the report
        ctx = Context(name, rows, study, out, fetch, lambda run_id: run_link(mlflow_url, experiment, run_id),
                      allow_mixed, energy_reference)
        items = report_items()
        for item in items:
            files = item.write(ctx)
            if files:
                written.append((item, files))
    states = defaultdict(int)
    for r in rows:
        states[r.state] += 1
    head = [f"Optuna study `{name}` ({storage}); MLflow `{tracking_uri}`.", "",
            "Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) + ".", "",
            *provenance_lines(rows, name)]
    tail = []
    missing = [item for item in items if item.hint and all(item is not w for w, _ in written)]
    if missing:
        tail += ["", "Not in this report (the trials do not support them yet):", ""]
        tail += [f"- {item.file}: {item.hint.format(name=name)}" for item in missing]
    intro = head + tail
    lines = [f"# Report: {name}", "", *head, "", "Browse it: [index.html](index.html) (tables and interactive "
             "figures in one page).", "", *[_index_line(item, files) for item, files in written], *tail]
    (out / "index.md").write_text("\n".join(lines) + "\n")
    write_html(ctx, written, mlflow_url, intro)
    if parent is not None:
        publish(tracking_uri, parent.info.run_id, out, name, written)
    return out


def _index_line(item: Item, files: list[str]) -> str:
    """An item's line in index.md: its main file, the table beside a figure, and its title."""
    tables = [f"[{f}]({f})" for f in files[1:] if f.endswith(".md")]
    return f"- [{item.file}]({item.file})" + (f" and {', '.join(tables)}" if tables else "") + f": {item.title}"


def sweep_parent_run(tracking_uri: str | None, name: str):
    """The sweep's parent MLflow run (tags kind=sweep, sweep=NAME), or None."""
    if not tracking_uri:
        return None
    from sedbench.tracking import RunStore

    return RunStore(tracking_uri).sweep_parent(name)


def publish(tracking_uri: str, run_id: str, out: Path, name: str, written: list[tuple[Item, list[str]]]) -> None:
    """The report as artifacts of the sweep's parent run (``report/``) and its description: opening the
    parent run in the MLflow UI shows the study's scores and lists every table and figure."""
    from sedbench.tracking import RunStore

    files = ["index.html", "index.md", *[f for _, produced in written for f in produced]]
    scores = (out / "scores.md").read_text() if (out / "scores.md").is_file() else ""
    listed = [f"- `report/{item.file}`: {item.title}" for item, _ in written]
    head = "\n".join([f"**Sweep `{name}`**: the report is in this run's artifacts under `report/` (open "
                      "`report/index.html` for the page with interactive figures; `sedbench report " + name
                      + "` writes it again).", "", *listed, ""])
    scores = scores.replace("# Scores (Table II)", "### Scores (Table II)").replace("## Detection", "### Detection")
    # MLflow keeps at most 8,000 characters of a tag: a sweep with many families keeps the list, not the tables
    description = head + "\n" + scores if len(head) + len(scores) < DESCRIPTION_LIMIT else \
        head + "\nThe score tables are in `report/scores.md` (too long for this description)."
    RunStore(tracking_uri).publish(run_id, [out / f for f in dict.fromkeys(files)], "report", description)


DESCRIPTION_LIMIT = 7900  # MLflow's tag values hold 8,000 characters
