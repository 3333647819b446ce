"""``harness compare-samplers SPACE --replay LANDSCAPE``: samplers against a recorded landscape, in seconds.

Each repeat is an Optuna study in memory, proposing exactly as a real study does (the same sampler
specs, per-trial seeds and start-up settings: ``SamplerSpec.for_trial``); each proposed point is
answered by the landscape (``_surrogate``): looked up where it was recorded, predicted elsewhere.
A replayed trial costs its recorded (or predicted) training time and that time's price, so time and
dollars to a target keep their meaning.

The replay is one MLflow run in ``replay/<space>`` (settings as params, the fidelity as metrics, every
repeat's curve as the artifact ``replay/curves.json``, its report under ``report/``), tagged
``harness.kind = replay``: no study or trial run is created, so no report can mix replayed and real
trials. The report is rebuilt from that run (``report/_replay.py``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.studies._compare import CompareRequest, plan_budget
from harness.studies._landscape import MIN_POINTS
from harness.studies._samplers import SamplerSpec
from harness.studies._space import ExperimentRef, ResolvedSpace, SearchSpace
from harness.studies._surrogate import Answer, Recorded, Surrogate, fidelity
from harness.tasks import Direction

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ReplayRequest:
    compare: CompareRequest  # space, samplers, repeats, budget, target, out_dir, the study template
    landscape: str  # the landscape study's name
    price_on: Any = None  # report.PriceOn: also price the replay on a `bench hardware` run's rows

    def __post_init__(self) -> None:
        if self.compare.backends:
            raise ValueError("a replay runs on the landscape's backend; --backends does not apply")


def _optuna_value(p: Any, text: str) -> Any:
    """A trial's ``tuned.<name>`` param (as the space writes it) -> the value Optuna saw."""
    if p.kind == "categorical":
        for choice in p.choices:
            if str(choice) == text:
                return choice
        raise UserError(f"landscape value {text!r} of {p.name} is not one of its choices {list(p.choices)}")
    value: float = float(text)
    if p.scale == "reverse_log":  # logged mirrored (as the config sees it); Optuna samples the mirror
        value = p.low + p.high - value
    return round(value) if p.kind == "int" else value


def load_landscape(tracker: Any, name: str, resolved: ResolvedSpace) -> tuple[Any, Recorded]:
    """The landscape's parent run and its completed trials; refuses one recorded for another space."""
    import numpy as np

    from harness.report import find_study_run, study_fingerprint, study_report
    from harness.tracking import StudyRecord

    parent = find_study_run(tracker, name)
    study = StudyRecord.from_tags(parent.data.tags, f"study {name!r}")
    if study.landscape is None:
        raise UserError(
            f"study {name!r} is not a landscape (recorded with `harness record-landscape`); "
            f"record one with `harness record-landscape {resolved.space.source}`"
        )
    recorded_for = study_fingerprint(tracker, parent)
    if recorded_for != resolved.fingerprint():
        raise UserError(
            f"landscape {name!r} was recorded for {study.space_source} "
            f"({study.experiment}, fingerprint {recorded_for}), not for "
            f"{resolved.space.source} with these settings ({resolved.experiment.label}, fingerprint "
            f"{resolved.fingerprint()}): replay it with the space file, --experiment, --scale and --set it was "
            f"recorded with, or record a landscape for this space"
        )
    table = study_report(tracker, name).table
    done = table[(table["state"] == "COMPLETE") & table["objective"].notna() & table["time_s"].notna()]
    if len(done) < MIN_POINTS:
        raise UserError(
            f"landscape {name!r} has {len(done)} completed trials; fitting its surrogate needs at least "
            f"{MIN_POINTS}: record more points (`harness record-landscape ... --points N`) or finish it"
        )
    params = resolved.space.params
    points = tuple({p.optuna_name: _optuna_value(p, str(row[p.name])) for p in params} for _, row in done.iterrows())
    recorded = Recorded(
        points,
        done["objective"].to_numpy(dtype=float),
        done["time_s"].to_numpy(dtype=float),
        done["cost_usd"].to_numpy(dtype=float),
    )
    if not np.isfinite(recorded.objective).all():
        raise UserError(f"landscape {name!r} has a non-finite objective among its completed trials")
    return parent, recorded


def replay_repeat(
    space: SearchSpace, spec: SamplerSpec, direction: Direction, budget: int, surrogate: Surrogate
) -> dict[str, Any]:
    """One replayed study: best-so-far, cumulative time and cost after each trial, every value."""
    import optuna

    study = optuna.create_study(direction=direction, sampler=spec.build(space, 0))
    better = max if direction == "maximize" else min
    best, clock, dollars = math.nan, 0.0, 0.0
    out: dict[str, Any] = {"best_so_far": [], "elapsed_s": [], "spent_usd": [], "values": [], "exact": 0}
    sampler = None
    answers: list[Answer] = []

    def objective(trial: Any) -> float:
        for p in space.params:
            p.suggest(trial)
        answers.append(surrogate(trial.params))
        return answers[-1].value

    for number in range(budget):
        # as a real worker does: this trial's sampler (per-trial seed), then one trial through optimize
        # (the grid sampler stops its study from inside optimize once every point is taken)
        sampler = study.sampler = spec.for_trial(space, number, sampler)
        study.optimize(objective, n_trials=1)
        answer = answers[-1]
        best = answer.value if math.isnan(best) else better(best, answer.value)
        clock += answer.time_s
        dollars += answer.cost_usd
        out["best_so_far"].append(best)
        out["elapsed_s"].append(clock)
        out["spent_usd"].append(dollars)
        out["values"].append(answer.value)
        out["exact"] += int(answer.exact)
    return out


def run_replay(request: ReplayRequest, progress: Progress = print) -> tuple[Path, ...]:
    """Replay every sampler ``repeats`` times, log the replay as one MLflow run, write its report."""
    import optuna

    from harness.report import REPLAY_ARTIFACT, replay_report, write_replay_report
    from harness.studies._formats import load_space
    from harness.tracking import ReplayRecord, StudyRecord, Tracker, environment_tags, replay_experiment

    c = request.compare
    base = c.study
    space = load_space(base.space_file)
    experiment = ExperimentRef.parse(base.experiment, "--experiment") if base.experiment else None
    resolved = space.resolve(experiment, base.scale, base.overrides)
    _, budget = plan_budget(c)
    specs = {name: SamplerSpec.for_space(name, 0, space, f"--samplers {name}") for name in c.samplers}
    tracker = Tracker(base.tracking_uri)
    parent, recorded = load_landscape(tracker, request.landscape, resolved)
    progress(
        f"replay {space.name} on landscape {request.landscape} ({len(recorded)} recorded trials): "
        f"{', '.join(c.samplers)} x {c.repeats} repeats, budget {budget} trials each"
    )
    fitted = time.perf_counter()
    surrogate = Surrogate(space, recorded)
    quality = fidelity(space, recorded)
    fit_s = time.perf_counter() - fitted
    progress(
        f"surrogate: random forest on {quality.n} trials; {quality.folds}-fold Kendall τ {quality.kendall_tau:.2f}, "
        f"R² {quality.r2:.2f} (objective); time τ {quality.time_kendall_tau:.2f}, R² {quality.time_r2:.2f}"
    )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started = time.perf_counter()
    repeats = []
    for name, spec in specs.items():
        t0 = time.perf_counter()
        for r in range(c.repeats):
            one = replay_repeat(space, dataclasses.replace(spec, seed=r), resolved.direction, budget, surrogate)
            repeats.append({"sampler": name, "repeat": r, **one})
        progress(f"  {name}: {c.repeats} repeats in {time.perf_counter() - t0:.1f} s")
    replay_s = time.perf_counter() - started
    priced = request.price_on  # `harness report replay RUN` prices it the same way again
    record = ReplayRecord(
        space=space.name,
        space_source=space.source,
        experiment=resolved.experiment.label,
        objective=resolved.objective.final_key,
        direction=resolved.direction,
        params=tuple(p.name for p in space.params),
        fingerprint=resolved.fingerprint(),
        landscape=request.landscape,
        landscape_run=parent.info.run_id,
        landscape_design=StudyRecord.from_tags(parent.data.tags).landscape or "",
        command=base.command,
        priced_on=None if priced is None else priced.bench_run or "",
        priced_experiment=None if priced is None else priced.experiment or "",
    )
    tags = {**environment_tags(), **record.to_tags()}
    with tracker.run(tracker.experiment_id(replay_experiment(space.name)), f"replay-{space.name}", tags) as run:
        run.log_params(
            {
                "samplers": ",".join(c.samplers),
                "repeats": c.repeats,
                "budget": budget,
                "target": "median" if c.target is None else c.target,
                "surrogate": "sklearn RandomForestRegressor (objective; log time), exact lookup where recorded",
                "surrogate.trees": 200,
                "fidelity.folds": quality.folds,
                "landscape.trials": len(recorded),
                "usd_per_s": surrogate.usd_per_s,
            }
        )
        run.log_metrics(
            0,
            {
                "fidelity_kendall_tau": quality.kendall_tau,
                "fidelity_kendall_p": quality.kendall_p,
                "fidelity_r2": quality.r2,
                "fidelity_time_kendall_tau": quality.time_kendall_tau,
                "fidelity_time_r2": quality.time_r2,
                "fidelity_worst_recorded": quality.worst_recorded,
                "fidelity_worst_predicted": quality.worst_predicted,
                "replay_wall_s": replay_s,
                "surrogate_fit_s": fit_s,
                "replayed_trials": float(len(repeats) * budget),
                "exact_lookups": float(sum(r["exact"] for r in repeats)),
            },
        )
        run.log_text(json.dumps({"repeats": repeats}), REPLAY_ARTIFACT)
        progress(f"replayed {len(repeats) * budget} trials in {replay_s:.1f} s; MLflow run {run.run_id}")
        report = replay_report(tracker, run.run_id, c.target, request.price_on)
        files = write_replay_report(report, c.out_dir, base.command)
    progress(f"wrote {', '.join(str(f) for f in files)}")
    return files
