"""What ``harness study`` stores in the Optuna study, so that any worker on any machine can run it."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.errors import UserError
from harness.studies._formats import parse_space
from harness.studies._samplers import SamplerSpec
from harness.studies._space import Budget, ExperimentRef, PrunerSpec, ResolvedSpace, SearchSpace

ATTR = "harness"  # the Optuna study user attribute holding StudySettings
# system attribute of a trial that replaces earlier ones (a retry, or a lost worker's finished result):
# the numbers it supersedes, which the budget no longer counts
REQUEUE_ATTR = "harness_requeue_history"


FORMAT = 1


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What ``harness study`` stores in the Optuna study for every worker (JSON)."""

    space_text: str
    space_source: str
    experiment: str | None  # --experiment LADDER:RUNG, if given
    scale: str | None  # --scale, if given
    overrides: dict[str, Any]  # --set
    sampler: dict[str, Any]  # name, seed, options
    pruner: dict[str, Any]  # name, options
    budget: dict[str, Any]  # max_trials, max_parallel, max_failed
    heartbeat_interval: int
    grace_period: int
    tracking_uri: str
    mlflow_experiment: str
    parent_run_id: str
    fingerprint: str
    data_dir: str | None = None
    prices: str | None = None
    command: str = ""
    format: int = FORMAT

    def to_attr(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attr(cls, raw: Any, where: str) -> StudySettings:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise UserError(f"{where} was not created by `harness study` (format {FORMAT}); cannot run it")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def space(self) -> SearchSpace:
        return parse_space(self.space_text, self.space_source)

    def resolve(self) -> tuple[ResolvedSpace, SamplerSpec, PrunerSpec, Budget]:
        space = self.space()
        experiment = ExperimentRef.parse(self.experiment, "--experiment") if self.experiment else None
        resolved = space.resolve(experiment, self.scale, self.overrides)
        sampler = SamplerSpec(self.sampler["name"], int(self.sampler["seed"]), dict(self.sampler["options"]))
        pruner = PrunerSpec(self.pruner["name"], dict(self.pruner["options"]))
        return resolved, sampler, pruner, Budget(**self.budget)
