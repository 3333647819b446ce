"""Metric sinks: where the training loop sends what it measures.

The loop knows nothing about MLflow, TensorBoard or files; it calls every sink
it was given (detectron2's EventWriter idea). Sinks must raise on failure: a
metric that silently went nowhere is worse than a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class MetricSink(Protocol):
    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record ``metrics`` at training step ``step``."""

    def close(self) -> None:
        """Flush and release resources. Called once, also after a failure."""
