"""``harness compare-samplers``: the same budget of full-fidelity trials for each sampler, R seeds each,
on one backend or, with ``--backends cpu,gpu``, on each (studies ``...-r<seed>-<backend>``).

Each (sampler, seed) pair is its own study, ``<space>-cmp-<sampler>-r<seed>``, in
the same storage and tracking store, without pruning, so a sampler is judged on
the trials it chose, not on early stopping. The default budget is the size of the
grid: grid search sees every point once, and the other samplers get as many
trials. Running the command again resumes unfinished studies and rebuilds the
report. The numbers come back from the tracking store (``harness.report._study``).
MLflow and the study runner are imported in ``run_compare`` only: the CLI checks a request
(``plan_budget``) before they load.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import RunFailed, UserError
from harness.studies._formats import load_space
from harness.studies._request import StudyRequest
from harness.studies._samplers import SamplerSpec
from harness.studies._space import SAMPLERS, ExperimentRef

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class CompareRequest:
    """``study`` is the template of every study (space, experiment, storage, ...); sampler, seed,
    pruner, budget and name are set per (sampler, seed)."""

    study: StudyRequest
    samplers: tuple[str, ...] = ("grid", "random", "tpe")
    repeats: int = 5
    budget: int | None = None  # default: the grid's size
    target: float | None = None  # default: median of the studies' best values
    out_dir: Path = Path("results")
    backends: tuple[str, ...] = ()  # --backends: the whole comparison once per backend; () = the space's own

    def __post_init__(self) -> None:  # the command line's checks too: messages name its options
        if self.repeats < 1:
            raise UserError(f"--repeats must be >= 1, but got {self.repeats}")
        if not self.samplers:
            raise UserError(f"--samplers needs at least one sampler, but got {self.samplers}")
        if self.study.parallel < 1:
            raise UserError(f"--parallel must be >= 1 for compare-samplers, but got {self.study.parallel}")


def parse_samplers(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SAMPLERS]
    if unknown or not names:
        raise UserError(f"--samplers expects a comma list of {', '.join(SAMPLERS)}, but got {text!r}")
    if len(set(names)) != len(names):
        raise UserError(f"--samplers lists a sampler twice: {text!r}")
    return names


def plan_budget(request: CompareRequest) -> tuple[str, int]:
    """(space name, budget): checks every sampler against the space before anything runs."""
    base = request.study
    space = load_space(base.space_file)
    experiment = ExperimentRef.parse(base.experiment, "--experiment") if base.experiment else None
    for backend in request.backends or (None,):
        extra = {} if backend is None else {"backend": backend}
        space.resolve(experiment, base.scale, {**base.overrides, **extra})
    for name in request.samplers:
        SamplerSpec.for_space(name, 0, space, f"--samplers {name}")
    if request.budget is None:
        try:
            budget = space.grid_size()
        except UserError as exc:
            raise UserError(f"{exc}; or give --budget N (the default budget is the grid's size)") from None
    else:
        budget = request.budget
        if budget < 1:
            raise UserError(f"--budget must be >= 1, but got {budget}")
        if "grid" in request.samplers and budget > space.grid_size():
            raise UserError(
                f"--budget {budget} is more than the grid's {space.grid_size()} points; the grid sampler "
                "would repeat points. Lower --budget or drop grid from --samplers"
            )
    return space.name, budget


def run_compare(
    request: CompareRequest, progress: Progress = print, runner: Any = None
) -> tuple[Path, Path, Path, Path]:
    """Run (or resume) every study of the comparison, then write the report; returns its files."""
    from harness.report import compare_report, compare_study_name, display_compare, write_compare_report
    from harness.studies._objective import TrainingRunner
    from harness.studies._study import run_study
    from harness.tracking import Tracker

    space_name, budget = plan_budget(request)
    base = request.study
    if request.backends:  # a backend this machine lacks fails here, before any study exists
        from harness.hardware import make_strategy

        for backend in request.backends:
            make_strategy(backend)
    progress(
        f"compare-samplers {space_name}: {', '.join(request.samplers)} x {request.repeats} seeds, "
        f"budget {budget} trials each, no pruning"
    )
    if base.parallel == 1 and runner is None:
        runner = TrainingRunner(Tracker(base.tracking_uri), base.data_dir, base.prices)
    total = len(request.backends or ("",)) * len(request.samplers) * request.repeats
    started, j = time.monotonic(), 0
    for backend in request.backends or ("",):
        overrides = {**base.overrides, "backend": backend} if backend else base.overrides
        for name in request.samplers:
            for repeat in range(request.repeats):
                study = compare_study_name(space_name, name, repeat, backend)
                label = f"study {j + 1}/{total} ({name}, repeat {repeat}" + (f", {backend})" if backend else ")")
                elapsed = time.monotonic() - started
                eta = f"  {elapsed:.0f} s, about {elapsed / j * (total - j):.0f} s left" if j else ""
                progress(f"--- {label}: {study}{eta}")
                j += 1
                study_request = dataclasses.replace(
                    base, sampler=name, seed=repeat, pruner="none", trials=budget, name=study, overrides=overrides
                )
                try:
                    run_study(study_request, progress, runner=runner, label=label)
                except RunFailed as exc:  # one study stopped (max_failed): the others still count
                    progress(f"{study}: {exc}")
    tracker = Tracker(base.tracking_uri)
    report = compare_report(
        tracker, space_name, request.samplers, request.repeats, budget, request.target, request.backends
    )
    progress(display_compare(report).to_string(index=False))
    files = write_compare_report(report, request.out_dir, base.command)
    progress(f"wrote {', '.join(str(f) for f in files)}")
    return files
