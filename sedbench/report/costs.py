"""Accuracy against what it costs: test F1_frm against parameters (the paper's Fig. 4), against multiply-accumulates
per 10 s of audio and against training energy (DCASE's complexity figures), and ``costs.md``, each configuration's
costs with its energy-weighted score (DCASE's definition: score x reference energy / energy).

A configuration's parameters and MACs are its architecture's (the same for every seed); its energy, its peak memory
and its wall time are measured per run, so they are its seeds' mean, with their spread.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from sedbench.report.collect import TrialRow, configurations, matched_groups, mean_score
from sedbench.report.common import figure, finish, mean_std, style
from sedbench.report.items import Context, Figure


@dataclass(frozen=True)
class Cost:
    """One cost a figure draws F1 against: the trial figure ``key`` (metrics.json, Optuna attribute), the axis."""

    key: str
    file: str
    title: str
    axis: str            # the PNG's x label, its unit and scale
    name: str            # in tooltips and the SVG's axis
    per_run: bool        # measured per run (varies over seeds): drawn at the seeds' mean
    hint: str = ""
    scale: float = 1.0   # the axis's unit per recorded unit (energy: kWh recorded, drawn in Wh)

    def value(self, trial: TrialRow) -> float:
        v = trial.get(self.key)
        try:
            v = float(v)
        except (TypeError, ValueError):
            return math.nan
        return v if math.isfinite(v) and v > 0 else math.nan   # a log axis: a zero or missing cost is not drawn

    def text(self, v: float) -> str:
        """A recorded value as the axis and the tooltips write it."""
        if self.key == "energy_train_kwh":
            return f"{1000 * v:.3g} Wh"
        return f"{v:,.0f}" if v < 1e6 else f"{v / 1e6:,.1f} M"

    def tick(self, v: float) -> str:
        """An axis tick (in the axis's unit): plain digits, never mathtext (which asks for fonts we lack)."""
        return f"{v:,.0f}" if v >= 1 else f"{v:.3g}"


PARAMS = Cost("n_params", "params_vs_f1.png", "test F1_frm against parameter count (Fig. 4)",
              "trainable parameters (count, log scale)", "parameters", False)
MACS = Cost("macs_per_10s", "macs_vs_f1.png", "test F1_frm against multiply-accumulates per 10 s of audio (DCASE)",
            "multiply-accumulates per 10 s of audio (MACs, log scale)", "MACs per 10 s", False,
            "needs runs that recorded their MACs per 10 s (runs of a sedbench older than its cost records have none)")
ENERGY = Cost("energy_train_kwh", "energy_vs_f1.png", "test F1_frm against training energy (DCASE)",
              "training energy (Wh, log scale): mean over seeds, bars 95 % t interval", "training energy", True,
              "needs runs that recorded their energy (energy.enabled=true; docs/metrics.md)", 1000.0)


class CostVsF1(Figure):
    """Test F1_frm against a cost (log scale), one point per configuration at the mean over its seeds with its
    95 % t interval (and, for a cost measured per run, the interval of the cost's mean), one line per family in
    order of cost through its size series (configurations that differ only in ``model.maps``, when the family has
    one; its other configurations are points of their own, e.g. a CRNN of another depth); each seed's own score a
    faint mark behind it. The CSV has one row per configuration, ``series`` saying whether its family's line joins
    it."""

    def __init__(self, cost: Cost):
        self.cost, self.file, self.title, self.hint = cost, cost.file, cost.title, cost.hint

    def data(self, ctx: Context) -> list[dict] | None:
        from sedbench.stats import mean_std_interval

        key, out, self.seeds = self.cost.key, [], {}
        series = {fam: {id(g[0]) for g in matched_groups(ctx.rows, fam, "model.maps").values()}
                  for fam in {r.family for r in ctx.rows}}
        for (fam, config), trials in sorted(configurations(ctx.rows).items()):
            scored = [t for t in trials if math.isfinite(self.cost.value(t)) and not math.isnan(t.get("test/f1_frm"))]
            if not scored:
                continue
            values = [t.get("test/f1_frm") for t in scored]
            costs = [self.cost.value(t) for t in scored]
            mean, std, (low, high) = mean_std_interval(values)
            record = {"family": fam, "config": config}
            if self.cost.per_run:
                c_mean, c_std, (c_low, c_high) = mean_std_interval(costs)
                record.update({key: c_mean, f"{key}_std": _blank(c_std), f"{key}_low": _blank(c_low),
                               f"{key}_high": _blank(c_high)})
            else:
                record[key] = int(costs[0])
            record.update({"trials": len(values), "mean_test_f1_frm": mean, "std": _blank(std), "low": _blank(low),
                           "high": _blank(high), "trial_numbers": " ".join(str(t.number) for t in scored),
                           "series": not series[fam] or id(trials[0]) in series[fam]})
            out.append(record)
            self.seeds.setdefault(fam, []).extend(zip(costs, values, strict=True))
        return out or None

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        key, k = self.cost.key, self.cost.scale
        plt, fig, ax = figure()
        for fam in sorted({r["family"] for r in records}):
            color, marker = style(fam)
            sel = sorted((r for r in records if r["family"] == fam), key=lambda r: r[key])
            seeds = self.seeds.get(fam, [])
            ax.scatter([x * k for x, _ in seeds], [100 * v for _, v in seeds], c=color, marker=marker, alpha=0.25,
                       s=12, linewidths=0)
            for on_line in (True, False):
                part = [r for r in sel if r["series"] == on_line]
                if not part:
                    continue
                means = [100 * r["mean_test_f1_frm"] for r in part]
                xerr = [[k * (r[key] - r[f"{key}_low"]) if r[f"{key}_low"] != "" else 0.0 for r in part],
                        [k * (r[f"{key}_high"] - r[key]) if r[f"{key}_high"] != "" else 0.0 for r in part]] \
                    if self.cost.per_run else None
                err = [[m - 100 * r["low"] if r["low"] != "" else 0.0 for m, r in zip(means, part, strict=True)],
                       [100 * r["high"] - m if r["high"] != "" else 0.0 for m, r in zip(means, part, strict=True)]]
                ax.errorbar([k * r[key] for r in part], means, yerr=err, xerr=xerr, color=color, marker=marker,
                            capsize=3, label=fam.upper() if on_line else f"{fam.upper()}, other configurations",
                            markeredgecolor="black", markeredgewidth=0.4, linewidth=1.2 if on_line else 0,
                            markerfacecolor=color if on_line else "white")
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 per decade, written out in full
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: self.cost.tick(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        what = {"n_params": "Parameters vs. accuracy (cf. Cakir et al. 2017, Fig. 4)",
                "macs_per_10s": "Compute vs. accuracy (MACs per 10 s, as DCASE reports them)",
                "energy_train_kwh": "Training energy vs. accuracy (as DCASE reports it)"}[key]
        finish(plt, fig, ax, path, self.cost.axis, "test F1_frm (%): mean over seeds, bars 95 % t interval", what,
               {"title": "family"})

    def svg(self, ctx: Context, records: list[dict]) -> str:
        from sedbench.report.html import figure_cost_vs_f1

        return figure_cost_vs_f1(records, ctx.trials, ctx.link, self.cost)


def _blank(v: float):
    return "" if math.isnan(v) else v


# ---------------------------------------------------------------------------------------------- costs.md
def parse_reference(text: str) -> dict[str, str]:
    """``"model=crnn model.maps=16"`` as ``{key: value}`` (spaces inside values dropped, as the study keeps them)."""
    out = {}
    for token in str(text).split():
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ValueError(f"{token!r} is not key=value (e.g. \"model=crnn model.maps=16\")")
        out[key.lstrip("+")] = value.replace(" ", "")
    return out


def energy_reference(groups: dict[tuple[str, str], list[TrialRow]], named: str | None
                     ) -> tuple[tuple[str, str] | None, str]:
    """The configuration the energy-weighted score divides by, and how it was chosen: the one ``named`` (the
    study's ``sweep.energy_reference`` or ``sedbench report --energy-reference``), else the best by mean validation
    score among those that recorded their energy. None with the reason when a named one matches none or several."""
    measured = {k: ts for k, ts in groups.items() if _energy(ts)}
    if named:
        try:
            wanted = parse_reference(named)
        except ValueError as exc:
            return None, f"the energy reference {named!r} is not a configuration: {exc}"
        match = [k for k, ts in measured.items()
                 if all(ts[0].params.get(p, "").replace(" ", "") == v for p, v in wanted.items())]
        if len(match) != 1:
            found = "no configuration that recorded its energy" if not match else \
                f"{len(match)} configurations ({'; '.join(c or 'base' for _, c in match[:3])})"
            return None, f"the energy reference `{named}` matches {found}. Fix: name one configuration, e.g. " \
                         f"`--energy-reference \"{next(iter(measured), ('', 'model=crnn'))[1]}\"`"
        return match[0], f"the reference named, `{named}`"
    if not measured:
        return None, "no configuration recorded its energy"
    best = max(measured, key=lambda k: mean_score(measured[k]))
    return best, "the configuration with the best mean validation score, as none was named (name one with " \
                 "`sweep.energy_reference` or `sedbench report --energy-reference`)"


def _energy(trials: list[TrialRow], key: str = "energy_train_kwh") -> list[float]:
    return [v for t in trials if math.isfinite(v := _float(t.get(key))) and v > 0]


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def write_costs(ctx: Context, named: str | None = None) -> str | None:
    """``costs.md``: every configuration's parameters, MACs per 10 s, training and test energy, peak memory and
    mean test F1_frm, with its energy-weighted F1_frm (DCASE: F1 x reference training energy / its training energy)
    against a reference configuration; configurations that recorded no energy have no weighted score."""
    groups = {k: ts for k, ts in configurations(ctx.rows).items()
              if any(not math.isnan(t.get("test/f1_frm")) for t in ts)}
    if not groups:
        return None
    named = named or (ctx.study.user_attrs.get("energy_reference") if ctx.study is not None else None)
    ref, why = energy_reference(groups, named)
    ref_energy = statistics.fmean(_energy(groups[ref])) if ref else math.nan
    methods = sorted({str(t.attrs.get("energy_method")) for ts in groups.values() for t in ts
                      if t.attrs.get("energy_method")})
    lines = ["# What each configuration costs", "",
             "Parameters and multiply-accumulates per 10 s of audio (MACs, at the run's frame rate) are the "
             "architecture's; training and test energy (Wh) and peak resident memory (GB) are measured per run: "
             "mean ± std [95 % t interval] over the seeds (n). The *energy-weighted F1_frm* is DCASE's: mean test "
             "F1_frm x E_ref / E, E the configuration's mean training energy and E_ref the reference's (above 1x "
             "F1 when it trains on less energy than the reference). It is a ranking aid, not a test: it has no "
             "interval, and energies compare only runs of one machine (docs/metrics.md).", ""]
    if ref:
        lines.append(f"Reference: {ref[0].upper()} `{ref[1] or 'base'}`, {1000 * ref_energy:.3g} Wh of training on "
                     f"average: {why}.")
    else:
        lines.append(f"No energy-weighted score: {why}.")
    if methods:
        lines += ["", "Energy " + ("method" if len(methods) == 1 else "methods (they differ between runs: their "
                                   "energies do not compare)") + ": " + "; ".join(f"`{m}`" for m in methods) + "."]
    if any(t.attrs.get("fused_group") for ts in groups.values() for t in ts):
        lines += ["", "Seeds trained together (`sweep.fuse`) share their group's training energy, measured once, by "
                      "their shares of its time: their spread over seeds is not a measurement's (`sedbench compare "
                      "--statistic energy_train` counts a group as one measurement)."]
    lines += ["", "| family | configuration | n | parameters | MACs per 10 s | training energy (Wh) | "
              "test energy (Wh) | peak RSS, largest run (GB) | test F1_frm (%) | energy-weighted F1_frm (%) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = sorted(groups, key=lambda k: (k[0], _float(groups[k][0].attrs.get("n_params")), k[1]))
    for k in order:
        ts = groups[k]
        f1 = [t.get("test/f1_frm") for t in ts if not math.isnan(t.get("test/f1_frm"))]
        energy = _energy(ts)
        weighted = "–"
        if ref and energy:
            weighted = f"{100 * statistics.fmean(f1) * ref_energy / statistics.fmean(energy):.1f}"
        macs = _float(ts[0].attrs.get("macs_per_10s"))
        params = _float(ts[0].attrs.get("n_params"))
        peak = [v for t in ts if math.isfinite(v := _float(t.get("peak_rss_gb")))]
        lines.append(f"| {k[0].upper()}{' (reference)' if k == ref else ''} | `{k[1] or 'base'}` | {len(ts)} | "
                     f"{'–' if math.isnan(params) else f'{params:,.0f}'} | "
                     f"{'–' if math.isnan(macs) else f'{macs / 1e6:,.2f} M'} | "
                     f"{_wh(energy)} | {_wh(_energy(ts, 'energy_test_kwh'))} | "
                     f"{f'{max(peak):.2f}' if peak else '–'} | {mean_std(f1, True)} | {weighted} |")
    (ctx.out / "costs.md").write_text("\n".join(lines) + "\n")
    return "costs.md"


def _wh(kwh: list[float]) -> str:
    """Energies in Wh (mean ± std [interval]); a dash when none."""
    if not kwh:
        return "–"
    wh = [1000 * v for v in kwh]
    mean = statistics.fmean(wh)
    digits = max(0, 2 - math.floor(math.log10(mean))) if mean > 0 else 2
    if len(wh) == 1:
        return f"{mean:.{digits}f}"
    from sedbench.stats import mean_std_interval

    m, s, (lo, hi) = mean_std_interval(wh)
    return f"{m:.{digits}f} ± {s:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
