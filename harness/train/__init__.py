"""The training loop (imports TensorFlow)."""

from harness.train._loop import TrainResult, build_and_compile, fresh_session, model_summary, rss_mb, train
from harness.train._schedules import ExpDecayToFloor, learning_rate

__all__ = [
    "ExpDecayToFloor",
    "TrainResult",
    "build_and_compile",
    "fresh_session",
    "learning_rate",
    "model_summary",
    "rss_mb",
    "train",
]
