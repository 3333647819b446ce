"""What ``harness study`` stores in the Optuna study, so that any worker on any machine can run it.

The search-space file itself is an artifact of the study's MLflow parent run; the study keeps only
where it is and its sha256, so the storage stays small and a worker checks it read the same file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.studies._formats import parse_space
from harness.studies._samplers import SamplerSpec
from harness.studies._space import Budget, ExperimentRef, PrunerSpec, ResolvedSpace, SearchSpace

if TYPE_CHECKING:
    from harness.tracking import Tracker

ATTR = "harness"  # the Optuna study user attribute holding StudySettings
# system attribute of a trial that replaces earlier ones (a retry, or a lost worker's finished result):
# the numbers it supersedes, which the budget no longer counts
REQUEUE_ATTR = "harness_requeue_history"
HEARTBEAT_ATTR = "harness:heartbeat"  # unix time of the last heartbeat, a system attribute of a running trial


FORMAT = 2  # 2: the space file lives in the parent run (format 1 stored its whole text here)


def space_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What ``harness study`` stores in the Optuna study for every worker (JSON)."""

    space_artifact: str  # the space file's path among the parent run's artifacts
    space_sha256: str
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
        if not isinstance(raw, dict) or not isinstance(raw.get("format"), int):
            raise UserError(f"{where} was not created by `harness study`; cannot run it")
        if raw["format"] != FORMAT:
            raise UserError(
                f"{where} was created by another version of harness (study format {raw['format']}, this one "
                f"reads {FORMAT}); run it with that version, or start a new study with --name"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def space(self, tracker: Tracker) -> SearchSpace:
        """The space file, read back from the parent run and checked against its digest."""
        where = f"search space {self.space_artifact!r} of MLflow run {self.parent_run_id} ({tracker.display_uri})"
        try:
            with tempfile.TemporaryDirectory(prefix="harness-space-") as scratch:
                local = tracker.client.download_artifacts(self.parent_run_id, self.space_artifact, scratch)
                text = Path(local).read_text(encoding="utf-8")
        except Exception as exc:  # an MLflow or file error: the worker cannot run this study
            raise UserError(f"cannot read the {where}: {type(exc).__name__}: {exc}") from None
        if space_digest(text) != self.space_sha256:
            raise UserError(f"the {where} has changed since the study started (its sha256 differs)")
        return parse_space(text, self.space_source)

    def resolve(self, tracker: Tracker) -> tuple[ResolvedSpace, SamplerSpec, PrunerSpec, Budget]:
        space = self.space(tracker)
        experiment = ExperimentRef.parse(self.experiment, "--experiment") if self.experiment else None
        resolved = space.resolve(experiment, self.scale, self.overrides)
        sampler = SamplerSpec(self.sampler["name"], int(self.sampler["seed"]), dict(self.sampler["options"]))
        pruner = PrunerSpec(self.pruner["name"], dict(self.pruner["options"]))
        return resolved, sampler, pruner, Budget(**self.budget)
