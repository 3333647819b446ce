"""How runs are grouped into MLflow experiments: one per ladder, one per search space.

Drivers create runs under these names and reports find them there, so the names
live here, below both.
"""

from __future__ import annotations


def ladder_experiment(ladder: str) -> str:
    return f"ladder/{ladder}"


def study_experiment(space: str) -> str:
    """The MLflow experiment of every study of one search space."""
    return f"study/{space}"
