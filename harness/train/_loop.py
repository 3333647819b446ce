"""The one training loop: Config + data -> trained model + measurements.

Everything it measures goes to the sinks it is given; it does not know about
MLflow, TensorBoard or the ladder that called it. Everything task-specific (loss,
metrics, pipelines, what "best" means) comes from the config's task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import keras

from harness.config import Config
from harness.data import ArrayDataset
from harness.models import create_model
from harness.tasks import Task, get_task
from harness.tracking import MetricSink
from harness.train._callbacks import Clock, EvalRecorder, StopOnSignal
from harness.train._schedules import learning_rate


@dataclasses.dataclass
class TrainResult:
    """What one run produced: the model, the per-evaluation history and the timings."""

    model: keras.Model
    history: list[dict[str, float]]
    final: dict[str, float]  # final metrics and timings, MLflow-ready
    summary: str  # keras model.summary() text
    # final metrics undefined for this data (not in ``final``): key -> why, e.g. "one class in the test set"
    undefined: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def best_step(self) -> int:
        return int(self.final["best_step"])


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build and compile under Keras' dtype policy ``name``; the previous policy comes back after.

    Layers and the model keep the policy they were built with, and ``compile`` wraps the
    optimizer in a loss-scale optimizer under ``mixed_float16``.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def fresh_session(seed: int) -> None:
    """Start a run from a clean Keras state so memory does not grow run over run."""
    keras.backend.clear_session()  # it runs gc.collect() itself: a second one cost 0.24 s a run
    keras.utils.set_random_seed(seed)


def steps_per_execution(cfg: Config) -> int:
    """Training steps per compiled call: ``run.steps_per_execution``, cut to divide ``eval_every``; 1 on PyTorch,
    whose Keras trainer runs one step per call (harness/config/README.md says so beside the key)."""
    if cfg.run.framework == "torch":
        return 1
    return math.gcd(cfg.run.steps_per_execution, cfg.run.eval_every)


def build_and_compile(cfg: Config, data: ArrayDataset, task: Task | None = None) -> keras.Model:
    """The model of ``cfg`` compiled with the task's loss and metrics, the optimiser and schedule.

    Keras' ``compile`` has no evaluation-only metrics: ``fit`` also updates the task's ``eval_only``
    ones on training batches, and :meth:`Task.row` leaves those values out. (A ``tf.cond`` gate that
    skipped them failed under MirroredStrategy, and an A/B on the YOLO rung found their cost within
    noise: 59.6 vs 58.7 tiles/s.)
    """
    task = task or get_task(cfg.task.name)
    metrics = task.metrics(cfg, data)
    model = create_model(cfg.model, data.input_shape, task.outputs(data, cfg))
    o = cfg.optim
    lr = learning_rate(o, cfg.run.iterations)
    optimizer: keras.optimizers.Optimizer
    if o.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=lr)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    model.compile(
        optimizer=optimizer,
        loss=task.loss(cfg),
        metrics=metrics,
        steps_per_execution=steps_per_execution(cfg),
        # JAX compiles every step with XLA: without it, Keras runs JAX op by op, several times slower
        jit_compile=cfg.run.jit_compile or keras.backend.backend() == "jax",
    )
    return model


def _scope(strategy: Any) -> contextlib.AbstractContextManager[Any]:
    if strategy is not None:
        return strategy.scope()
    if sys.modules.get("tensorflow") is not None:
        return sys.modules["tensorflow"].distribute.get_strategy().scope()
    return contextlib.nullcontext()


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def model_summary(model: keras.Model) -> str:
    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"))
    return buf.getvalue()


def train(
    cfg: Config,
    data: ArrayDataset,
    sinks: Sequence[MetricSink] = (),
    strategy: Any = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Train ``cfg`` on ``data`` for ``run.iterations`` steps, evaluating every ``run.eval_every``.

    Raises :class:`~harness.errors.RunFailed` on a non-finite loss.
    """
    if isinstance(strategy, keras.distribution.DataParallel):  # JAX's data parallelism: on for building and fit
        with strategy.scope():
            return train(cfg, data, sinks, None, extra_callbacks)
    started = time.perf_counter()
    r = cfg.run
    if keras.backend.backend() != r.framework:  # the executor starts such a run in a child process
        raise RuntimeError(f"framework={r.framework}, but this process runs Keras on {keras.backend.backend()}")
    task = get_task(cfg.task.name)
    fresh_session(r.seed)
    data = data.subset(cfg.data.train_subset, cfg.data.test_subset)
    # a tf.distribute strategy (None: TensorFlow's default one, or none at all without TensorFlow)
    with _scope(strategy), dtype_policy(r.precision):
        model = build_and_compile(cfg, data, task)
    train_ds = task.train_dataset(data, cfg)
    test_ds = task.eval_dataset(data, cfg)

    clock = Clock()
    recorder = EvalRecorder(task, r.eval_every, cfg.learning_rate, sinks, started)
    setup_s = time.perf_counter() - started
    callbacks = [clock, recorder, StopOnSignal(), *extra_callbacks]
    tf = sys.modules.get("tensorflow")  # a strategy exists only where TensorFlow is imported
    if tf is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from harness.train._multiworker import fit_multiworker  # Keras 3's fit cannot drive this strategy

        fit_multiworker(
            model,
            train_ds,
            test_ds,
            strategy,
            epochs=r.iterations // r.eval_every,
            steps_per_epoch=r.eval_every,
            steps_per_execution=steps_per_execution(cfg),
            loss=task.loss(cfg),
            metrics=lambda: task.metrics(cfg, data),
            eval_only=task.eval_only,
            callbacks=callbacks,
        )
    else:
        model.fit(
            train_ds,
            epochs=r.iterations // r.eval_every,
            steps_per_epoch=r.eval_every,
            validation_data=test_ds,
            callbacks=callbacks,
            shuffle=False,  # train_ds shuffles itself; Keras cannot shuffle a tf.data input
            verbose=0,
        )
    if not recorder.history:  # an extra callback stopped training before the first evaluation
        raise RuntimeError("training stopped before the first evaluation")
    evaluated = task.evaluate(model, data, cfg)  # the task's once-after-training metrics (detection: AP)
    total_s = time.perf_counter() - started
    last = recorder.history[-1]
    steady_steps = last["step"] - clock.warmup_steps
    final = {
        **task.summarize(recorder.history),
        **evaluated,
        "params_count": float(model.count_params()),
        "time_total_s": total_s,
        "time_setup_s": setup_s,
        "time_warmup_s": clock.warmup_s,
        "time_train_s": clock.warmup_s + clock.train_s,
        "time_train_steady_s": clock.train_s,
        "time_eval_s": clock.eval_s,
        "examples_per_s": steady_steps * r.batch_size / clock.train_s if clock.train_s > 0 else 0.0,
        "memory_rss_mb": rss_mb(),  # after the run: flat across rungs if sessions are cleared
    }
    final, undefined = task.split_undefined(final)
    return TrainResult(
        model=model, history=recorder.history, final=final, summary=model_summary(model), undefined=undefined
    )
