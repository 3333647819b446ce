"""How runs are grouped into MLflow experiments (one per ladder, one per search space) and found again.

Drivers create runs under these names and reports and scans find them there, so
the names live here, below both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def ladder_experiment(ladder: str) -> str:
    return f"ladder/{ladder}"


def quote(value: str) -> str:
    """A value inside an MLflow filter string: single quotes doubled, so it cannot end the literal."""
    return value.replace("'", "''")


def study_experiment(space: str) -> str:
    """The MLflow experiment of every study of one search space."""
    return f"study/{space}"


def replay_experiment(space: str) -> str:
    """The MLflow experiment of the replay benchmarks of one search space (never mixed with real trials)."""
    return f"replay/{space}"


def space_fingerprint(described: Mapping[str, Any]) -> str:
    """The identity of a resolved search space (space, experiment, objective, base config, parameters):
    a study's parent run carries it, and a replay checks its landscape against it."""
    keys = ("space", "experiment", "objective", "base_config", "params")
    blob = json.dumps({k: described[k] for k in keys}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
