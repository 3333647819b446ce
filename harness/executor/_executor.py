"""The run executor: everything that turns one config into one complete MLflow run.

Ladders, studies and benchmarks are thin drivers on top: they decide *what* to
run and how runs group (parent runs, trials), and call :meth:`Executor.run` (a
new child run) or :meth:`Executor.execute` (inside a run the driver opened, as a
study's worker does to keep Optuna's states). Per run, the executor

1. resolves the backend of that config (a ``tf.distribute`` strategy, cached per
   backend) and its price;
2. loads the data (cached per dataset section, checked before the first run);
3. tags the run (data, hardware, task), logs the active config sections as dotted
   params and ``config.yaml``, and the train and test splits as dataset inputs;
4. trains with the sinks MLflow, TensorBoard and JSONL, plus the driver's extras
   (a study's pruning sink);
5. logs the final metrics, timings and cost, then the artifacts: the metrics
   JSONL, model summary, the task's learning curve, the TensorBoard events, and
   the model (``model.keras`` and an MLflow model).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import _framework
from harness._paths import encode_name, safe_child
from harness.config import Config
from harness.data import ArrayDataset, TabularDataset, load_dataset
from harness.errors import ConfigError
from harness.executor._model import log_model, model_name, pending_model
from harness.executor._multiworker import WorkerJob, run_workers
from harness.hardware import (
    Hardware,
    host_devices_flag,
    host_devices_here,
    host_devices_needed,
    load_prices,
    make_strategy,
    price_per_hour,
)
from harness.tasks import UNDEFINED_TAG, get_task
from harness.tracking import FRAMEWORK_TAG, TASK_TAG, JsonlSink, MetricSink, RunHandle, TensorBoardSink, Tracker


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a config's runs go: the strategy of its backend, the hardware and its price."""

    strategy: Any
    hardware: Hardware
    price_per_hour: float | None

    def tags(self) -> dict[str, str]:
        return {
            "backend": self.hardware.backend,
            "hardware": self.hardware.hardware,
            "device": self.hardware.description,
            "price_per_hour": "unknown" if self.price_per_hour is None else f"{self.price_per_hour}",
        }


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """A finished run: its id, final metrics (with cost), per-evaluation history, and the final
    metrics undefined for its data (not in ``final``): key -> why."""

    run_id: str
    final: Mapping[str, float]
    history: Sequence[Mapping[str, float]]
    undefined: Mapping[str, str] = dataclasses.field(default_factory=dict)


class Executor:
    """Runs configs as tracked runs; holds the data and strategies they share."""

    def __init__(
        self,
        tracker: Tracker,
        data_dir: str | None = None,
        prices: str | None = None,
        tensorboard_dir: Path = Path("tensorboard"),
        datasets: Mapping[str, ArrayDataset] | None = None,
        log_models: bool = True,
        priced_as: str | None = None,
    ) -> None:
        self.tracker = tracker
        # price every run as this hardware (a Cloud ML Engine tier's machines), not the one it trains on
        self.priced_as = priced_as
        self.log_models = log_models  # benchmarks measure speed: their runs skip the saved models
        # TensorBoard folder of the runs of one invocation (a ladder's parent run); "" = each run's own id
        self.invocation = ""
        self.data_dir = data_dir
        self.prices = prices
        self.tensorboard_dir = tensorboard_dir
        self._preloaded = dict(datasets or {})  # by dataset name, default options (benchmarks)
        self._data: dict[tuple[Any, ...], ArrayDataset] = {}
        self._placements: dict[tuple[str, str], Placement] = {}
        self._price_table: Any = None

    # --- what runs share -------------------------------------------------------------------

    def data(self, cfg: Config) -> ArrayDataset:
        """The dataset of ``cfg`` (loaded once per distinct data section), refused where the task
        cannot train on it (one class of labels to classify: nothing to learn)."""
        key = cfg.data.load_key()
        if key not in self._data:
            preloaded = self._preloaded.get(cfg.data.name)
            self._data[key] = preloaded if preloaded is not None else load_dataset(cfg.data, self.data_dir)
        get_task(cfg.task.name).check_data(self._data[key], cfg)  # cheap; train_subset may differ per config
        return self._data[key]

    def placement(self, backend: str, framework: str | None = None) -> Placement:
        """The strategy and price of ``backend`` for a run on ``framework`` (default this process's): one
        strategy per backend and framework per process."""
        key = (backend, framework or _framework.current())
        if key not in self._placements:
            strategy, hardware = make_strategy(*key)
            if self._price_table is None:
                self._price_table = load_prices(self.prices)
            price = price_per_hour(self.priced_as or hardware.hardware, self._price_table)
            self._placements[key] = Placement(strategy, hardware, price)
        return self._placements[key]

    def prepare(self, configs: Sequence[Config]) -> None:
        """Load every dataset and resolve every backend now: bad input fails before any run exists."""
        for cfg in configs:
            cfg.check()
            self.data(cfg)
            self.placement(cfg.run.backend, cfg.run.framework)

    def tensorboard_logdir(self, group: str, run_id: str, name: str) -> Path:
        """``<tensorboard_dir>/<group>/<invocation or run id[:8]>/<name>``, always under ``tensorboard_dir``.

        With an invocation (``<start time>-<parent run id[:8]>``), TensorBoard lists a ladder's runs
        grouped by invocation, oldest first, and by rung within it (a study's trials likewise, under
        the group ``studies/<study>``: one folder per '/'-separated part).
        """
        # group and name are ladder, rung, study and run names: encoded, so '../' or '/' cannot lead out;
        # ladder and study names hold no '/', so only harness's own "studies/<study>" is split
        parts = [encode_name(p) for p in (*group.split("/"), self.invocation or run_id[:8], name) if p]
        return safe_child(self.tensorboard_dir, *parts, what="TensorBoard folder")

    # --- one run ---------------------------------------------------------------------------

    def run(
        self,
        experiment_id: str,
        name: str,
        cfg: Config,
        tags: Mapping[str, str],
        parent: RunHandle | None = None,
        group: str = "",
        extra_sinks: Sequence[MetricSink] = (),
        on_final: Callable[[dict[str, float]], None] | None = None,
        callbacks: Sequence[Any] = (),
    ) -> RunOutcome:
        """A new run (child of ``parent``) that ends FINISHED, FAILED or KILLED."""
        with self.tracker.run(experiment_id, name, tags, parent=parent) as handle:
            return self.execute(handle, experiment_id, name, cfg, group, extra_sinks, on_final, callbacks)

    def execute(
        self,
        run: RunHandle,
        experiment_id: str,
        name: str,
        cfg: Config,
        group: str = "",
        extra_sinks: Sequence[MetricSink] = (),
        on_final: Callable[[dict[str, float]], None] | None = None,
        callbacks: Sequence[Any] = (),
    ) -> RunOutcome:
        """Train ``cfg`` inside the open ``run`` and log everything; returns the outcome.

        ``on_final`` sees the final metrics before they are logged (a study adds its
        objective there, a benchmark its timings); it may raise to fail the run.
        ``callbacks`` are extra Keras callbacks for ``fit`` (a benchmark's clocks).
        """
        task = get_task(cfg.task.name)
        data = self.data(cfg)
        place = self.placement(cfg.run.backend, cfg.run.framework)
        run.stage(  # written with the params, in one call
            tags={
                **place.tags(),
                FRAMEWORK_TAG: cfg.run.framework,  # train() refuses to run on any other
                TASK_TAG: task.name,
                "data.checksum": data.checksum,
                "data.source": data.source,
                **cfg.data.tags(),
            }
        )
        run.log_params(cfg.params())
        log_splits(run, cfg, data)
        run.log_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), "config.yaml")
        elsewhere = self._elsewhere(cfg)
        if elsewhere:
            if callbacks:
                raise ConfigError(f"{elsewhere} cannot run a benchmark's clocks there")
            return self._execute_on_workers(run, experiment_id, name, cfg, group, extra_sinks, on_final)
        return self.train_and_log(run, experiment_id, name, cfg, group, extra_sinks, on_final, callbacks)

    def trains_here(self, cfg: Config) -> bool:
        """Whether ``cfg`` trains in this process (a driver's sinks and callbacks can only watch such a run)."""
        return not self._elsewhere(cfg)

    def _elsewhere(self, cfg: Config) -> str:
        """Why ``cfg`` trains in other processes than this one ("" where it trains here): ``multiworker:N``'s
        N local workers, or a framework that is not this process's (Keras has one per process)."""
        if self.placement(cfg.run.backend, cfg.run.framework).hardware.local_workers:
            return f"backend={cfg.run.backend} trains on local worker processes, which"
        if cfg.run.framework != _framework.current():
            return (
                f"framework={cfg.run.framework} trains in a child process (this process runs Keras on "
                f"{_framework.current()}), which"
            )
        if host_devices_needed(cfg.run.backend, cfg.run.framework) > host_devices_here():
            return (
                f"backend={cfg.run.backend} on JAX trains in a child process started with that many CPU devices, which"
            )
        return ""

    def _execute_on_workers(
        self,
        run: RunHandle,
        experiment_id: str,
        name: str,
        cfg: Config,
        group: str,
        extra_sinks: Sequence[MetricSink],
        on_final: Callable[[dict[str, float]], None] | None,
    ) -> RunOutcome:
        """``multiworker:N``: N local worker processes train; the chief logs into ``run``. Or a run on
        another framework than this process's: one child process trains and logs into ``run``."""
        workers = self.placement(cfg.run.backend, cfg.run.framework).hardware.local_workers
        if extra_sinks or on_final is not None:
            devices = host_devices_needed(cfg.run.backend, cfg.run.framework)
            if workers:
                advice = "use multiworker with TF_CONFIG, or another backend"
            elif cfg.run.framework == _framework.current() and devices > 1:
                advice = f"start it with XLA_FLAGS={host_devices_flag(devices)} and its trials train in its process"
            else:
                advice = (
                    f"give every trial of a study one framework, which the study starts on and its --parallel "
                    f"workers inherit; start a worker by hand with {_framework.ENV}={cfg.run.framework}"
                )
            raise ConfigError(
                f"{self._elsewhere(cfg)} runs ladders and single runs; a study's trials cannot yet run there ({advice})"
            )
        job = WorkerJob(
            config=cfg.to_dict(),
            run_id=run.run_id,
            experiment_id=experiment_id,
            name=name,
            group=group,
            data_dir=None if self.data_dir is None else str(self.data_dir),
            prices=self.prices,
            tensorboard_dir=str(self.tensorboard_dir.resolve()),
            ready_dir="",
        )
        started = time.perf_counter()
        # JAX reads its CPU device count once, at start
        devices = host_devices_needed(cfg.run.backend, cfg.run.framework)
        env = {"XLA_FLAGS": host_devices_flag(devices)} if devices > 1 else {}
        run_workers(run, job, workers or 1, self.tracker.uri, cfg.run.framework, cluster=bool(workers), env=env)
        wall = time.perf_counter() - started  # start-up, connecting, training and the chief's logging
        chief = self.tracker.client.get_run(run.run_id).data  # what the chief logged, and tagged undefined
        logged = chief.metrics
        run.log_metrics(int(logged.get("steps", 0)), {"time_wall_s": wall})
        logged = {**logged, "time_wall_s": wall}
        history = self.tracker.client.get_metric_history(run.run_id, f"test_{get_task(cfg.task.name).primary}")
        undefined = {k.removeprefix(UNDEFINED_TAG): v for k, v in chief.tags.items() if k.startswith(UNDEFINED_TAG)}
        return RunOutcome(run.run_id, dict(logged), [{"step": m.step, m.key: m.value} for m in history], undefined)

    def train_and_log(
        self,
        run: RunHandle,
        experiment_id: str,
        name: str,
        cfg: Config,
        group: str = "",
        extra_sinks: Sequence[MetricSink] = (),
        on_final: Callable[[dict[str, float]], None] | None = None,
        callbacks: Sequence[Any] = (),
    ) -> RunOutcome:
        """Train ``cfg`` here (one process, or the chief of a multi-worker run) and log the results."""
        from harness.train import train

        task = get_task(cfg.task.name)
        data = self.data(cfg)
        place = self.placement(cfg.run.backend, cfg.run.framework)
        tb_dir = self.tensorboard_logdir(group, run.run_id, name)
        with tempfile.TemporaryDirectory() as tmp:
            jsonl = Path(tmp) / "metrics.jsonl"
            sinks: list[MetricSink] = [run, TensorBoardSink(tb_dir), JsonlSink(jsonl), *extra_sinks]
            try:
                result = train(cfg, data, sinks, strategy=place.strategy, extra_callbacks=callbacks)
            finally:
                for sink in sinks:
                    sink.close()
            final = dict(result.final)
            if place.price_per_hour is not None:
                final["cost_usd"] = place.price_per_hour * final["time_total_s"] / 3600
            if on_final is not None:
                # a study's objective check sees an undefined metric as NaN (a failed trial), not as absent
                final.update(dict.fromkeys(result.undefined, math.nan))
                on_final(final)
                final = {k: v for k, v in final.items() if not (k in result.undefined and math.isnan(v))}
            if result.undefined:  # why they are not logged: reports say "undefined (<why>)", never 0
                run.set_tags({UNDEFINED_TAG + k: why for k, why in result.undefined.items()})
            steps = int(final["steps"])
            with contextlib.ExitStack() as stack:
                # the model exists before the final metrics, so that they are its metrics too (Models view)
                model_id = (
                    stack.enter_context(pending_model(run, experiment_id, model_name(group, name), cfg.params()))
                    if self.log_models
                    else None
                )
                run.log_metrics(steps, final, model_id=model_id)
                run.log_artifact(jsonl)
                run.log_text(result.summary, "model_summary.txt")
                run.log_figure(task.learning_curve(result.history, f"{group} {name}".strip()), "learning_curve.png")
                run.log_artifact(tb_dir, "tensorboard")
                if model_id is not None:
                    log_model(run, model_id, result.model, task, data, steps)
        return RunOutcome(run.run_id, final, result.history, dict(result.undefined))


def log_splits(run: RunHandle, cfg: Config, data: ArrayDataset) -> None:
    """The train and test splits the run uses as two MLflow dataset inputs (contexts training and
    testing), each with its schema and profile (rows, shapes): the UI's Dataset column and panel.

    Named ``<dataset>-train``/``-test``; the digest is that of the data's checksum, the split and its
    size (a ``train_subset`` is other data than the whole split)."""
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.data.pandas_dataset import from_pandas

    used = data.subset(cfg.data.train_subset, cfg.data.test_subset)
    for split, context, x, y in (
        ("train", "training", used.x_train, used.y_train),
        ("test", "testing", used.x_test, used.y_test),
    ):
        digest = hashlib.sha256(f"{data.checksum}:{split}:{len(x)}".encode()).hexdigest()
        name = f"{cfg.data.name}-{split}"
        # MLflow's hints are not the user's business here: only the schema and profile are kept ("/" is
        # no source to resolve), and the integer labels are never missing
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\.")
            if isinstance(used, TabularDataset):  # named columns, as the served model takes them
                frame: Any = used.frame(x)
                frame["label"] = y
                described: Any = from_pandas(frame, source="/", targets="label", name=name, digest=digest)
            else:
                described = from_numpy(x, targets=y, source="/", name=name, digest=digest)
            spec = json.loads(described.to_json())
        run.log_dataset(name, digest, data.source, context, schema=spec.get("schema"), profile=spec.get("profile"))
