"""Section (f): a replay benchmark's cost, 200 repeats x 3 samplers on a recorded landscape (target < 60 s).

The landscape is the one in the tracking store named after ``replay_space.yaml`` beside this module
(``mnist-cnn-landscape``, recorded by ``harness record-landscape search_spaces/mnist_cnn.yaml ...``): its
space file and settings come back from its parent run, its trials from its child runs. Quick mode (and a
store without it) times the same work on a synthetic landscape of the same size over the same space, and
says so: the cost is the samplers' and the surrogate's, whatever the recorded values are.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.studies import (
    ExperimentRef,
    Recorded,
    ResolvedSpace,
    SamplerSpec,
    Surrogate,
    design,
    fidelity,
    load_landscape,
    replay_repeat,
)

SAMPLERS = ("grid", "random", "tpe")
TARGET_S = 60.0
# the replayed space is data (it names its experiment): replay_space.yaml beside this module; its landscape
# is the study `harness record-landscape` names after it by default
SPACE_FILE = "replay_space.yaml"


def _space_text() -> str:
    return resources.files("harness.bench").joinpath(SPACE_FILE).read_text(encoding="utf-8")


def landscape_name() -> str:
    """``<space name>-landscape``: the landscape section (f) replays when the store has it."""
    from harness.studies import parse_space

    return f"{parse_space(_space_text(), f'harness/bench/{SPACE_FILE}').name}-landscape"


def _recorded(tracker: Any, name: str) -> tuple[ResolvedSpace, Recorded] | None:
    """The landscape ``name`` from the store, with its space resolved as it was recorded; None if absent."""
    import yaml

    from harness.report import find_study_run
    from harness.studies import load_space

    try:
        parent = find_study_run(tracker, name)
    except UserError:
        return None
    run_id = parent.info.run_id
    source = Path(parent.data.tags.get("harness.space_source", "space.yaml")).name
    with tempfile.TemporaryDirectory() as tmp:
        space_file = tracker.client.download_artifacts(run_id, f"search_space/{source}", tmp)
        resolved_file = tracker.client.download_artifacts(run_id, "search_space/resolved.yaml", tmp)
        described = yaml.safe_load(Path(resolved_file).read_text(encoding="utf-8"))
        space = load_space(space_file)
    ladder_rung, _, scale = str(described["experiment"]).partition("@")
    experiment = ExperimentRef.parse(ladder_rung, "the landscape's experiment") if ":" in ladder_rung else None
    resolved = space.resolve(experiment, scale or None, described.get("overrides") or {})
    return resolved, load_landscape(tracker, name, resolved)[1]


def _synthetic() -> tuple[ResolvedSpace, Recorded]:
    from harness.studies import parse_space

    space = parse_space(_space_text(), f"harness/bench/{SPACE_FILE}")
    points = list(design(space, points=64).points)
    lr, dropout, dense = (np.array([float(p[k]) for p in points]) for k in ("lr0", "dropout", "dense"))  # type: ignore[arg-type]
    y = 0.99 - 0.01 * (np.log10(lr) + 2.2) ** 2 - 0.01 * dropout**2
    t = 6.0 + dense / 100
    return space.resolve(), Recorded(tuple(points), y, t, t * 2.7e-5)


def measure_replay(quick: bool, progress: Callable[[str], None], tracking_uri: str | None = None) -> dict[str, Any]:
    import optuna

    from harness.tracking import Tracker

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    landscape = landscape_name()
    found = None if quick else _recorded(Tracker(tracking_uri), landscape)
    resolved, recorded = found if found is not None else _synthetic()
    source = f"recorded landscape `{landscape}`" if found is not None else "synthetic landscape (same space)"
    space = resolved.space
    repeats = 20 if quick else 200
    budget = space.grid_size()
    progress(f"(f) replay: {source}, {len(recorded)} points; {', '.join(SAMPLERS)} x {repeats} repeats of {budget}")
    started = time.perf_counter()
    surrogate = Surrogate(space, recorded)
    quality = fidelity(space, recorded)
    fit_s = time.perf_counter() - started
    per_sampler = {}
    for name in SAMPLERS:
        spec = SamplerSpec.for_space(name, 0, space)
        t = time.perf_counter()
        for r in range(repeats):
            replay_repeat(space, SamplerSpec(spec.name, r, spec.options), resolved.direction, budget, surrogate)
        per_sampler[name] = time.perf_counter() - t
    total = time.perf_counter() - started
    trials = len(SAMPLERS) * repeats * budget
    progress(f"(f) replay: {trials:,} trials in {total:.1f} s (fit and fidelity {fit_s:.1f} s)")
    return {
        "landscape": source,
        "points": len(recorded),
        "samplers": list(SAMPLERS),
        "repeats": repeats,
        "budget": budget,
        "trials": trials,
        "fit_s": fit_s,
        "per_sampler_s": per_sampler,
        "total_s": total,
        "ms_per_trial": 1000 * (total - fit_s) / trials,
        "target_s": TARGET_S,
        "meets_target": total < TARGET_S,
        "fidelity_kendall_tau": quality.kendall_tau,
        "fidelity_r2": quality.r2,
    }


def render_replay(s: dict[str, Any]) -> list[str]:
    """Markdown of section (f) for bench.md."""
    each = ", ".join(f"{k} {v:.1f} s" for k, v in s["per_sampler_s"].items())
    verdict = "meets" if s["meets_target"] else "misses"
    return [
        f"## (f) Replay benchmark — {len(s['samplers'])} samplers x {s['repeats']} repeats on a landscape",
        "",
        f"On the {s['landscape']} ({s['points']} points): fit the surrogate (two random forests) and measure its "
        f"5-fold fidelity, then replay {', '.join(s['samplers'])} {s['repeats']} times each with a budget of "
        f"{s['budget']} trials, as `harness compare-samplers SPACE --replay LANDSCAPE` does (without its MLflow run "
        "and report).",
        "",
        "| trials replayed | fit + fidelity (s) | per sampler | total (s) | ms per trial | target |",
        "|---:|---:|---|---:|---:|---|",
        f"| {s['trials']:,} | {s['fit_s']:.1f} | {each} | {s['total_s']:.1f} | {s['ms_per_trial']:.2f} "
        f"| < {s['target_s']:.0f} s: {verdict} |",
        "",
        f"Fidelity on held-out recorded points: Kendall τ {s['fidelity_kendall_tau']:.2f}, R² {s['fidelity_r2']:.2f}.",
        "",
    ]
