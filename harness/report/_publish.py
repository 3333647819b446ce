"""A report's files: its :class:`~harness.report._document.Document` as ``<stem>.md`` and ``<stem>.html``, its
table as ``<stem>.csv``, its linked figures as PNGs beside them; the HTML also logged to the report's parent run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from harness._paths import safe_child
from harness.report import _core
from harness.report._document import Document, render_markdown
from harness.report._html import render_html
from harness.tracking import Tracker

ARTIFACT_DIR = "report"  # where a report's HTML goes among its parent run's artifacts


@dataclasses.dataclass(frozen=True)
class Published:
    md: Path
    csv: Path
    html: Path
    figures: tuple[Path, ...]  # the PNGs the Markdown links, in the document's order


def publish(
    doc: Document,
    out_dir: Path,
    stem: str,
    table: pd.DataFrame,
    *,
    tracker: Tracker | None = None,
    run_id: str = "",
) -> Published:
    """Every file of one report in ``out_dir``, each replaced atomically; ``table`` is the CSV (the numbers,
    unformatted). The HTML is also logged under ``report/`` in the artifacts of run ``run_id`` (the report's
    parent run) when the report knows its store. A stem or figure file that is not one file name is refused."""
    md, csv, page = (safe_child(out_dir, f"{stem}{ext}", what="report file") for ext in (".md", ".csv", ".html"))
    figures = []
    for section in doc.sections:
        for figure in section.figure_list:
            if figure.file:
                png = safe_child(out_dir, figure.file, what="report file")
                tight = {"bbox_inches": "tight"} if figure.tight else {}
                figures.append(_core.write_figure(png, figure.figure, dpi=110, **tight))
    _core.write_file(md, render_markdown(doc))
    _core.write_csv(csv, table)
    _core.write_file(page, render_html(doc))
    if tracker is not None and run_id:
        tracker.client.log_artifact(run_id, str(page), ARTIFACT_DIR)
    return Published(md, csv, page, tuple(figures))
