"""Figures: the talk's learning curves (accuracy zoomed near the top, and loss)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def learning_curve(history: Sequence[dict[str, float]], title: str) -> Any:
    """Train and test accuracy and cross-entropy against training step."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless; a no-op if a backend is already chosen
    from matplotlib.figure import Figure

    steps = [row["step"] for row in history]
    fig = Figure(figsize=(10, 3.8))
    acc, loss = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("test", "-")):
        acc.plot(steps, [row[f"{split}_accuracy"] for row in history], style, label=split)
        loss.plot(steps, [row[f"{split}_loss"] for row in history], style, label=split)
    low = min(row["test_accuracy"] for row in history)
    acc.set_ylim(max(0.0, min(low, 0.9)), 1.0)
    acc.set_title("accuracy")
    loss.set_title("cross-entropy (mean)")
    for ax in (acc, loss):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig
