"""Keras callbacks: the bridge from ``model.fit`` to metric sinks, and the clock.

One fit "epoch" is one evaluation interval (``eval_every`` steps); Keras runs
the test-set evaluation at its end, so each epoch end is an evaluation step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

from harness import interrupts
from harness.errors import RunFailed
from harness.tasks import Task
from harness.tracking import MetricSink


class Clock(keras.callbacks.Callback):
    """Splits wall time into warm-up, steady-state training and evaluation.

    Warm-up is the first ``fit`` execution (tracing and graph building plus
    ``steps_per_execution`` steps); steady state is every later training
    execution. Evaluation time (test-set passes) is counted apart from both.
    """

    def __init__(self) -> None:
        super().__init__()
        self.warmup_s = 0.0
        self.train_s = 0.0  # steady-state training only
        self.eval_s = 0.0
        self.warmup_steps = 0
        self._t = 0.0
        self._first = True

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._first:  # batch is the index of the last step of this execution
            self._first = False
            now = time.perf_counter()
            self.warmup_s = now - self._t
            self.warmup_steps = batch + 1
            self._t = now

    def on_test_begin(self, logs: Any = None) -> None:
        now = time.perf_counter()
        self.train_s += now - self._t
        self._t = now

    def on_test_end(self, logs: Any = None) -> None:
        self.eval_s += time.perf_counter() - self._t


class StopOnSignal(keras.callbacks.Callback):
    """Turn a requested Ctrl-C/SIGTERM into ``KeyboardInterrupt`` after the current execution."""

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        interrupts.check()

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        interrupts.check()


class EvalRecorder(keras.callbacks.Callback):
    """At each evaluation step: the task's metrics, a NaN check, then every sink.

    The history keeps a metric undefined at that step (the task's NaN: AUC on one class) as NaN, so
    that curves show a gap; the sinks never see it (nothing logged is better than a made-up 0).
    """

    def __init__(
        self,
        task: Task,
        eval_every: int,
        lr_at: Callable[[int], float],
        sinks: Sequence[MetricSink],
        started: float,
    ) -> None:
        super().__init__()
        self.task = task
        self.eval_every = eval_every
        self.lr_at = lr_at
        self.sinks = list(sinks)
        self.started = started
        self.history: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = logs or {}
        step = (epoch + 1) * self.eval_every
        row = {
            **self.task.row(logs),
            "lr": float(self.lr_at(step)),
            "wall_s": time.perf_counter() - self.started,
        }
        if not math.isfinite(float(logs["loss"])):
            raise RunFailed(f"training loss is {float(logs['loss'])} at step {step}")
        self.history.append({"step": step, **row})
        defined, _ = self.task.split_undefined(row)
        for sink in self.sinks:
            sink.log_metrics(step, defined)
