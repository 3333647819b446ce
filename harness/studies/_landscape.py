"""``harness record-landscape SPACE``: real trials at the points of a design, for replay benchmarks.

A landscape is an ordinary study (``<space>-landscape``): every design point is queued in Optuna
(``enqueue_trial``) when the study is created and run as a normal tracked trial (one MLflow child run
each, with its time, backend and cost) under one fixed training seed. The design:

- the full grid where the space is discrete (every parameter categorical, an integer range or a
  stepped float) and small enough (at most ``MAX_FULL_GRID`` points): a replay then looks up every
  point any sampler can propose;
- otherwise a scrambled Sobol sequence (scipy.stats.qmc) of ``--points`` points over the sampling
  scale of each parameter (log where the space says log), plus the space's own grid points where it
  lists them, so that the grid sampler's proposals are recorded exactly.

``compare-samplers SPACE --replay NAME`` then replays samplers against it (``_replay``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

from harness.errors import UserError
from harness.studies._formats import load_space
from harness.studies._request import StudyRequest, check_study
from harness.studies._space import OptunaValue, ParamSpec, SearchSpace

MAX_FULL_GRID = 512  # a discrete space up to this size is recorded whole
DEFAULT_POINTS = 64
MIN_POINTS = 8  # fewer cannot fit a surrogate or be cross-validated
MAX_POINTS = 4096  # each point is a real training run

Progress = Callable[[str], None]


def landscape_name(space: str) -> str:
    return f"{space}-landscape"


def is_discrete(p: ParamSpec) -> bool:
    """Every value a sampler can propose is a grid point (no continuous range)."""
    if p.kind == "categorical":
        return True
    if p.grid is not None:  # grid points listed beside a continuous range: random and TPE sample the range
        return False
    return p.kind == "int" or p.step is not None


@dataclasses.dataclass(frozen=True)
class Design:
    points: tuple[dict[str, OptunaValue], ...]  # Optuna names -> Optuna values
    note: str  # e.g. "full grid, 12 points" or "Sobol 64 (seed 0) + grid 12"


def design(space: SearchSpace, points: int = DEFAULT_POINTS, seed: int = 0) -> Design:
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise UserError(
            f"--points must be between {MIN_POINTS} (a surrogate needs them) and {MAX_POINTS} (each is a training "
            f"run), but got {points}"
        )
    if seed < 0:
        raise UserError(f"--seed must be >= 0, but got {seed}")
    if all(is_discrete(p) for p in space.params) and space.grid_size() <= MAX_FULL_GRID:
        grid = _grid_points(space)
        return Design(tuple(grid), f"full grid, {len(grid)} points")
    sobol = _sobol(space, points, seed)
    grid = []
    if all(p.kind == "categorical" or p.grid is not None for p in space.params) and space.grid_size() <= points:
        grid = _grid_points(space)
    unique: dict[tuple[Any, ...], dict[str, OptunaValue]] = {}
    for point in [*grid, *sobol]:
        unique.setdefault(tuple(point.items()), point)
    note = f"Sobol {len(sobol)} (scrambled, seed {seed})" + (f" + grid {len(grid)}" if grid else "")
    return Design(tuple(unique.values()), note)


def _grid_points(space: SearchSpace) -> list[dict[str, OptunaValue]]:
    import itertools

    grid = space.grid()
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def _sobol(space: SearchSpace, n: int, seed: int) -> list[dict[str, OptunaValue]]:
    from scipy.stats import qmc

    sampler = qmc.Sobol(d=len(space.params), scramble=True, rng=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "balance properties" when n is not a power of 2: n is the user's
        unit = sampler.random(n)
    return [{p.optuna_name: from_unit(p, float(u)) for p, u in zip(space.params, row, strict=True)} for row in unit]


def from_unit(p: ParamSpec, u: float) -> OptunaValue:
    """A point of [0, 1) -> the parameter's Optuna value, uniform on its sampling scale."""
    if p.kind == "categorical":
        return p.choices[min(int(u * len(p.choices)), len(p.choices) - 1)]
    assert p.low is not None and p.high is not None
    lo, hi = float(p.low), float(p.high)
    # log and reverse_log: Optuna samples both log-uniformly on [low, high]
    log = p.scale != "linear"
    value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if log else lo + u * (hi - lo)
    if p.kind == "int":
        step = int(p.step or 1)
        return int(min(int(hi), max(int(lo), int(lo) + round((value - lo) / step) * step)))
    if p.step is not None:
        value = lo + round((value - lo) / p.step) * p.step
    return float(min(hi, max(lo, value)))


def to_unit(p: ParamSpec, value: Any) -> float:
    """The inverse of :func:`from_unit` (the surrogate's features): categorical -> its index scaled to [0, 1]."""
    if p.kind == "categorical":
        labels = [str(c) for c in p.choices]
        return labels.index(str(value)) / max(1, len(labels) - 1)
    assert p.low is not None and p.high is not None
    lo, hi, v = float(p.low), float(p.high), float(value)
    if hi == lo:
        return 0.0
    if p.scale != "linear":
        return (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (v - lo) / (hi - lo)


def landscape_request(
    base: StudyRequest, space: SearchSpace, points: int, seed: int, name: str | None
) -> tuple[StudyRequest, Design]:
    """The study that records the landscape: the design queued, one trial per point, no pruning."""
    d = design(space, points, seed)
    request = dataclasses.replace(
        _landscape_study(base, space, seed, name), trials=len(d.points), design=d.points, design_note=d.note
    )
    return request, d


def _landscape_study(base: StudyRequest, space: SearchSpace, seed: int, name: str | None) -> StudyRequest:
    return dataclasses.replace(
        base,
        sampler="random",  # never consulted: every trial is a queued point
        seed=seed,
        pruner="none",
        name=name or landscape_name(space.name),
    )


def plan_landscape(base: StudyRequest, points: int, seed: int, name: str | None) -> StudyRequest:
    """The landscape's study, checked (``check_study``) before MLflow, Optuna's storage or TensorFlow load."""
    space = load_space(base.space_file)
    check_study(_landscape_study(base, space, seed, name))  # before the design: Sobol's scipy.stats takes a second
    request, _ = landscape_request(base, space, points, seed, name)
    return request


def record_landscape(request: StudyRequest, progress: Progress = print) -> Any:
    """Run the study of ``plan_landscape``: one tracked trial per queued point."""
    from harness.studies._study import run_study

    progress(f"landscape {request.name}: {request.design_note}; one tracked trial per point, training seed fixed")
    return run_study(request, progress)
