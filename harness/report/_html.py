"""A report's :class:`~harness.report._document.Document` as one self-contained HTML file: inline CSS,
tables, figures embedded as PNG data URIs. The file needs nothing else to open (no external URL, no
script), so it can be mailed, archived or logged to the report's MLflow parent run beside the runs it
was built from (``_publish.publish``). The one exception: a section's pictures (annotated detections,
megabytes each) are image files beside the page, shown by relative links.

Text is written as the Markdown reports write it: `code`, **bold** and *emphasis* are kept; every
other character is escaped, except the entities that ``_core.md_text`` puts in place of a user's marks
(kept as they are, so the page shows what the user typed, as the rendered Markdown does).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd

from harness.report import _core
from harness.report._document import Document, Section, Table, n_rows

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       background: #fff; margin: 0 auto; padding: 1.5em 2em 3em; max-width: 1280px; }
h1 { font-size: 1.6em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #eaeef2; padding-bottom: .2em; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f3f4f6;
       padding: .1em .3em; border-radius: 4px; overflow-wrap: anywhere; }
p.generated { color: #57606a; }
p.banner { border-left: 4px solid #d4a72c; background: #fff8c5; padding: .4em .8em; }
ul.lead li, ul.notes li { margin: .15em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table.report { border-collapse: collapse; font-size: .88em; margin: .6em 0;
               font-variant-numeric: tabular-nums; }
table.report th, table.report td { border: 1px solid #d0d7de; padding: .3em .55em; vertical-align: top; }
table.report th { background: #f6f8fa; text-align: left; }
table.report tbody tr:nth-child(even) { background: #fbfcfd; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: .9em; }
"""


# what _core.md_text writes in place of a user's characters: already HTML, not to be escaped again
_MD_ENTITY = re.compile("(" + "|".join(re.escape(e) for e in ["&amp;", *_core.MD_ESCAPES.values()]) + ")")


def _escape_text(part: str) -> str:
    """``html.escape`` that keeps :data:`_MD_ENTITY` entities (outside code spans, where Markdown decodes them)."""
    pieces = _MD_ENTITY.split(part)  # text, entity, text, ...
    return "".join(piece if i % 2 else html.escape(piece, quote=True) for i, piece in enumerate(pieces))


def inline(text: str) -> str:
    """``text`` escaped, with the Markdown reports' `code`, **bold** and *emphasis* as HTML."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is a character, not a code span
        parts[-2:] = ["`".join(parts[-2:])]
    out = []
    for i, part in enumerate(parts):
        escaped = html.escape(part, quote=True) if i % 2 else _escape_text(part)
        if i % 2:
            out.append(f"<code>{escaped}</code>")
        else:
            escaped = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"<strong>\1</strong>", escaped)
            out.append(re.sub(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])", r"<em>\1</em>", escaped))
    return "".join(out)


F = TypeVar("F", bound=Callable[..., Any])


def default_style(draw: F) -> F:
    """Draw a report figure in matplotlib's default style, whatever another library left in the
    process-wide rcParams (Optuna's matplotlib plots switch the whole process to ggplot)."""

    @functools.wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> Any:
        import matplotlib.style

        with matplotlib.style.context("default"):
            return draw(*args, **kwargs)

    return cast(F, drawn)


@default_style
def figure_data_uri(figure: Any, dpi: int = 110) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_NUMBER = re.compile(r"[-+−]?\$?\d[\d,]*(\.\d+)?(e[-+]?\d+)?%?(\s.*)?", re.IGNORECASE)
_NOT_A_VALUE = {"", "n/a", "nan", "none", "not reached", "unknown", "inf", "-inf"}


def numeric_columns(frame: pd.DataFrame) -> list[int]:
    """Positions of the columns to right-align: numbers, or text that starts with one in every
    non-empty cell (``99.12 ± 0.03``, ``1,234.5 img``, ``+0.42``); a column of only blanks is not."""
    out = []
    for i, (_, column) in enumerate(frame.items()):
        if pd.api.types.is_bool_dtype(column):
            continue
        if pd.api.types.is_numeric_dtype(column):
            out.append(i)
            continue
        cells = [str(v).strip() for v in column if v is not None and str(v).strip().lower() not in _NOT_A_VALUE]
        if cells and all(_NUMBER.fullmatch(c) for c in cells):
            out.append(i)
    return out


def _table(frame: pd.DataFrame, table_id: str) -> str:
    """The frame as an escaped HTML table, with a rule per table for its numeric and long text columns."""
    body = frame.to_html(index=False, escape=True, border=0, classes="report", table_id=table_id, na_rep="")
    right = numeric_columns(frame)
    wide = [i for i, (_, c) in enumerate(frame.items()) if i not in right and c.astype(str).str.len().max() > 24]
    rules = []
    # numbers stay on one line, their headers wrap (a long header would otherwise set the column's width)
    for columns, cell, style in (
        (right, "td", "text-align: right; white-space: nowrap;"),
        (right, "th", "text-align: right;"),
        (wide, "td", "min-width: 14em;"),
    ):
        if columns:
            cells = ", ".join(f"#{table_id} {cell}:nth-child({i + 1})" for i in columns)
            rules.append(f"{cells} {{ {style} }}")
    style = f"<style>{' '.join(rules)}</style>\n" if rules else ""
    # a table wider than the page scrolls inside this box, never the page; focusable, so keys scroll it too
    return f'{style}<div class="scroll" tabindex="0" role="region" aria-label="table {table_id}">{body}</div>'


def _markdown_table(table: Table, table_id: str) -> str:
    """A table of Markdown cells: each cell through :func:`inline`, aligned as the table says."""
    head = "".join(f"<th>{inline(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{inline(cell)}</td>" for cell in row) + "</tr>\n" for row in table.rows)
    right = [i for i in range(len(table.columns)) if table.alignment(i) == "r"]
    cells = ", ".join(f"#{table_id} {c}:nth-child({i + 1})" for i in right for c in ("td", "th"))
    style = f"<style>{cells} {{ text-align: right; }}</style>\n" if right else ""
    body = f'<table class="report" id="{table_id}"><thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table>'
    return f'{style}<div class="scroll" tabindex="0" role="region" aria-label="table {table_id}">{body}</div>'


def _section(section: Section, slug: str) -> list[str]:
    out = [f'<section id="{slug}">', f"<h2>{inline(section.heading)}</h2>"]
    out += [f"<p>{inline(line)}</p>" for line in section.text]
    if section.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{inline(line)}</li>" for line in section.notes) + "</ul>")
    figures = section.figure_list
    for k, figure in enumerate(figures):
        alt = html.escape(_plain(section.caption or section.heading) + (f" ({k + 1})" if k else ""))
        out.append(f'<figure><img src="{figure_data_uri(figure.figure)}" alt="{alt}">')
        if section.caption and k == len(figures) - 1:
            out.append(f"<figcaption>{inline(section.caption)}</figcaption>")
        out.append("</figure>")
    table = section.table
    if table is not None:
        if not n_rows(table):
            out.append("<p>(none)</p>")
        elif isinstance(table, Table):
            out.append(_markdown_table(table, f"{slug}-table"))
        else:
            out.append(_table(table, f"{slug}-table"))
    if section.markdown:  # Markdown built outside report/: shown as written, never as markup
        out.append(f'<pre class="markdown">{html.escape(chr(10).join(section.markdown).strip())}</pre>')
    out += [f"<p>{inline(line)}</p>" for line in section.after]
    for picture in section.pictures:
        src = html.escape(urllib.parse.quote(picture.file), quote=True)
        out.append(f'<figure><img src="{src}" alt="{html.escape(_plain(picture.alt))}" loading="lazy">')
        if picture.caption:
            out.append(f"<figcaption>{inline(picture.caption)}</figcaption>")
        out.append("</figure>")
    out.append("</section>")
    return out


def render_html(doc: Document) -> str:
    """The whole page: the title, the banner, the generated line, the lead bullets, then each section."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(_plain(doc.title))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{inline(doc.title)}</h1>",
    ]
    if doc.banner:
        out.append(f'<p class="banner">{inline(doc.banner)}</p>')
    if doc.generated:
        out.append(f'<p class="generated">{inline(doc.generated)}</p>')
    lead = [*doc.lead, *doc.html_lead]
    if lead:
        out.append('<ul class="lead">' + "".join(f"<li>{inline(line)}</li>" for line in lead) + "</ul>")
    for n, section in enumerate(doc.sections):
        out += _section(section, f"s{n}")
    out += [f"<p>{inline(line)}</p>" for line in doc.footer]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _plain(text: str) -> str:
    """Markdown marks dropped and md_text's entities decoded (for <title> and alt text, escaped after)."""
    return _MD_ENTITY.sub(lambda m: html.unescape(m.group()), re.sub(r"[`*]", "", str(text)))


def write_html(path: Path, doc: Document) -> Path:
    """Write the page to ``path`` atomically (``_core.write_file``)."""
    return _core.write_file(path, render_html(doc))
