"""Reports: comparison tables and figures rebuilt from the tracking store.

``_core`` finds runs and writes tables (shared); ``_ladder``, ``_study``, ``_compare`` (real or
replayed sampler comparisons; ``_replay`` adds a replay's fidelity) and ``_hardware`` (the hardware
benchmark) are the reports. Ladder and study columns come from the task.
``_html`` writes each report also as one self-contained HTML page (its figures inlined).
"""

from harness.report._compare import (
    CompareReport,
    compare_report,
    compare_study_name,
    display_compare,
    write_compare_report,
)
from harness.report._hardware import HardwareReport, hardware_report, write_hardware
from harness.report._html import Section, publish_html, render_html, write_html
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
from harness.report._replay import (
    PRICED_EXPERIMENT,
    PRICED_ON,
    REPLAY_ARTIFACT,
    replay_report,
    write_replay_report,
)
from harness.report._study import (
    StudyReport,
    display_study,
    find_study_run,
    study_fingerprint,
    study_report,
    write_study_report,
)

__all__ = [
    "PRICED_EXPERIMENT",
    "PRICED_ON",
    "REPLAY_ARTIFACT",
    "CompareReport",
    "HardwareReport",
    "LadderReport",
    "PriceOn",
    "Section",
    "StudyReport",
    "compare_report",
    "compare_study_name",
    "display_compare",
    "display_study",
    "display_table",
    "find_parent_run",
    "find_study_run",
    "hardware_report",
    "ladder_report",
    "publish_html",
    "render_html",
    "replay_report",
    "study_fingerprint",
    "study_report",
    "to_markdown",
    "verdict",
    "write_compare_report",
    "write_hardware",
    "write_html",
    "write_replay_report",
    "write_report",
    "write_study_report",
]
