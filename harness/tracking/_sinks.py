"""The file sinks: TensorBoard event files and a JSONL log of metrics."""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Iterator, Mapping
from pathlib import Path


class TensorBoardSink:
    """Scalars as TensorBoard event files, grouped so train and test curves overlay.

    Written by the tensorboard package's own writer (``tensorboard.summary.Writer``: the scalar plugin's
    tensor summaries, as ``tf.summary.scalar`` writes them), so that a run on any framework, TensorFlow
    installed or not, writes the same files."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.summary import Writer

        self.logdir = logdir
        with self._writing():
            self._writers = {split: Writer(str(logdir / split)) for split in ("train", "test")}

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """File errors (a full disk, a folder it may not write) as one OSError naming the folder; where
        TensorFlow is installed the writer writes through its file system, whose errors are its own."""
        try:
            yield
        except Exception as exc:
            name = type(exc).__name__
            if name == "ResourceExhaustedError" or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
                raise OSError(errno.ENOSPC, f"the disk is full at the TensorBoard folder {self.logdir}") from None
            if isinstance(exc, OSError) or name in ("PermissionDeniedError", "FailedPreconditionError"):
                text = getattr(exc, "message", "") or str(exc) or name
                reason = text.strip().splitlines()[-1][:300]
                raise OSError(errno.EIO, f"cannot write TensorBoard events in {self.logdir}: {reason}") from None
            raise

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        with self._writing():
            for name, value in metrics.items():
                split, _, tag = name.partition("_")
                writer = self._writers.get(split)
                if writer is None:  # lr, wall_s: not split by train/test
                    writer, tag = self._writers["train"], name
                writer.add_scalar(tag, value, step)

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
