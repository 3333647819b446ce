"""How runs are grouped into MLflow experiments (one per ladder, one per search space) and found again.

Drivers create runs under these names and reports and scans find them there, so
the names live here, below both.
"""

from __future__ import annotations


def ladder_experiment(ladder: str) -> str:
    return f"ladder/{ladder}"


def quote(value: str) -> str:
    """A value inside an MLflow filter string: single quotes doubled, so it cannot end the literal."""
    return value.replace("'", "''")


def study_experiment(space: str) -> str:
    """The MLflow experiment of every study of one search space."""
    return f"study/{space}"
