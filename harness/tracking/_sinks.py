"""The file sinks: TensorBoard event files and a JSONL log of metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


class TensorBoardSink:
    """Scalars as TensorBoard event files, grouped so train and test curves overlay."""

    def __init__(self, logdir: Path) -> None:
        import tensorflow as tf

        self.logdir = logdir
        self._writers = {
            "train": tf.summary.create_file_writer(str(logdir / "train")),
            "test": tf.summary.create_file_writer(str(logdir / "test")),
        }
        self._tf = tf

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            split, _, tag = name.partition("_")
            writer = self._writers.get(split)
            if writer is None:  # lr, wall_s: not split by train/test
                writer, tag = self._writers["train"], name
            with writer.as_default(step=step):
                self._tf.summary.scalar(tag, value)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.flush()
            writer.close()


class JsonlSink:
    """One JSON object per evaluation step; easy to read back without any service."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self._file.write(json.dumps({"step": step, **metrics}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
