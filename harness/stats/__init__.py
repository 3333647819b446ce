"""The statistics behind every comparison table (samplers, rungs, variants, backends), on scipy.stats.

- ``_intervals``: mean ± standard error with a seeded bootstrap CI, the median's exact CI, and
  Kaplan-Meier summaries of "repeats to a target" that may be censored (never reached);
- ``_pairwise``: Wilcoxon signed-rank (paired seeds) or Mann-Whitney U, sign tests for censored pairs,
  Holm's correction across one table's pairs, rank-biserial effect sizes, a verdict per pair; one group
  against a fixed reference number (``one_sample``, ``one_samples``);
- ``_power``: the repeats needed to detect an observed effect.

Alpha is 0.05 and intervals are 95% throughout. A table names a winner only through ``winner``.
"""

from harness.stats._intervals import (
    CONFIDENCE,
    NO_INTERVAL,
    CensoredSummary,
    Interval,
    Summary,
    bootstrap_ci,
    censored_summary,
    mean_difference,
    mean_of,
    summarize,
)
from harness.stats._pairwise import (
    ALPHA,
    NO_DIFFERENCE,
    PairTest,
    Verdict,
    describe_verdict,
    format_p,
    holm,
    one_sample,
    one_samples,
    pairwise,
    winner,
)
from harness.stats._power import repeats_needed, smallest_testable, standardized_effect

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "NO_DIFFERENCE",
    "NO_INTERVAL",
    "CensoredSummary",
    "Interval",
    "PairTest",
    "Summary",
    "Verdict",
    "bootstrap_ci",
    "censored_summary",
    "describe_verdict",
    "format_p",
    "holm",
    "mean_difference",
    "mean_of",
    "one_sample",
    "one_samples",
    "pairwise",
    "repeats_needed",
    "smallest_testable",
    "standardized_effect",
    "summarize",
    "winner",
]
