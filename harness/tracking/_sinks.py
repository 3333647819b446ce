"""The file sinks: TensorBoard event files and a JSONL log of metrics."""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Iterator, Mapping
from pathlib import Path


class TensorBoardSink:
    """Scalars as TensorBoard event files, grouped so train and test curves overlay."""

    def __init__(self, logdir: Path) -> None:
        import tensorflow as tf

        self.logdir = logdir
        self._tf = tf
        with self._writing():
            self._writers = {
                "train": tf.summary.create_file_writer(str(logdir / "train")),
                "test": tf.summary.create_file_writer(str(logdir / "test")),
            }

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """TensorFlow's file errors (a full disk, a folder it may not write) as one OSError naming the folder."""
        try:
            yield
        except self._tf.errors.ResourceExhaustedError:
            raise OSError(errno.ENOSPC, f"the disk is full at the TensorBoard folder {self.logdir}") from None
        except (self._tf.errors.PermissionDeniedError, self._tf.errors.FailedPreconditionError) as exc:
            reason = (exc.message or type(exc).__name__).strip().splitlines()[-1][:300]
            raise OSError(errno.EIO, f"cannot write TensorBoard events in {self.logdir}: {reason}") from None

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        with self._writing():
            for name, value in metrics.items():
                split, _, tag = name.partition("_")
                writer = self._writers.get(split)
                if writer is None:  # lr, wall_s: not split by train/test
                    writer, tag = self._writers["train"], name
                with writer.as_default(step=step):
                    self._tf.summary.scalar(tag, value)

    def close(self) -> None:
        with self._writing():
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
