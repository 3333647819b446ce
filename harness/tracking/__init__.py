"""Tracking: MLflow runs, and the metric sinks the training loop writes to."""

from harness.tracking._base import MetricSink
from harness.tracking._env import environment_tags, git_commit, versions
from harness.tracking._mlflow import (
    DEFAULT_TRACKING_URI,
    RunHandle,
    RunKilled,
    Tracker,
    resolve_tracking_uri,
)
from harness.tracking._names import ladder_experiment, quote, replay_experiment, space_fingerprint, study_experiment
from harness.tracking._progress import ProgressSink, TrialProgress
from harness.tracking._sinks import JsonlSink, TensorBoardSink
from harness.tracking._sweep import SWEPT_TAG, Orphan, owner_gone, owner_of, owner_tags, sweep

__all__ = [
    "DEFAULT_TRACKING_URI",
    "SWEPT_TAG",
    "JsonlSink",
    "MetricSink",
    "Orphan",
    "ProgressSink",
    "RunHandle",
    "RunKilled",
    "TensorBoardSink",
    "Tracker",
    "TrialProgress",
    "environment_tags",
    "git_commit",
    "ladder_experiment",
    "owner_gone",
    "owner_of",
    "owner_tags",
    "quote",
    "replay_experiment",
    "resolve_tracking_uri",
    "space_fingerprint",
    "study_experiment",
    "sweep",
    "versions",
]
