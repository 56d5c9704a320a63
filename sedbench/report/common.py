"""Shared by the report's tables and figures and the sweep's summary: formatting, CSV, the plot frame."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

FAMILY_STYLE = {"crnn": ("tab:red", "o"), "cnn": ("tab:blue", "s"), "rnn": ("tab:green", "^"),
                "fnn": ("tab:purple", "D"), "gmm": ("tab:gray", "X"), "vggish_rnn": ("tab:brown", "P"),
                "crnn_attention": ("tab:pink", "*")}


def fmt(v: float | None, pct: bool = False) -> str:
    """A score for a table: percent with one decimal, or a ratio with three; a dash when missing (None, NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def mean_std(values: list[float], pct: bool) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    scale = 100 if pct else 1
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.1f}" if pct else f"{mean:.2f}"
    std = statistics.stdev(values) * scale
    return f"{mean:.1f} ± {std:.1f}" if pct else f"{mean:.2f} ± {std:.2f}"


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def style(family: str) -> tuple[str, str]:
    return FAMILY_STYLE.get(family, ("tab:orange", "v"))


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
