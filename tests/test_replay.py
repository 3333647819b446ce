"""Landscapes and replay benchmarks: designs, the surrogate and its fidelity, replayed studies, the
comparison statistics on replayed curves, and (slow) record -> replay end to end on tiny MNIST."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import run_cli
from hypothesis import given
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

from harness.errors import UserError
from harness.report._compare import Curve, build_comparison, compare_findings, display_tests
from harness.report._pricing import DOLLARS, SECONDS, HardwareRow, hardware_verdicts, price_rows
from harness.studies import SamplerSpec, parse_space
from harness.studies._landscape import design, from_unit, to_unit
from harness.studies._replay import replay_repeat
from harness.studies._surrogate import Recorded, Surrogate, fidelity

CONTINUOUS = """\
name: cont
experiment: {ladder: mnist, rung: softmax, scale: smoke}
objective: {metric: accuracy}
budget: {max_trials: 4}
sampler_options: {tpe: {n_startup_trials: 2}}
params:
  lr0: {type: float, low: 1.0e-4, high: 0.1, log: true, grid: [0.001, 0.01]}
  batch_size: {type: int, low: 10, high: 200, grid: [20, 100]}
"""
DISCRETE = """\
name: disc
experiment: {ladder: mnist, rung: softmax, scale: smoke}
objective: {metric: accuracy}
budget: {max_trials: 4}
params:
  lr0: {type: categorical, choices: [0.001, 0.01, 0.1]}
  iterations: {type: int, low: 10, high: 30, step: 10}
"""


def _space(text: str, name: str = "space.yaml"):
    return parse_space(text, name)


def test_a_discrete_space_is_recorded_as_its_full_grid() -> None:
    space = _space(DISCRETE)
    d = design(space, points=64)
    assert len(d.points) == 9 and d.note == "full grid, 9 points"
    assert {p["iterations"] for p in d.points} == {10, 20, 30}
    assert len({tuple(sorted(p.items())) for p in d.points}) == 9


def test_a_continuous_space_gets_sobol_points_plus_its_grid() -> None:
    space = _space(CONTINUOUS)
    d = design(space, points=32, seed=3)
    assert d.note == "Sobol 32 (scrambled, seed 3) + grid 4"
    assert 32 <= len(d.points) <= 36
    for grid_point in ({"lr0": 0.001, "batch_size": 20}, {"lr0": 0.01, "batch_size": 100}):
        assert grid_point in d.points  # the grid sampler's proposals are recorded exactly
    lrs = np.log10([p["lr0"] for p in d.points])
    assert all(1e-4 <= p["lr0"] <= 0.1 and 10 <= p["batch_size"] <= 200 for p in d.points)
    assert all(isinstance(p["batch_size"], int) for p in d.points)
    # log scale: spread over the decades, not crowded at the top
    assert (lrs < -3).sum() >= 8 and (lrs > -2).sum() >= 8
    assert design(space, points=32, seed=3) == d  # seeded


def test_too_few_points_are_refused() -> None:
    from harness.errors import UserError

    with pytest.raises(UserError, match="--points must be between 8"):
        design(_space(CONTINUOUS), points=3)
    with pytest.raises(UserError, match=r"--points must be between 8 .* and 4096"):
        design(_space(CONTINUOUS), points=10**9)
    with pytest.raises(UserError, match="--seed must be >= 0, but got -1"):
        design(_space(CONTINUOUS), points=16, seed=-1)


@given(st.floats(min_value=0.0, max_value=0.999999))
def test_unit_positions_round_trip_on_the_sampling_scale(u: float) -> None:
    lr0, batch = _space(CONTINUOUS).params
    assert to_unit(lr0, from_unit(lr0, u)) == pytest.approx(u, abs=1e-9)
    assert abs(to_unit(batch, from_unit(batch, u)) - u) <= 0.5 / 190 + 1e-9  # an integer rounds


def _bowl(space, points: list[dict]) -> Recorded:
    """A smooth landscape: accuracy peaks at lr0 = 0.01, slightly better with more units."""
    y = np.array([0.99 - 0.02 * (math.log10(p["lr0"]) + 2) ** 2 + 1e-5 * p["batch_size"] for p in points])
    t = np.array([1.0 + p["batch_size"] / 100 for p in points])
    return Recorded(tuple(points), y, t, t * 1e-4)


def test_surrogate_looks_up_recorded_points_and_predicts_between_them() -> None:
    space = _space(CONTINUOUS)
    points = list(design(space, points=48).points)
    recorded = _bowl(space, points)
    s = Surrogate(space, recorded)
    exact = s(points[0])
    assert exact.exact and exact.value == recorded.objective[0] and exact.time_s == recorded.time_s[0]
    assert exact.cost_usd == pytest.approx(recorded.cost_usd[0])
    near_peak, far = s({"lr0": 0.0101, "batch_size": 150}), s({"lr0": 0.00011, "batch_size": 150})
    assert not near_peak.exact and near_peak.value > far.value
    assert recorded.objective.min() <= far.value <= recorded.objective.max()  # a forest never extrapolates
    assert near_peak.cost_usd == pytest.approx(near_peak.time_s * 1e-4)


@pytest.mark.slow
def test_fidelity_is_high_on_a_smooth_landscape_and_near_zero_on_noise() -> None:
    space = _space(CONTINUOUS)
    points = list(design(space, points=64).points)
    smooth = fidelity(space, _bowl(space, points))
    assert smooth.kendall_tau > 0.7 and smooth.r2 > 0.7 and smooth.folds == 5 and smooth.n == len(points)
    rng = np.random.default_rng(0)
    noise = Recorded(tuple(points), rng.normal(size=len(points)), np.ones(len(points)), np.ones(len(points)))
    assert abs(fidelity(space, noise).kendall_tau) < 0.3


def test_a_replayed_grid_study_sees_every_grid_point_once_and_others_propose_by_seed() -> None:
    space = _space(CONTINUOUS)
    points = list(design(space, points=32).points)
    s = Surrogate(space, _bowl(space, points))
    grid = replay_repeat(space, SamplerSpec("grid", 0), "maximize", 4, s)
    assert grid["exact"] == 4 and sorted(grid["values"]) == sorted(s(p).value for p in design(space, 32).points[:4])
    assert grid["best_so_far"] == list(np.maximum.accumulate(grid["values"]))
    steps = np.diff([0.0, *grid["elapsed_s"]])  # each trial costs its recorded time: 1 + batch_size / 100
    assert sorted(steps) == pytest.approx([1.2, 1.2, 2.0, 2.0])
    tpe = SamplerSpec.for_space("tpe", 1, space)
    assert replay_repeat(space, tpe, "maximize", 4, s) == replay_repeat(space, tpe, "maximize", 4, s)
    random = SamplerSpec.for_space("random", 1, space)
    # common random numbers: TPE's start-up trials are the random sampler's first trials of the same seed
    assert (
        replay_repeat(space, tpe, "maximize", 2, s)["values"]
        == replay_repeat(space, random, "maximize", 2, s)["values"]
    )


def _curves(sampler: str, values: list[list[float]]) -> list[Curve]:
    out = []
    for r, vals in enumerate(values):
        best = list(np.maximum.accumulate(vals))
        times = list(np.cumsum(np.ones(len(vals))))
        out.append(Curve(sampler, r, f"{sampler}-r{r}", best, times, float(len(vals)), vals, times))
    return out


def _meta(samplers: list[str]) -> dict:
    return {
        "kind": "replay",
        "space": "s",
        "space_source": "s.yaml",
        "experiment": "x",
        "objective": "final_test_accuracy",
        "samplers": samplers,
        "backends": [],
        "repeats": 10,
        "params": "lr0",
        "parent_run_id": "",
        "parent_study": "",
    }


def test_two_samplers_with_identical_results_are_reported_as_no_significant_difference() -> None:
    rng = np.random.default_rng(0)
    values = [list(rng.uniform(0.9, 0.99, size=6)) for _ in range(10)]
    curves = _curves("random", values) + _curves("tpe", values)
    report = build_comparison(curves, "maximize", 6, None, _meta(["random", "tpe"]))
    assert set(report.tests["verdict"]) == {"no significant difference"}
    findings = compare_findings(report)
    assert any("No sampler is significantly better than another on best objective" in f for f in findings)
    assert not any("Best on" in f for f in findings)
    shown = display_tests(report)
    assert set(shown["verdict"]) == {"no significant difference"}
    assert set(shown["repeats to detect"]) == {"n/a (no effect observed)"}
    s = report.summary.set_index("sampler")
    assert s.loc["random", "best_ci_low"] <= s.loc["random", "best_mean"] <= s.loc["random", "best_ci_high"]


def test_a_sampler_that_never_reaches_the_target_is_censored_and_loses() -> None:
    good = [[0.5, 0.95, 0.96]] * 10
    bad = [[0.5, 0.6, 0.7 + 0.001 * r] for r in range(10)]
    report = build_comparison(_curves("a", good) + _curves("b", bad), "maximize", 3, 0.9, _meta(["a", "b"]))
    s = report.summary.set_index("sampler")
    assert s.loc["a", "reached"] == 10 and s.loc["a", "trials_to_target_median"] == 2
    assert s.loc["b", "reached"] == 0 and math.isinf(s.loc["b", "trials_to_target_median"])
    assert s.loc["b", "trials_to_target_restricted_mean"] == 3  # censored at the budget: a lower bound
    t = report.tests.set_index("measure")
    assert t.loc["trials to target", "test"] == "sign" and t.loc["trials to target", "verdict"] == "better"
    assert t.loc["best objective", "verdict"] == "better"
    assert any("Best on best objective: **a**" in f for f in compare_findings(report))


def _row(backend: str, rates: list[float], price: float, batch: str = "100") -> HardwareRow:
    return HardwareRow(backend, f"{backend} device", batch, "float32", price, tuple(rates))


def test_a_replay_priced_on_a_row_twice_as_fast_takes_half_the_time_and_the_cost_its_price_says() -> None:
    # every repeat reaches the target at trial 2 (time 2 s) of 3 (3 s): times scale by the throughput ratio
    curves = _curves("a", [[0.5, 0.95, 0.96]] * 10)
    report = build_comparison(curves, "maximize", 3, 0.9, _meta(["a"]))
    home = _row("cpu", [100.0] * 5, 3600.0)  # $1 a second
    fast = _row("gpu", [200.0] * 5, 7200.0)  # twice as fast, twice the price: the same dollars
    pricing = price_rows(report, "bench1", "mnist-bn", [home, fast], "cpu")
    t = pricing.table.set_index("hardware")
    assert t.loc[home.label, "time to target (s, KM median [95% CI])"].startswith("2.0 [")
    assert t.loc[fast.label, "time to target (s, KM median [95% CI])"].startswith("1.0 [")
    assert t.loc[home.label, "$ to target (KM median [95% CI])"].startswith("2.00000")
    assert t.loc[fast.label, "$ to target (KM median [95% CI])"].startswith("2.00000")
    assert t.loc[fast.label, "time vs cpu, median [min, max]"] == "0.5 [0.5, 0.5]"
    assert set(pricing.tests) == {SECONDS, DOLLARS}
    # constant repetitions: faster in time (5 vs 5 separate, every value apart), the same in dollars
    (seconds,) = pricing.tests[SECONDS]
    assert seconds.test == "mann-whitney" and seconds.significant and seconds.n_a == 5
    (dollars,) = pricing.tests[DOLLARS]
    assert not dollars.significant
    assert any(f"**{fast.label}** is significantly the fastest" in n for n in pricing.notes)
    assert any("By cost to the target: within noise" in n for n in pricing.notes)
    assert len(hardware_verdicts(pricing)) == 2


def test_pricing_carries_the_benchs_repetition_noise_and_needs_a_row_on_the_landscapes_backend() -> None:
    curves = _curves("a", [[0.5, 0.95, 0.96]] * 40)
    report = build_comparison(curves, "maximize", 3, 0.9, _meta(["a"]))
    home = _row("cpu", [80.0, 100.0, 120.0], math.nan)
    pricing = price_rows(report, "bench1", "mnist-bn", [home], "cpu")
    (row,) = pricing.table.to_dict("records")
    low, high = row["time vs cpu, median [min, max]"].split("[")[1].rstrip("]").split(", ")
    assert float(low) < 1 < float(high)  # repetitions of one row drawn against each other
    assert row["$ to target (KM median [95% CI])"] == "unknown" and pricing.tests == {}
    assert any("One row measured" in n for n in pricing.notes)
    with pytest.raises(UserError, match="but not on cpu, the backend the landscape was recorded on"):
        price_rows(report, "bench1", "mnist-bn", [_row("gpu", [1.0, 2.0], 1.0)], "cpu")


# --- end to end: record a landscape on tiny MNIST, replay it -------------------------------------------

TINY = {
    "iterations": 20,
    "eval_every": 10,
    "steps_per_execution": 10,
    "train_subset": 600,
    "test_subset": 200,
    "eval_batch_size": 200,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("replay")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        mp.setenv("HARNESS_DATA_DIR", str(tiny_data_dir))
        yield SimpleNamespace(root=root, client=MlflowClient(f"sqlite:///{root / 'mlflow.db'}"))


def _file(root: Path, name: str, text: str) -> Path:
    fixed = json.dumps(TINY)
    path = root / name
    path.write_text(text.replace("objective:", f"fixed: {fixed}\nobjective:", 1), encoding="utf-8")
    return path


def _replay_runs(store: SimpleNamespace, space: str) -> list:
    exp = store.client.get_experiment_by_name(f"replay/{space}")
    return [] if exp is None else store.client.search_runs([exp.experiment_id])


@pytest.mark.slow
def test_record_a_landscape_and_replay_samplers_against_it(store: SimpleNamespace) -> None:
    space = _file(store.root, "cont.yaml", CONTINUOUS)
    rc, out = run_cli("record-landscape", str(space), "--points", "8")
    assert rc == 0, out
    assert "landscape cont-landscape: Sobol 8 (scrambled, seed 0) + grid 4" in out
    exp = store.client.get_experiment_by_name("study/cont")
    runs = store.client.search_runs([exp.experiment_id], "tags.`harness.study` = 'cont-landscape'")
    parent = next(r for r in runs if r.data.tags["harness.kind"] == "study")
    trials = [r for r in runs if r.data.tags.get("harness.kind") == "trial"]
    assert parent.data.tags["harness.landscape"].startswith("Sobol 8") and len(trials) == 12
    assert all(r.info.status == "FINISHED" and "trial_wall_s" in r.data.metrics for r in trials)
    assert {r.data.params["run.seed"] for r in trials} == {"0"}  # one fixed training seed

    rc, out = run_cli("compare-samplers", str(space), "--replay", "cont-landscape", "--repeats", "12")
    assert rc == 0, out
    assert "replay cont on landscape cont-landscape (12 recorded trials): grid, random, tpe x 12 repeats" in out
    replays = _replay_runs(store, "cont")
    assert len(replays) == 1 and replays[0].data.tags["harness.kind"] == "replay"
    run = replays[0]
    assert run.info.status == "FINISHED" and "fidelity_kendall_tau" in run.data.metrics
    assert run.data.metrics["replayed_trials"] == 3 * 12 * 4
    assert run.data.tags["harness.fingerprint"] == parent.data.tags["harness.fingerprint"]
    artifacts = {a.path for a in store.client.list_artifacts(run.info.run_id, "replay")}
    assert artifacts == {"replay/curves.json"}
    # no study or trial run was made by the replay: the study experiment holds the landscape's only
    assert len(store.client.search_runs([exp.experiment_id])) == 13
    md = (store.root / "results" / "replay_cont.md").read_text()
    assert "# Replayed sampler comparison: `cont`" in md and "## Fidelity" in md and "Kendall τ (held out)" in md
    assert "## Pairwise tests" in md and "No real comparison of this space" in md
    assert (store.root / "results" / "replay_cont.html").exists()

    # priced on a bench's rows: the same replay run, report rebuilt with samplers x hardware
    rc, out = run_cli(
        "bench", "hardware", "--quick", "--experiments", "mnist-bn", "--backends", "cpu",
        "--batch-sizes", "32,64", "--repeats", "2", "--out", "bench",
    )  # fmt: skip
    assert rc == 0, out
    rc, out = run_cli("report", "replay", run.info.run_id, "--hardware", "--out", "priced")
    assert rc == 0, out
    priced = (store.root / "priced" / "replay_cont.md").read_text()
    assert "## On every backend of the bench (mnist-bn)" in priced and "## Backends compared" in priced
    assert "| grid      | cpu, batch 32, float32" in priced and "| tpe       | cpu, batch 64, float32" in priced
    # quick mode measures each row once: no ordering claim between rows
    assert "By time to the target: not testable (needs at least 2 repeats on each side, has 1 and 1)" in priced
    rc, out = run_cli("report", "replay", run.info.run_id, "--hardware", "--hardware-experiment", "resnet50")
    assert rc == 2 and "--hardware-experiment 'resnet50': bench hardware run" in out and "Traceback" not in out
    rc, out = run_cli("compare-samplers", str(space), "--hardware", "--repeats", "3")
    assert rc == 2 and "--hardware prices a replay" in out

    # bad input: exit 2, one line, no replay run written
    other = _file(store.root, "other.yaml", CONTINUOUS.replace("high: 200", "high: 300"))
    rc, out = run_cli("compare-samplers", str(other), "--replay", "cont-landscape", "--repeats", "5")
    assert rc == 2 and "landscape 'cont-landscape' was recorded for" in out and "Traceback" not in out
    rc, out = run_cli("compare-samplers", str(space), "--replay", "cont-landscape", "--repeats", "0")
    assert rc == 2 and "--repeats must be >= 1, but got 0" in out
    rc, out = run_cli("compare-samplers", str(space), "--replay", "nope", "--repeats", "5")
    assert rc == 2 and "no study 'nope'" in out
    small = _file(
        store.root,
        "small.yaml",
        textwrap.dedent("""\
        name: small
        experiment: {ladder: mnist, rung: softmax, scale: smoke}
        objective: {metric: accuracy}
        budget: {max_trials: 3}
        params:
          lr0: {type: categorical, choices: [0.001, 0.01, 0.1]}
        """),
    )
    rc, out = run_cli("record-landscape", str(small))
    assert rc == 0 and "full grid, 3 points" in out, out
    rc, out = run_cli("compare-samplers", str(small), "--replay", "small-landscape", "--samplers", "grid,random")
    assert rc == 2 and "has 3 completed trials; fitting its surrogate needs at least 8" in out
    rc, out = run_cli("compare-samplers", str(small), "--replay", "cont-landscape", "--samplers", "random")
    assert rc == 2 and "was recorded for" in out
    assert len(_replay_runs(store, "cont")) == 1 and _replay_runs(store, "small") == []
