"""One report document, and its Markdown.

Every report (ladder, study, comparison, replay, hardware, the bench) builds one :class:`Document`: a title,
the line under it, lead bullets (its provenance) and :class:`Section` s. ``render_markdown`` here and
``_html.render_html`` write the same document, so the two files of a report never drift apart;
``_publish.publish`` writes both (and the CSV).

Text is Markdown as harness writes it: user text already through ``_core.md_text``, harness's own
`code`, **bold** and *emphasis* around it. A DataFrame table goes through ``_core.markdown_table``
(every text cell escaped); a :class:`Table` holds cells already written as Markdown.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.report import _core


@dataclasses.dataclass(frozen=True)
class Figure:
    """A matplotlib figure: inlined in the HTML; with ``file``, also written as that PNG beside the Markdown,
    which links it."""

    figure: Any
    file: str = ""
    tight: bool = True  # bbox_inches="tight" when written (figures without a constrained layout)


@dataclasses.dataclass(frozen=True)
class Picture:
    """An image file the report's writer already put beside it (an annotated detection): linked from the
    Markdown and shown by the HTML page from beside it, not embedded (whole aerial images are megabytes)."""

    file: str
    alt: str
    caption: str = ""

    def __post_init__(self) -> None:
        if not self.file or "/" in self.file or self.file in (".", ".."):
            raise ValueError(f"a picture is one file beside the report, but got {self.file=}")


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of cells written as Markdown (their own `code` and **bold**), columns aligned as ``align``
    says (``l`` or ``r`` per column; left by default): the bench's hand-laid tables."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: str = ""

    def __post_init__(self) -> None:
        if (self.align and len(self.align) != len(self.columns)) or set(self.align) - {"l", "r"}:
            raise ValueError(f"align needs an l or r per column, but got {self.align=} ({len(self.columns)} columns)")
        if any(len(row) != len(self.columns) for row in self.rows):
            raise ValueError(f"every row needs {len(self.columns)} cells")

    def alignment(self, i: int) -> str:
        return self.align[i] if self.align else "l"


@dataclasses.dataclass(frozen=True)
class Section:
    """A heading, then paragraphs (``text``), bullets (``notes``), figures with their ``caption``, a table,
    paragraphs after it (``after``: what the table shows, in words), then pictures (files beside the report)."""

    heading: str
    table: pd.DataFrame | Table | None = None
    figures: Sequence[Any] = ()  # matplotlib figures, or Figure (with the PNG the Markdown links)
    notes: Sequence[str] = ()
    caption: str = ""  # under the figures
    text: Sequence[str] = ()
    after: Sequence[str] = ()
    # lines already written as Markdown by a module outside report/ (the bench's sections d-f): shown as they are
    markdown: Sequence[str] = ()
    pictures: Sequence[Picture] = ()

    def __post_init__(self) -> None:
        if not self.heading.strip():
            raise ValueError(f"a section needs a heading, but got {self.heading=}")
        if self.table is not None and not isinstance(self.table, pd.DataFrame | Table):
            raise ValueError(f"a section's table must be a DataFrame or a Table, but got {type(self.table)=}")

    @property
    def figure_list(self) -> list[Figure]:
        return [f if isinstance(f, Figure) else Figure(f) for f in self.figures]


@dataclasses.dataclass(frozen=True)
class Document:
    """A whole report: ``title``; ``banner`` (a warning above everything else: quick mode); ``generated`` (the
    line under the title: the command that wrote it); ``lead`` bullets; the sections; ``footer`` paragraphs.
    ``md_lead`` and ``html_lead`` are lead bullets of one format only: a link to a file beside the Markdown,
    where the HTML page is logged."""

    title: str
    lead: Sequence[str]
    sections: Sequence[Section]
    generated: str = ""
    banner: str = ""
    footer: Sequence[str] = ()
    md_lead: Sequence[str] = ()
    html_lead: Sequence[str] = ()


def n_rows(table: pd.DataFrame | Table) -> int:
    return len(table.rows) if isinstance(table, Table) else len(table)


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _table(table: pd.DataFrame | Table) -> str:
    if isinstance(table, pd.DataFrame):
        return _core.markdown_table(table)
    rule = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join(rule[table.alignment(i)] for i in range(len(table.columns))) + "|",
        *("| " + " | ".join(row) + " |" for row in table.rows),
    ]
    return "\n".join(lines)


def _section(section: Section) -> list[str]:
    """The section's blocks in Markdown; none where it has nothing a Markdown file can show (a figure that is
    only inlined in the HTML)."""
    blocks = [*section.text]
    if section.notes:
        blocks.append(_bullets(section.notes))
    linked = [f for f in section.figure_list if f.file]
    for k, figure in enumerate(linked):  # alt text: the heading (the caption follows as a paragraph)
        blocks.append("!" + _core.md_link(_plain_marks(section.heading) + (f" ({k + 1})" if k else ""), figure.file))
    if linked and section.caption:
        blocks.append(section.caption)
    if section.table is not None:
        blocks.append(_table(section.table) if n_rows(section.table) else "(none)")
    if section.markdown:
        blocks.append("\n".join(section.markdown).strip("\n"))
    blocks += section.after
    for picture in section.pictures:
        blocks.append("!" + _core.md_link(_plain_marks(picture.alt), picture.file))
        if picture.caption:
            blocks.append(picture.caption)
    return [f"## {section.heading}", *blocks] if blocks else []


def _plain_marks(text: str) -> str:
    """Alt text: harness's `code` and * marks dropped, md_text's entities decoded (md_link escapes it again)."""
    return html.unescape(text.replace("`", "").replace("*", ""))


def render_markdown(doc: Document) -> str:
    """The document as Markdown: blocks (a heading, a paragraph, a list, a table) one blank line apart."""
    blocks = [f"# {doc.title}"]
    if doc.banner:
        blocks.append(doc.banner)
    if doc.generated:
        blocks.append(doc.generated)
    lead = [*doc.lead, *doc.md_lead]
    if lead:
        blocks.append(_bullets(lead))
    for section in doc.sections:
        blocks += _section(section)
    blocks += doc.footer
    return "\n\n".join(blocks) + "\n"
