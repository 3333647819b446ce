"""What harness writes on its MLflow runs as ``harness.*`` tags, and how it reads them back: one record per
kind of run.

A driver builds a record and writes ``record.to_tags()``; a report, a scan or a replay reads
``Record.from_tags(run.data.tags)`` and gets typed fields. The tag names and values are those harness has
always written (stores made before this module read the same), so each parser documents what old runs lack:
a field added later is ``None`` when absent; a field every run of its kind has is required, and a run
without it (or with a garbled value) raises :class:`TagError`, never a made-up default. The names a search
filters on are constants here (:func:`kind_filter`, :func:`tag_filter`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from harness.errors import UserError
from harness.tracking._names import quote

TAG_LIMIT = 5000  # MLflow's longest tag value (as configured here): longer notes are cut, not refused

# the tag names searched on (``tags.`harness.kind` = 'study'``) and set outside a record
KIND_TAG = "harness.kind"
STUDY_TAG = "harness.study"
SCALE_TAG = "harness.scale"
RUNG_TAG = "harness.rung"
VARIANT_TAG = "harness.variant"
TASK_TAG = "harness.task"  # every run the executor makes: the task whose columns and metrics it has
FRAMEWORK_TAG = "harness.framework"  # every run the executor makes: the Keras backend it trained on
COMMAND_TAG = "harness.command"  # the command line that made a parent run (redacted)
NOTE_TAG = "harness.note"  # why a trial's run ended as it did, set when it ends (or later, by a supervisor)


class TagError(UserError):
    """A run's ``harness.*`` tags are missing or garbled: an old run, a foreign run or a hand-edited one."""


def tag_filter(name: str, value: str, op: str = "=") -> str:
    """An MLflow search condition on a tag (``tags.`harness.study` LIKE 'x-%'``), the value quoted."""
    return f"tags.`{name}` {op} '{quote(value)}'"


def kind_filter(kind: str) -> str:
    """The search condition for runs of one kind (a record's ``KIND``)."""
    return tag_filter(KIND_TAG, kind)


def kind_of(tags: Mapping[str, str]) -> str | None:
    """The run's kind (``ladder``, ``rung``, ``study``, ...), ``None`` for a run harness did not tag."""
    return tags.get(KIND_TAG)


class _Reader:
    """Typed reads of one run's tags; every error names the record, the tag and the value."""

    def __init__(self, tags: Mapping[str, Any], what: str) -> None:
        # pandas gives an absent tag as NaN: only strings are values
        self.tags = {k: v for k, v in tags.items() if isinstance(v, str)}
        self.what = what

    def fail(self, name: str, why: str) -> TagError:
        return TagError(f"{self.what}: tag {name} {why} (a run made before the tag existed, or not by harness?)")

    def text(self, name: str) -> str:
        if name not in self.tags:
            raise self.fail(name, "is missing")
        return self.tags[name]

    def opt(self, name: str) -> str | None:
        return self.tags.get(name)

    def number(self, name: str) -> int:
        value = self.text(name)
        try:
            return int(value)
        except ValueError:
            raise self.fail(name, f"is {value!r}, not an integer") from None

    def opt_int(self, name: str) -> int | None:
        """An integer; ``None`` when the tag is absent or empty (how "none" is written)."""
        return self.number(name) if self.tags.get(name) else None

    def opt_float(self, name: str) -> float | None:
        """A number; ``None`` when the tag is absent or empty (how "none" is written)."""
        value = self.tags.get(name)
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            raise self.fail(name, f"is {value!r}, not a number") from None

    def names(self, name: str, sep: str = ",", required: bool = True) -> tuple[str, ...] | None:
        value = self.text(name) if required else self.opt(name)
        return None if value is None else tuple(v for v in value.split(sep) if v)

    def kind(self, expected: str) -> None:
        found = self.tags.get(KIND_TAG)
        if found != expected:
            raise TagError(f"{self.what}: tag {KIND_TAG} is {found!r}, not {expected!r}")


def _none(value: int | float | None) -> str:
    """How harness writes an optional number: ``""`` for none."""
    return "" if value is None else str(value)


def _cut(text: str) -> str:
    return text[:TAG_LIMIT]


def _drop_none(tags: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if v is not None}


# ---------------------------------------------------------------- ladders


@dataclasses.dataclass(frozen=True, kw_only=True)
class LadderTags:
    """What a ladder's parent run and each of its rung runs share."""

    ladder: str
    scale: str
    task: str  # a run without it predates tasks (or is not a ladder's): its columns cannot be known
    metric: str  # the per-evaluation metric the rungs' references quote (``test_<m>``)

    def _shared(self) -> dict[str, str]:
        return {
            "harness.ladder": self.ladder,
            SCALE_TAG: self.scale,
            TASK_TAG: self.task,
            "harness.metric": self.metric,
        }

    @staticmethod
    def _read_shared(r: _Reader) -> dict[str, Any]:
        return {
            "ladder": r.text("harness.ladder"),
            "scale": r.text(SCALE_TAG),
            "task": r.text(TASK_TAG),
            "metric": r.text("harness.metric"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class LadderRecord(LadderTags):
    """The parent run of one ``harness ladder``."""

    KIND: ClassVar[str] = "ladder"
    seeds: int
    rungs_selected: str | None = ""  # --rungs as given; "": every rung; None: a run from before the tag
    variants: tuple[str, ...] | None = ()  # the --vary labels; None: a run from before the tag
    command: str | None = None
    ladder_source: str | None = None
    ladder_notes: str | None = None

    def to_tags(self) -> dict[str, str]:
        return _drop_none(
            {
                KIND_TAG: self.KIND,
                **self._shared(),
                "harness.seeds": str(self.seeds),
                "harness.rungs_selected": self.rungs_selected,
                "harness.variants": None if self.variants is None else ";".join(self.variants),
                COMMAND_TAG: self.command,
                "harness.ladder_source": self.ladder_source,
                "harness.ladder_notes": None if self.ladder_notes is None else _cut(self.ladder_notes),
            }
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "ladder parent run") -> Self:
        r = _Reader(tags, where)
        r.kind(cls.KIND)
        return cls(
            **cls._read_shared(r),
            seeds=r.number("harness.seeds"),
            rungs_selected=r.opt("harness.rungs_selected"),
            variants=r.names("harness.variants", ";", required=False),
            command=r.opt(COMMAND_TAG),
            ladder_source=r.opt("harness.ladder_source"),
            ladder_notes=r.opt("harness.ladder_notes"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RungRecord(LadderTags):
    """One run of a ladder: one rung, variant and seed."""

    KIND: ClassVar[str] = "rung"
    rung: str
    rung_index: int
    rung_changes: str
    seed: int
    variant: str | None = ""  # the --vary label, "" for none; None: a run from before variants
    rung_note: str | None = ""  # None: a run from before rung notes
    reference: float | None = None  # the talk's number for ``metric``; None: it quotes none

    def to_tags(self) -> dict[str, str]:
        return _drop_none(
            {
                KIND_TAG: self.KIND,
                **self._shared(),
                RUNG_TAG: self.rung,
                "harness.rung_index": str(self.rung_index),
                "harness.rung_changes": self.rung_changes,
                "harness.rung_note": self.rung_note,
                VARIANT_TAG: self.variant,
                "harness.reference": _none(self.reference),
                "harness.seed": str(self.seed),
            }
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "rung run") -> Self:
        r = _Reader(tags, where)
        r.kind(cls.KIND)
        return cls(
            **cls._read_shared(r),
            rung=r.text(RUNG_TAG),
            rung_index=r.number("harness.rung_index"),
            rung_changes=r.text("harness.rung_changes"),
            seed=r.number("harness.seed"),
            variant=r.opt(VARIANT_TAG),
            rung_note=r.opt("harness.rung_note"),
            reference=r.opt_float("harness.reference"),
        )


# ---------------------------------------------------------------- studies and replays


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpaceTags:
    """What a study's parent run and a replay share: the resolved search space they tune."""

    space: str
    space_source: str
    experiment: str  # the experiment's label (``mnist-cnn@standard``)
    objective: str  # the final metric tuned (``final_test_accuracy``)
    direction: str  # maximize | minimize
    params: tuple[str, ...]  # the space's parameter names, in its order
    fingerprint: str | None = None  # None: a study from before the tag (recompute it from resolved.yaml)

    def _space(self) -> dict[str, str | None]:
        return {
            "harness.space": self.space,
            "harness.space_source": self.space_source,
            "harness.experiment": self.experiment,
            "harness.objective": self.objective,
            "harness.direction": self.direction,
            "harness.params": ",".join(self.params),
            "harness.fingerprint": self.fingerprint,
        }

    @staticmethod
    def _read_space(r: _Reader) -> dict[str, Any]:
        direction = r.text("harness.direction")
        if direction not in ("maximize", "minimize"):
            raise r.fail("harness.direction", f"is {direction!r}, not maximize or minimize")
        return {
            "space": r.text("harness.space"),
            "space_source": r.text("harness.space_source"),
            "experiment": r.text("harness.experiment"),
            "objective": r.text("harness.objective"),
            "direction": direction,
            "params": r.names("harness.params"),
            "fingerprint": r.opt("harness.fingerprint"),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyRecord(SpaceTags):
    """The parent run of one Optuna study, as created (the budget, resumes and best trial come later:
    :class:`StudyBudget`, :class:`StudyResumed`, :class:`StudyBest`)."""

    KIND: ClassVar[str] = "study"
    study: str
    sampler: str
    pruner: str
    sampler_seed: int
    task: str | None = None  # None: a study from before tasks
    space_format: str | None = None
    param_keys: tuple[str, ...] | None = None  # each param's config key; None: older studies (= the names)
    objective_reference_scale: float | None = None  # None: older studies (the objective was not rescaled)
    command: str | None = None
    landscape: str | None = None  # how the design was made: set only on a landscape (record-landscape)
    space_notes: str | None = None
    scale_notes: str | None = None  # how --scale met the space file's fixed budget

    def to_tags(self) -> dict[str, str]:
        return _drop_none(
            {
                KIND_TAG: self.KIND,
                STUDY_TAG: self.study,
                **self._space(),
                "harness.space_format": self.space_format,
                TASK_TAG: self.task,
                "harness.objective_reference_scale": (
                    None if self.objective_reference_scale is None else str(self.objective_reference_scale)
                ),
                "harness.param_keys": None if self.param_keys is None else ",".join(self.param_keys),
                "harness.sampler": self.sampler,
                "harness.sampler_seed": str(self.sampler_seed),
                "harness.pruner": self.pruner,
                COMMAND_TAG: self.command,
                "harness.landscape": self.landscape,
                "harness.space_notes": None if self.space_notes is None else _cut(self.space_notes),
                "harness.scale_notes": None if self.scale_notes is None else _cut(self.scale_notes),
            }
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "study parent run") -> Self:
        r = _Reader(tags, where)
        r.kind(cls.KIND)
        return cls(
            **cls._read_space(r),
            study=r.text(STUDY_TAG),
            sampler=r.text("harness.sampler"),
            pruner=r.text("harness.pruner"),
            sampler_seed=r.number("harness.sampler_seed"),
            task=r.opt(TASK_TAG),
            space_format=r.opt("harness.space_format"),
            param_keys=r.names("harness.param_keys", required=False),
            objective_reference_scale=r.opt_float("harness.objective_reference_scale"),
            command=r.opt(COMMAND_TAG),
            landscape=r.opt("harness.landscape"),
            space_notes=r.opt("harness.space_notes"),
            scale_notes=r.opt("harness.scale_notes"),
        )

    @property
    def keys(self) -> tuple[str, ...]:
        """Each parameter's config key (a study from before ``param_keys``: its names, as then logged)."""
        return self.params if self.param_keys is None else self.param_keys


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyBudget:
    """A study's budget on its parent run, set at every start and resume (None: no limit)."""

    max_trials: int | None  # None only on a parent whose process stopped before writing it
    max_parallel: int | None = None
    max_failed: int | None = None

    def to_tags(self) -> dict[str, str]:
        return {
            "harness.max_trials": _none(self.max_trials),
            "harness.max_parallel": _none(self.max_parallel),
            "harness.max_failed": _none(self.max_failed),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "study parent run") -> Self:
        r = _Reader(tags, where)
        return cls(
            max_trials=r.opt_int("harness.max_trials"),
            max_parallel=r.opt_int("harness.max_parallel"),
            max_failed=r.opt_int("harness.max_failed"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyResumed:
    """How often a study's parent run was resumed, and the last command that did (absent: never)."""

    resumed: int = 0
    command: str | None = None

    def to_tags(self) -> dict[str, str]:
        return _drop_none({"harness.resumed": str(self.resumed), "harness.command.resume": self.command})

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "study parent run") -> Self:
        r = _Reader(tags, where)
        # the tag is first written at the first resume: absent is a count of 0, not a guess
        return cls(resumed=r.opt_int("harness.resumed") or 0, command=r.opt("harness.command.resume"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyBest:
    """The study's best trial so far and its values as the space writes them (after each worker)."""

    trial: int
    params: Mapping[str, Any]

    def to_tags(self) -> dict[str, str]:
        return {"harness.best_trial": str(self.trial), "harness.best_params": json.dumps(dict(self.params))}

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "study parent run") -> Self | None:
        """``None`` while no trial has completed."""
        r = _Reader(tags, where)
        if r.opt("harness.best_trial") is None:
            return None
        raw = r.opt("harness.best_params") or "{}"
        try:
            params = json.loads(raw)
        except json.JSONDecodeError:
            raise r.fail("harness.best_params", f"is {raw[:80]!r}, not JSON") from None
        return cls(trial=r.number("harness.best_trial"), params=params)


PLOT_NOTES_TAG = "harness.plot_notes"  # why a study's plots are missing (set after its last worker)
RETRY_OF_TAG = "harness.retry_of"  # a trial's column in a study's frame of child runs


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One trial of a study (a child of its parent run)."""

    KIND: ClassVar[str] = "trial"
    study: str
    space: str
    sampler: str
    worker: str  # host:pid of the worker that ran it
    retry_of: int | None = None  # the trial this one runs again (a failed one, or one whose worker died)

    def to_tags(self) -> dict[str, str]:
        return {
            KIND_TAG: self.KIND,
            STUDY_TAG: self.study,
            "harness.space": self.space,
            "harness.sampler": self.sampler,
            "harness.worker": self.worker,
            RETRY_OF_TAG: _none(self.retry_of),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "trial run") -> Self:
        r = _Reader(tags, where)
        r.kind(cls.KIND)
        return cls(
            study=r.text(STUDY_TAG),
            space=r.text("harness.space"),
            sampler=r.text("harness.sampler"),
            worker=r.text("harness.worker"),
            retry_of=r.opt_int(RETRY_OF_TAG),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplayRecord(SpaceTags):
    """One ``compare-samplers --replay``: samplers replayed on a recorded landscape (never a real trial)."""

    KIND: ClassVar[str] = "replay"
    landscape: str  # the landscape study's name
    landscape_run: str  # its parent run's id
    landscape_design: str  # how its points were chosen ("" where its parent does not say)
    command: str | None = None
    # the `bench hardware` run (and experiment) it was priced on: "" = the latest; None: not priced
    priced_on: str | None = None
    priced_experiment: str | None = None

    def to_tags(self) -> dict[str, str]:
        return _drop_none(
            {
                KIND_TAG: self.KIND,
                "harness.replay": "1",  # reports of real trials never read these runs
                **self._space(),
                "harness.landscape": self.landscape,
                "harness.landscape_run": self.landscape_run,
                "harness.landscape_design": self.landscape_design,
                COMMAND_TAG: self.command,
                "harness.priced_on": self.priced_on,
                "harness.priced_experiment": self.priced_experiment,
            }
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "replay run") -> Self:
        r = _Reader(tags, where)
        r.kind(cls.KIND)
        return cls(
            **{**cls._read_space(r), "fingerprint": r.text("harness.fingerprint")},  # replays always had it
            landscape=r.text("harness.landscape"),
            landscape_run=r.text("harness.landscape_run"),
            landscape_design=r.opt("harness.landscape_design") or "",
            command=r.opt(COMMAND_TAG),
            priced_on=r.opt("harness.priced_on"),
            priced_experiment=r.opt("harness.priced_experiment"),
        )

    @property
    def priced(self) -> bool:
        return self.priced_on is not None


# ---------------------------------------------------------------- benchmarks


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchHardwareRecord:
    """A ``harness bench hardware`` run: the parent, or one measurement under it (its ``bench.*`` tags
    are the bench's own, read by report/_hardware.py)."""

    KIND: ClassVar[str] = "bench-hardware"
    command: str | None = None  # the parent's; a measurement's is in its parent

    def to_tags(self) -> dict[str, str]:
        return _drop_none({KIND_TAG: self.KIND, COMMAND_TAG: self.command})

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any], where: str = "bench hardware run") -> Self:
        r = _Reader(tags, where)
        r.kind(cls.KIND)
        return cls(command=r.opt(COMMAND_TAG))
