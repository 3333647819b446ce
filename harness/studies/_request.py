"""What ``harness study`` was asked to do, and its checks: everything a request can get wrong without
reading data or opening a store (space, experiment, overrides, sampler, pruner, budget, name, storage URL).

Imports neither MLflow nor TensorFlow: the study commands answer bad input before loading them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.errors import UserError
from harness.studies._formats import load_space
from harness.studies._samplers import SamplerSpec, check_pruner
from harness.studies._space import Budget, ExperimentRef, PrunerSpec, ResolvedSpace, SearchSpace
from harness.studies._storage import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, normalise_url, storage_kind


@dataclasses.dataclass(frozen=True)
class StudyRequest:
    """What ``harness study`` was asked to do."""

    space_file: str
    experiment: str | None = None
    scale: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sampler: str | None = None
    seed: int = 0
    pruner: str | None = None
    trials: int | None = None
    max_failed: int | None = None
    parallel: int = 1
    name: str | None = None
    storage: str | None = None
    tracking_uri: str | None = None
    data_dir: str | None = None
    prices: str | None = None
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S
    grace_period: int = GRACE_PERIOD_S
    command: str = ""
    plots: bool = True  # Optuna's plots on the parent run at the end
    # fixed points (Optuna names and values) queued when the study is created: a landscape's design
    design: tuple[Mapping[str, Any], ...] = ()
    design_note: str = ""  # how the design was made, for the parent run's tags (harness.landscape)

    def __post_init__(self) -> None:  # the command line's checks too: messages name its options
        if self.parallel < 0:
            raise UserError(f"--parallel must be >= 0, but got {self.parallel}")
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise UserError(
                f"need --heartbeat-interval >= 1 and --grace-period > --heartbeat-interval, but got "
                f"{self.heartbeat_interval} and {self.grace_period}"
            )


@dataclasses.dataclass(frozen=True)
class CheckedStudy:
    """A request's input checked and resolved; nothing is opened or created yet."""

    space: SearchSpace
    resolved: ResolvedSpace
    sampler: SamplerSpec
    pruner: PrunerSpec
    budget: Budget
    name: str


def check_study(request: StudyRequest) -> CheckedStudy:
    """Check the space, experiment, overrides, sampler, pruner, budget, name and a given storage URL."""
    space = load_space(request.space_file)
    experiment = ExperimentRef.parse(request.experiment, "--experiment") if request.experiment else None
    resolved = space.resolve(experiment, request.scale, request.overrides)
    sampler_name = request.sampler or space.sampler
    sampler = SamplerSpec.for_space(sampler_name, request.seed, space)
    pruner = check_pruner(request.pruner, None, "--pruner") if request.pruner else space.pruner
    budget = space.budget
    if request.trials is not None:
        if request.trials < 1:
            raise UserError(f"--trials must be >= 1, but got {request.trials}")
        budget = dataclasses.replace(budget, max_trials=request.trials)
    if request.max_failed is not None:
        if request.max_failed < 1:  # 0 would stop the study before its first trial
            raise UserError(f"--max-failed must be >= 1, but got {request.max_failed}")
        budget = dataclasses.replace(budget, max_failed=request.max_failed)
    if budget.max_parallel is not None and request.parallel > budget.max_parallel:
        raise UserError(
            f"--parallel {request.parallel} is more than the search space allows: "
            f"{space.source} sets max_parallel (maxParallelTrials) = {budget.max_parallel}"
        )
    name = request.name or f"{space.name}-{sampler.name}"
    if not name or any(c.isspace() or c == "/" for c in name):
        raise UserError(f"--name must be a word without spaces or '/', but got {name!r}")
    if request.storage:  # the default storage sits beside the tracking store, known once MLflow is loaded
        storage_kind(normalise_url(request.storage))
    return CheckedStudy(space, resolved, sampler, pruner, budget, name)
