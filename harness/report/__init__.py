"""Reports: comparison tables and figures rebuilt from the tracking store.

``_core`` finds runs and writes tables (shared); ``_ladder``, ``_study``, ``_compare`` (real or
replayed sampler comparisons; ``_replay`` adds a replay's fidelity) and ``_hardware`` (the hardware
benchmark) are the reports. Ladder and study columns come from the task.
Each report builds one ``_document.Document`` (title, lead, sections); ``_document.render_markdown`` and
``_html.render_html`` (one self-contained page, figures inlined) write it, ``_publish.publish`` writes the
files (.md, .csv, .html, linked PNGs).
"""

from harness.report._compare import (
    CompareReport,
    compare_report,
    compare_study_name,
    display_compare,
    write_compare_report,
)
from harness.report._core import md_code, md_link, md_text, number, write_csv, write_file
from harness.report._document import Document, Figure, Picture, Section, Table, render_markdown
from harness.report._hardware import HardwareReport, hardware_report, write_hardware
from harness.report._html import render_html, write_html
from harness.report._ladder import (
    LadderReport,
    display_table,
    find_parent_run,
    ladder_report,
    to_markdown,
    verdict,
    write_report,
)
from harness.report._pricing import PriceOn
from harness.report._publish import Published, publish
from harness.report._replay import (
    REPLAY_ARTIFACT,
    replay_report,
    write_replay_report,
)
from harness.report._study import (
    TUNED,
    StudyReport,
    display_study,
    find_study_run,
    flat_objective,
    short_value,
    study_fingerprint,
    study_report,
    write_study_report,
)

__all__ = [
    "REPLAY_ARTIFACT",
    "TUNED",
    "CompareReport",
    "Document",
    "Figure",
    "HardwareReport",
    "LadderReport",
    "Picture",
    "PriceOn",
    "Published",
    "Section",
    "StudyReport",
    "Table",
    "compare_report",
    "compare_study_name",
    "display_compare",
    "display_study",
    "display_table",
    "find_parent_run",
    "find_study_run",
    "flat_objective",
    "hardware_report",
    "ladder_report",
    "md_code",
    "md_link",
    "md_text",
    "number",
    "publish",
    "render_html",
    "render_markdown",
    "replay_report",
    "short_value",
    "study_fingerprint",
    "study_report",
    "to_markdown",
    "verdict",
    "write_compare_report",
    "write_csv",
    "write_file",
    "write_hardware",
    "write_html",
    "write_replay_report",
    "write_report",
    "write_study_report",
]
