"""Shared by the report's tables and figures and the sweep's summary: formatting, CSV, the plot frame."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def fmt(v: float | None, pct: bool = False) -> str:
    """A score for a table: percent with one decimal, or a ratio with three; a dash when missing (None, NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def mean_std(values: list[float], pct: bool) -> str:
    """``mean ± std [low, high]`` over seeds (and folds), the bracket the 95 % t interval of the mean;
    one value alone is shown bare (every table that uses this gives n beside it)."""
    from sedbench.stats import mean_std_interval

    mean, std, (low, high) = mean_std_interval(values)
    if math.isnan(mean):
        return "–"
    scale, digits = (100, 1) if pct else (1, 3)
    if math.isnan(std):
        return f"{scale * mean:.{digits}f}"
    return (f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f} "
            f"[{scale * low:.{digits}f}, {scale * high:.{digits}f}]")


def half_interval(values: list[float]) -> float:
    """Half the width of the 95 % t interval of the mean (0 for fewer than two values): an error bar."""
    from sedbench.stats import mean_std_interval

    mean, _, (low, high) = mean_std_interval(values)
    return 0.0 if math.isnan(low) else (high - low) / 2


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def style(family: str) -> tuple[str, str]:
    """A family's colour and marker, from the one table (sedbench.models.families) the HTML page reads too."""
    from sedbench.models.families import style as family_style

    return family_style(family)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure():
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    ax.grid(True, alpha=0.3)
    return plt, fig, ax


def finish(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str, legend: dict) -> str:
    """Every plot: labelled axes with units, a title, a legend; saved as PNG and closed."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**legend)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def validation_axis(objective: str) -> tuple[str, float]:
    """The axis label of a validation score (``val/<name>``) and the factor its values are drawn at."""
    from sedbench.metrics.registry import get

    m = get(objective)
    name = m.display if m else objective
    return (f"validation {name} (%)", 100.0) if m is None or m.percent else (f"validation {name}", 1.0)
