"""Running one trial's config: ``harness.train.train`` with a sink that reports to Optuna.

Proposing parameters (the Optuna sampler) is separate from running them (this
module): a runner gets the trial, the trial's :class:`Config` and its MLflow run,
and returns the objective. Pruning is a metric sink: at each evaluation it calls
``trial.report(value, step)`` with the objective's metric and raises
``optuna.TrialPruned`` when the pruner says so; the worker ends that trial's MLflow
run KILLED.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Protocol

from harness.config import Config, apply_overrides
from harness.errors import ConfigError, RunFailed
from harness.studies._space import ResolvedSpace
from harness.tasks import Objective
from harness.tracking import RunHandle, Tracker


@dataclasses.dataclass(frozen=True)
class TrialRun:
    """What a runner gets for one trial: the Optuna trial, its config and its open MLflow run."""

    trial: Any  # optuna.Trial
    cfg: Config
    run: RunHandle
    experiment_id: str
    study: str  # the study's name
    sinks: tuple[Any, ...] = ()  # more metric sinks for the trial's evaluations (the study's progress display)
    # the study's TensorBoard folder under tensorboard/studies/<study>/ (StudyContext.invocation); "" = the run id
    invocation: str = ""

    @property
    def name(self) -> str:
        return f"trial-{self.trial.number:03d}"


class TrialRunner(Protocol):
    """Runs one trial: ``prepare`` once per worker process, then one call per trial."""

    @property
    def price_per_hour(self) -> float | None: ...

    @property
    def tags(self) -> Mapping[str, str]:  # tags for every trial run at its creation
        ...

    def prepare(self, resolved: ResolvedSpace, progress: Any) -> None: ...

    def __call__(self, t: TrialRun) -> float: ...


class PruningSink:
    """A metric sink that reports the objective's metric to Optuna at each evaluation."""

    def __init__(self, trial: Any, metric: Objective) -> None:
        self.trial = trial
        self.metric = metric
        self.best: float | None = None

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        import optuna

        if self.metric.step_key not in metrics:
            return
        value = float(metrics[self.metric.step_key])
        if self.metric.running_best:
            better = max if self.metric.direction == "maximize" else min
            value = value if self.best is None else better(self.best, value)
            self.best = value
        if not math.isfinite(value):
            return  # the training loop raises RunFailed on a non-finite loss
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.metric.step_key}={value:.4g})")

    def close(self) -> None:
        """Nothing buffered."""


class TrainingRunner:
    """The real objective: the run executor trains the trial's config inside the trial's run.

    Trials therefore get what ladder rungs get: params, tags, curves, TensorBoard
    events and the model, so a study's best trial can be inspected, reported and scanned.
    """

    def __init__(self, tracker: Tracker, data_dir: str | None, prices: str | None) -> None:
        from harness.executor import Executor

        self.executor = Executor(tracker, data_dir, prices)
        self.price_per_hour: float | None = None
        self.tags: dict[str, str] = {}
        self._objective: Objective | None = None
        self._backend: str | None = None  # set when a Cloud ML Engine tier's backend is not here

    def prepare(self, resolved: ResolvedSpace, progress: Any) -> None:
        """Load (and validate) the data and pick the backend, before the first trial."""
        base = resolved.base
        self._objective = resolved.objective
        self.executor.data(base)
        try:
            place = self.executor.placement(base.run.backend, base.run.framework)
        except ConfigError as exc:
            if resolved.tier_backend is None:
                raise
            tier = resolved.space.tier.name if resolved.space.tier else "?"
            progress(
                f"warning: {resolved.space.source}: scale tier {tier} asks for backend {base.run.backend!r}, "
                f"which this machine lacks ({exc}); running on backend=auto"
            )
            self._backend = "auto"
            place = self.executor.placement("auto", base.run.framework)
        self.price_per_hour = place.price_per_hour

    def __call__(self, t: TrialRun) -> float:
        objective = self._objective
        assert objective is not None, "prepare() first"
        cfg = t.cfg
        if self._backend is not None:
            cfg = apply_overrides(cfg, {"run.backend": self._backend}, "scale tier fallback")

        def check(final: dict[str, float]) -> None:
            if objective.final_key not in final:
                raise ConfigError(
                    f"objective {objective.name!r} ({objective.final_key}) is not logged by this experiment "
                    f"(dataset {cfg.data.name}); logged: {', '.join(sorted(final))}"
                )
            if not math.isfinite(float(final[objective.final_key])):
                raise RunFailed(f"objective {objective.final_key} is {final[objective.final_key]}")

        # tensorboard/studies/<study>/<invocation>/trial-NNN: one readable folder per study, trials in order
        self.executor.invocation = t.invocation
        outcome = self.executor.execute(
            t.run,
            t.experiment_id,
            t.name,
            cfg,
            f"studies/{t.study}",
            [*t.sinks, PruningSink(t.trial, objective)],  # the display first: it shows the step that prunes
            check,
        )
        return float(outcome.final[objective.final_key])


class TrivialRunner:
    """A stand-in objective with no training, to measure the study machinery itself (benchmark).

    ``(lr0 - 0.003)^2 + dropout`` style: the squared distance of the numeric parameters
    from fixed points, reported at two steps so that the pruning path runs too.
    """

    def __init__(self) -> None:
        self.price_per_hour: float | None = None
        self.tags: dict[str, str] = {"backend": "none", "hardware": "none", "device": "none (trivial objective)"}

    def prepare(self, resolved: ResolvedSpace, progress: Any) -> None:
        self._objective = resolved.objective

    def __call__(self, t: TrialRun) -> float:
        t.run.log_params(t.cfg.params())
        value = 0.0
        for name, raw in t.trial.params.items():
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                value += (math.log10(raw) if raw > 0 else raw) ** 2 / (1 + len(name))
        sink = PruningSink(t.trial, self._objective)
        for step in (1, 2):
            sink.log_metrics(step, {self._objective.step_key: value / step})
        t.run.log_metrics(2, {"trivial_value": value})
        return value
