"""``results/NAME/index.html``: the report as one self-contained page to browse.

No plotting library: the interactive figures are inline SVG written here from the same data as the
PNGs (their CSVs), so the page needs no network, no JavaScript file and nothing installed, opens
from ``file://`` and is a few hundred kilobytes. Hovering a point shows its trial, configuration,
scores and MLflow run (the SVG ``<title>`` every browser shows as a tooltip); clicking it opens the
run in the MLflow UI (``sedbench dashboard``). Plotly or Bokeh would add 1-4 MB of JavaScript to
every page (or a CDN, which breaks offline use) for what four plot types need; Vega-Lite needs its
runtime inlined the same way. The figures without per-trial data (activity, filters) are embedded
as their PNGs. The Markdown tables are converted with a small converter for the subset sedbench
writes (headings, paragraphs, lists, pipe tables, links, code).
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

OTHER_COLORS = ("#17becf", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a")  # series that are not families
W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 420, 70, 150, 20, 50


@dataclass
class Point:
    x: float
    y: float
    tip: str
    href: str | None = None
    low: float | None = None     # an error bar from low to high (an interval), drawn when given
    high: float | None = None


@dataclass
class Series:
    name: str
    points: list[Point] = field(default_factory=list)
    line: bool = False


def color(name: str, i: int) -> str:
    """A family's colour from the report's one table (the PNG figures use the same); other series cycle."""
    from sedbench.models.families import FAMILIES

    family = name.split()[0].lower() if name.split() else ""
    return FAMILIES[family].color if family in FAMILIES else OTHER_COLORS[i % len(OTHER_COLORS)]


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        return [m * 10.0 ** k for k in decades for m in ((1, 2, 5) if len(decades) < 4 else (1,))]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-12))) / 2
    while (hi - lo) / step > 8:
        step *= 2
    return [k * step for k in range(math.floor(lo / step), math.ceil(hi / step) + 1)]


def svg_plot(series: list[Series], x_label: str, y_label: str, log_x: bool = False,
             x_names: list[str] | None = None, title: str = "") -> str:
    """An SVG scatter/line plot: axes with ticks and labels, a legend, a tooltip and a link per point."""
    pts = [p for s in series for p in s.points if math.isfinite(p.x) and math.isfinite(p.y)]
    if not pts:
        return ""
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs = [fx(p.x) for p in pts]
    ys = [v for p in pts for v in (p.y, p.low, p.high) if v is not None and math.isfinite(v)]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    pad_x = (x1 - x0) * 0.05 or 0.5
    x0, x1, y1 = x0 - pad_x, x1 + pad_x, y1 + (y1 - y0) * 0.08 or 1.0

    def sx(v: float) -> float:
        return LEFT + (fx(v) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def sy(v: float) -> float:
        return H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           f'aria-label="{html.escape(title or y_label)}">',
           f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" class="frame"/>']
    if x_names:
        xticks = [(float(i), name) for i, name in enumerate(x_names)]
    else:
        lo, hi = (10 ** x0, 10 ** x1) if log_x else (x0, x1)
        candidates = [t for t in _ticks(lo, hi, log_x) if t > 0 or not log_x]
        if log_x and sum(x0 <= fx(t) <= x1 for t in candidates) < 2:  # less than a decade: linear steps
            candidates = [t for t in _ticks(lo, hi, False) if t > 0]
        xticks = [(t, f"{t:,.0f}" if log_x or abs(t) >= 100 else f"{t:g}") for t in candidates if x0 <= fx(t) <= x1]
    for t, text in xticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}" class="grid"/>'
                   f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" class="tick" text-anchor="middle">'
                   f'{html.escape(text)}</text>')
    for t in _ticks(y0, y1, False):
        if y0 <= t <= y1:
            y = sy(t)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="grid"/>'
                       f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2:.0f}" y="{H - 10}" class="label" text-anchor="middle">'
               f'{html.escape(x_label)}</text>'
               f'<text transform="translate(16 {(TOP + H - BOTTOM) / 2:.0f}) rotate(-90)" class="label" '
               f'text-anchor="middle">{html.escape(y_label)}</text>')
    for i, s in enumerate(series):
        c = color(s.name, i)
        good = [p for p in s.points if math.isfinite(p.x) and math.isfinite(p.y)]
        if s.line and len(good) > 1:
            path = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in sorted(good, key=lambda p: p.x))
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.5" opacity="0.7"/>')
        for p in good:
            if p.low is not None and p.high is not None and math.isfinite(p.low) and math.isfinite(p.high):
                out.append(f'<line x1="{sx(p.x):.1f}" y1="{sy(p.low):.1f}" x2="{sx(p.x):.1f}" y2="{sy(p.high):.1f}" '
                           f'stroke="{c}" stroke-width="1.5"/>')
            dot = (f'<circle cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="5" fill="{c}" class="point">'
                   f'<title>{html.escape(p.tip)}</title></circle>')
            out.append(f'<a href="{html.escape(p.href)}" target="_blank">{dot}</a>' if p.href else dot)
        ly = TOP + 14 + 18 * i
        out.append(f'<circle cx="{W - RIGHT + 16}" cy="{ly - 4}" r="5" fill="{c}"/>'
                   f'<text x="{W - RIGHT + 26}" y="{ly}" class="legend">{html.escape(s.name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ Markdown
def _inline(text: str) -> str:
    # a line break inside a table cell is written <br> (as GitHub renders it); any other markup is text
    text = html.escape(text, quote=False).replace("&lt;br&gt;", "<br>")
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", text)

    def link(m: re.Match) -> str:
        target = m.group(2)
        if target.endswith(".md"):
            target = "#" + anchor(target)
        return f'<a href="{target}">{m.group(1)}</a>'

    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", link, text)


def anchor(name: str) -> str:
    return "item-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def markdown(text: str) -> str:
    """The Markdown subset sedbench's report writes, as HTML."""
    out, para, table, items = [], [], [], []

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in table]
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if para or items:
                flush()
            table.append(line)
            continue
        if table:
            flush()
        if not line.strip():
            flush()
        elif line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{min(level + 1, 6)}>{_inline(line.lstrip('#').strip())}</h{min(level + 1, 6)}>")
        elif line.startswith("- "):
            if para:
                flush()
            items.append(line[2:])
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ the page
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;
color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em;display:block;overflow-x:auto;max-width:100%}
td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
section{border-top:1px solid #ddd;margin-top:1.5em}code{background:#f4f4f4;padding:0 .2em}
.plot .frame{fill:none;stroke:#999}.plot .grid{stroke:#eee}.plot .tick{font-size:11px;fill:#555}
.plot .label{font-size:13px;fill:#222}.plot .legend{font-size:12px;fill:#222}
.plot .point{stroke:#fff;stroke-width:1;cursor:pointer}.plot .point:hover{stroke:#000;stroke-width:2}
img{max-width:100%}nav a{margin-right:.8em}.note{color:#666;font-size:.9em}
"""


def run_link(mlflow_url: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    if not (mlflow_url and run_id):
        return None
    return f"{mlflow_url.rstrip('/')}/#/experiments/{experiment_id or '0'}/runs/{run_id}"


# the interactive figures: each draws the records its report item wrote as CSV and drew as PNG
def figure_cost_vs_f1(records: list[dict], trials: dict[str, dict], link, cost) -> str:
    """Test F1_frm against a cost (``cost``: sedbench.report.costs.Cost; Fig. 4 for the parameter count): each
    configuration's mean test F1_frm over its seeds with its 95 % interval, one line per family in order of cost
    through its size series (its other configurations unjoined); a point's link opens its first trial's MLflow
    run."""
    groups: dict[str, Series] = {}
    for r in sorted(records, key=lambda r: float(r[cost.key])):
        first = str(r["trial_numbers"]).split()[0]
        t = trials.get(first, {})
        mean, low, high = (100 * float(r[k]) if r[k] not in ("", None) else math.nan
                           for k in ("mean_test_f1_frm", "low", "high"))
        interval = f" [{low:.1f}, {high:.1f}]" if math.isfinite(low) else ""
        spent = f"{cost.text(float(r[cost.key]))} {cost.name}" + (" (mean over seeds)" if cost.per_run else "")
        tip = (f"{r['family'].upper()} · {r['config'] or 'base'}\n{spent} · "
               f"test F1_frm {mean:.1f} %{interval} over {r['trials']} seed(s) (trials {r['trial_numbers']})"
               + (f"\nMLflow run of trial {first} (click to open)" if t.get("mlflow_run_id") else ""))
        on_line = str(r.get("series", True)) != "False"  # a family's line joins its size series only
        name = r["family"].upper() + ("" if on_line else ", other configurations")
        groups.setdefault(name, Series(name, line=on_line)).points.append(
            Point(float(r[cost.key]), mean, tip, link(t.get("mlflow_run_id")), low if math.isfinite(low) else None,
                  high if math.isfinite(high) else None))
    return svg_plot(list(groups.values()), f"{cost.name} (log scale)", "test F1_frm (%), mean and 95 % interval",
                    log_x=True, title=f"test F1_frm against {cost.name}")


def figure_pitch_shift(records: list[dict], trials: dict[str, dict], link) -> str:
    lines: dict[str, Series] = {}
    for r in records:
        t = trials.get(str(r["trial"]), {})
        key = f"{r['family'].upper()} trial {r['trial']}"
        tip = (f"trial {r['trial']} · {r['family'].upper()} · {t.get('config', '')}\n"
               f"shift {int(r['quarter_tones']):+d} quarter tones · F1_frm {100 * float(r['test_f1_frm']):.1f} % "
               f"(change {100 * float(r['change_f1_frm']):+.1f} points)")
        lines.setdefault(key, Series(key, line=True)).points.append(
            Point(float(r["quarter_tones"]), 100 * float(r["change_f1_frm"]), tip, link(t.get("mlflow_run_id"))))
    return svg_plot(list(lines.values()), "pitch shift (quarter tones)", "change of test F1_frm (points)",
                    title="change of F1_frm under pitch shift")


def figure_filter_shape(rows: list[dict]) -> str:
    shapes = sorted({r["kernel_freq_time"] for r in rows})
    fams: dict[str, Series] = {}
    for r in rows:
        control = str(r.get("capacity_control")) == "True"
        fam = r["family"].upper() + (" at the (5,5) model's parameters" if control else "")
        size = f" · {r['maps']} maps, {int(float(r['n_params'])):,} parameters" if control else ""
        tip = (f"{fam} · filter {r['kernel_freq_time']} (frequency x time){size} · mean test F1_frm "
               f"{100 * float(r['mean_test_f1_frm']):.1f} % over {r['trials']} trial(s)")
        fams.setdefault(fam, Series(fam)).points.append(
            Point(shapes.index(r["kernel_freq_time"]), 100 * float(r["mean_test_f1_frm"]), tip))
    return svg_plot(list(fams.values()), "filter shape (frequency x time)", "mean test F1_frm (%)",
                    x_names=shapes, title="F1_frm per filter shape")


def figure_learning_curves(rows: list[dict]) -> str:
    from sedbench.report.common import validation_axis

    lines: dict[str, Series] = {}
    label, scale = validation_axis(rows[0]["metric"] if rows else "val/f1_frm")
    for r in rows:
        key = f"{r['family'].upper()} {r['config']}"
        tip = (f"{r['family'].upper()} · {r['config']}\nstep {r['step']} · mean {label} "
               f"{scale * float(r['mean_validation']):.{1 if scale > 1 else 3}f} over {r['trials_at_step']} "
               f"trial(s) · {r['converged']} of {r['trials']} trials converged")
        lines.setdefault(key, Series(key, line=True)).points.append(
            Point(float(r["step"]), scale * float(r["mean_validation"]), tip))
    return svg_plot(list(lines.values()), "optimizer steps", label,
                    title="learning curves of the studied configurations")


def figure_importance(rows: list[dict]) -> str:
    names = [r["parameter"] for r in rows]
    s = Series("importance", [Point(i, float(r["importance"]), f"{r['parameter']}: importance "
                                                               f"{float(r['importance']):.3f}")
                              for i, r in enumerate(rows)])
    return svg_plot([s], "parameter", "fANOVA importance", x_names=names, title="hyperparameter importance")


def embedded_png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" title="{html.escape(alt)}">'


def write_html(ctx, written: list, mlflow_url: str | None, intro: list[str]) -> Path:
    """``index.html`` beside the Markdown report: a section per written report item (``(item, files)``), in
    order, its body from the item itself (sedbench.report.common.Item)."""
    out, name = ctx.out, ctx.name
    body = [f"<h1>Report: {html.escape(name)}</h1>", markdown("\n".join(intro)),
            '<p class="note">Hover a point for its trial, configuration and scores; click it to open the run in '
            f'the MLflow UI ({html.escape(mlflow_url or "not linked")}, started by <code>sedbench dashboard</code>). '
            "Every figure's data is in the CSV beside it; the Markdown and PNG files are the same report for "
            "papers.</p>", "<nav>" + "".join(f'<a href="#{anchor(item.file)}">{html.escape(item.file)}</a>'
                                             for item, _ in written) + "</nav>"]
    for item, _ in written:
        body.append(f'<section id="{anchor(item.file)}"><h2>{html.escape(item.heading(ctx))}</h2>\n'
                    f"{item.html(ctx)}</section>")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>sedbench report: '
            f'{html.escape(name)}</title><style>{STYLE}</style></head><body>\n' + "\n".join(body)
            + "\n</body></html>\n")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"
