"""The report as a list of items (sedbench.report.write.report_items): each table or figure is one object that
writes its own files (Markdown; or CSV, PNG and optional Markdown) and its own section of index.html (an
interactive SVG drawn from the same records as the PNG), so a new figure is one class."""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sedbench.report.common import write_csv
from sedbench.report.html import embedded_png, markdown


@dataclass
class Context:
    """What every report item reads: the sweep's trials, its study, the output folder, the runs' artifacts
    (``fetch(run_id, path)``) and, for the HTML page, each trial's scores and the link to its MLflow run."""

    name: str
    rows: list
    study: object
    out: Path
    fetch: Callable[[str, str], Path | None] = lambda run_id, path: None
    link: Callable[[str | None], str | None] = lambda run_id: None
    allow_mixed: bool = False   # verdicts across runs that read different copies of the dataset (--allow-mixed)
    energy_reference: str | None = None  # costs.md's reference configuration (--energy-reference), else the study's

    @cached_property
    def trials(self) -> dict[str, dict]:
        """Each trial's recorded scores, configuration and MLflow run, by trial number (for tooltips)."""
        return {str(r.number): {**{k: str(v) for k, v in r.metrics.items()}, "config": r.config_key(),
                                "mlflow_run_id": str(r.attrs.get("mlflow_run_id") or "")} for r in self.rows}


def titled(text: str) -> tuple[str | None, str]:
    """A Markdown text's own title (its first line, a ``# `` heading) and the rest; no title: None and all of it."""
    first, _, rest = text.partition("\n")
    return (first[2:].strip(), rest) if first.startswith("# ") else (None, text)


class Item:
    """One entry of the report: the files it writes (its Markdown, or its data as CSV with its PNG), its line
    in index.md, and its section of index.html. ``write`` returns the files written, the main one first, or
    nothing when the sweep's trials do not support it (``hint`` then says what would)."""

    file: str = ""      # its main file, named in index.md and anchoring its section of index.html
    title: str = ""     # its line in index.md; the section's heading when its Markdown has none of its own
    hint: str = ""      # what it needs, when the trials do not support it yet

    def write(self, ctx: Context) -> list[str]:
        raise NotImplementedError

    def html(self, ctx: Context) -> str:
        """Its section's body (the page adds the heading): its Markdown, converted."""
        return markdown(titled((ctx.out / self.file).read_text())[1])

    def heading(self, ctx: Context) -> str:
        """The section's heading: a Markdown table's own title (never twice), else the item's title."""
        own = titled((ctx.out / self.file).read_text())[0] if self.file.endswith(".md") else None
        return own or self.title


class Figure(Item):
    """A figure: its data (one record per row, written as ``<stem>.csv``), drawn once as a PNG for papers and
    once as an interactive SVG for the HTML page from the same records (``svg`` returns "" to embed the PNG),
    with an optional Markdown table (``<stem>.md``) beside it."""

    def data(self, ctx: Context) -> list[dict] | None:
        raise NotImplementedError

    def png(self, ctx: Context, records: list[dict], path: Path) -> None:
        raise NotImplementedError

    def svg(self, ctx: Context, records: list[dict]) -> str:
        return ""

    def markdown(self, ctx: Context, records: list[dict]) -> str | None:
        return None

    @property
    def stem(self) -> str:
        return self.file.rsplit(".", 1)[0]

    def write(self, ctx: Context) -> list[str]:
        records = self.data(ctx)
        self.records, self.text = records, None
        if not records:
            return []
        header = list(records[0])
        write_csv(ctx.out / f"{self.stem}.csv", header, [[r.get(k, "") for k in header] for r in records])
        self.png(ctx, records, ctx.out / self.file)
        files = [self.file, f"{self.stem}.csv"]
        text = self.text = self.markdown(ctx, records)
        if text is not None:
            (ctx.out / f"{self.stem}.md").write_text(text)
            files.append(f"{self.stem}.md")
        return files

    def heading(self, ctx: Context) -> str:
        return self.title

    def html(self, ctx: Context) -> str:
        parts = [] if self.text is None else [markdown(titled(self.text)[1])]
        parts.append(self.svg(ctx, self.records) or embedded_png(ctx.out / self.file, self.title))
        stem, name = html_lib.escape(self.stem), html_lib.escape(self.file)
        parts.append(f'<p class="note">Data: <a href="{stem}.csv">{stem}.csv</a>; figure for print: '
                     f'<a href="{name}">{name}</a></p>')
        return "\n".join(parts)
