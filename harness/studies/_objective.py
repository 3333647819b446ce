"""Running one trial's config: ``harness.train.train`` with a sink that reports to Optuna.

Proposing parameters (the Optuna sampler) is separate from running them (this
module): a runner gets the trial, the trial's :class:`Config` and its MLflow run,
and returns the objective. Pruning is a metric sink: at each evaluation it calls
``trial.report(value, step)`` with the objective's metric and raises
``optuna.TrialPruned`` when the pruner says so; the worker ends that trial's MLflow
run KILLED.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from harness.config import Config
from harness.data import ArrayDataset, Split, load_dataset
from harness.errors import ConfigError, RunFailed
from harness.studies._space import Metric, ResolvedSpace
from harness.tracking import MetricSink, RunHandle


class TrialRunner(Protocol):
    """Runs one trial: ``prepare`` once per worker process, then one call per trial."""

    @property
    def price_per_hour(self) -> float | None: ...

    @property
    def tags(self) -> Mapping[str, str]:  # hardware tags for every trial run
        ...

    def prepare(self, resolved: ResolvedSpace, progress: Any) -> None: ...

    def __call__(self, trial: Any, cfg: Config, run: RunHandle) -> float: ...


class PruningSink:
    """A metric sink that reports the objective's metric to Optuna at each evaluation."""

    def __init__(self, trial: Any, metric: Metric) -> None:
        self.trial = trial
        self.metric = metric
        self.best: float | None = None

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        import optuna

        if self.metric.step_key not in metrics:
            return
        value = float(metrics[self.metric.step_key])
        if self.metric.running_best:
            value = value if self.best is None else max(self.best, value)
            self.best = value
        if not math.isfinite(value):
            return  # the training loop raises RunFailed on a non-finite loss
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.metric.step_key}={value:.4g})")

    def close(self) -> None:
        """Nothing buffered."""


class TrainingRunner:
    """The real objective: train the trial's config on the experiment's data."""

    def __init__(self, data_dir: str | None, prices: str | None) -> None:
        self.data_dir = data_dir
        self.prices = prices
        self.price_per_hour: float | None = None
        self.tags: dict[str, str] = {}
        self._data: dict[tuple[str, Split], ArrayDataset] = {}
        self._strategy: Any = None
        self._metric: Metric | None = None

    def prepare(self, resolved: ResolvedSpace, progress: Any) -> None:
        """Load (and validate) the data and pick the backend, before the first trial."""
        from harness.hardware import load_prices, make_strategy, price_per_hour

        base = resolved.base
        self._metric = resolved.space.objective
        self._dataset(base)
        try:
            self._strategy, hardware = make_strategy(base.backend)
        except ConfigError as exc:
            if resolved.tier_backend is None:
                raise
            tier = resolved.space.tier.name if resolved.space.tier else "?"
            progress(
                f"warning: {resolved.space.source}: scale tier {tier} asks for backend {base.backend!r}, "
                f"which this machine lacks ({exc}); running on backend=auto"
            )
            self._strategy, hardware = make_strategy("auto")
        self.price_per_hour = price_per_hour(hardware.hardware, load_prices(self.prices))
        self.tags = {
            "backend": hardware.backend,
            "hardware": hardware.hardware,
            "device": hardware.description,
            "price_per_hour": "unknown" if self.price_per_hour is None else f"{self.price_per_hour}",
        }

    def _dataset(self, cfg: Config) -> ArrayDataset:
        key = (cfg.dataset, cfg.data_split())
        if key not in self._data:
            self._data[key] = load_dataset(cfg.dataset, self.data_dir, cfg.data_split())
        return self._data[key]

    def __call__(self, trial: Any, cfg: Config, run: RunHandle) -> float:
        from harness.train import train

        assert self._metric is not None, "prepare() first"
        data = self._dataset(cfg)
        run.set_tags({"data.checksum": data.checksum, "data.source": data.source, "data.split": cfg.split})
        sinks: list[MetricSink] = [run, PruningSink(trial, self._metric)]
        result = train(cfg, data, sinks, strategy=self._strategy)
        final = dict(result.final)
        if self._metric.final_key not in final:
            raise ConfigError(
                f"objective metric {self._metric.name!r} ({self._metric.final_key}) is not logged by this "
                f"experiment (dataset {cfg.dataset}); logged: {', '.join(sorted(final))}"
            )
        value = float(final[self._metric.final_key])
        if not math.isfinite(value):
            raise RunFailed(f"objective {self._metric.final_key} is {value}")
        run.log_metrics(int(final["steps"]), final)
        return value


class TrivialRunner:
    """A stand-in objective with no training, to measure the study machinery itself (benchmark).

    ``(lr0 - 0.003)^2 + dropout`` style: the squared distance of the numeric parameters
    from fixed points, reported at two steps so that the pruning path runs too.
    """

    def __init__(self) -> None:
        self.price_per_hour: float | None = None
        self.tags: dict[str, str] = {"backend": "none", "hardware": "none", "device": "none (trivial objective)"}

    def prepare(self, resolved: ResolvedSpace, progress: Any) -> None:
        self._metric = resolved.space.objective

    def __call__(self, trial: Any, cfg: Config, run: RunHandle) -> float:
        value = 0.0
        for name, raw in trial.params.items():
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                value += (math.log10(raw) if raw > 0 else raw) ** 2 / (1 + len(name))
        sink = PruningSink(trial, self._metric)
        for step in (1, 2):
            sink.log_metrics(step, {self._metric.step_key: value / step})
        run.log_metrics(2, {"trivial_value": value})
        return value
