"""Reports: comparison tables from the tracking store, and figures."""

from harness.report._ladder import (
    LadderReport,
    display_table,
    find_parent_run,
    ladder_report,
    to_markdown,
    verdict,
    write_report,
)

__all__ = [
    "LadderReport",
    "display_table",
    "find_parent_run",
    "ladder_report",
    "to_markdown",
    "verdict",
    "write_report",
]
