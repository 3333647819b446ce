"""A replay benchmark's report, rebuilt from its MLflow run: the sampler comparison (the same tables,
tests and curves as a real one), the surrogate's fidelity, and the replay's ranking beside the real
comparison's where the store holds one for the same space and settings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.report import _core
from harness.report._compare import (
    CompareReport,
    Curve,
    build_comparison,
    compare_report,
    write_compare_report,
)
from harness.report._document import Section
from harness.report._pricing import PriceOn, Pricing, hardware_verdicts, price_replay
from harness.report._study import _obj, study_fingerprint, study_record, study_report
from harness.tracking import (
    KIND_TAG,
    STUDY_TAG,
    ReplayRecord,
    StudyBudget,
    StudyRecord,
    Tracker,
    kind_filter,
    kind_of,
    study_experiment,
    tag_filter,
)

REPLAY_ARTIFACT = "replay/curves.json"  # where a replay run keeps every repeat's curve (studies/_replay.py)
GOOD_TAU = 0.7  # the surrogate orders held-out recorded points mostly as the real runs did
GOOD_R2 = 0.5


@dataclasses.dataclass
class ReplayReport:
    comparison: CompareReport
    fidelity: dict[str, float]
    timing: dict[str, float]
    real: CompareReport | None  # the real comparison of the same space and settings, if the store has one
    pricing: Pricing | None = None  # the replay priced on every row of a `bench hardware` run


def replay_report(
    tracker: Tracker, run_id: str, target: float | None = None, price_on: PriceOn | None = None
) -> ReplayReport:
    """``price_on``: price the replay on a bench's hardware (default: the bench it was priced on, if any)."""
    try:
        run = tracker.client.get_run(run_id)
    except Exception as exc:  # MlflowException: RESOURCE_DOES_NOT_EXIST
        raise UserError(f"no replay run {run_id!r} in {tracker.display_uri} ({exc})") from None
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    if kind_of(tags) != ReplayRecord.KIND:
        raise UserError(f"run {run_id} is not a replay (tag {KIND_TAG} is {kind_of(tags)!r})")
    record = ReplayRecord.from_tags(tags, f"replay run {run_id}")
    path = tracker.client.download_artifacts(run_id, REPLAY_ARTIFACT)
    repeats = json.loads(Path(path).read_text(encoding="utf-8"))["repeats"]
    curves = [
        Curve(
            r["sampler"],
            int(r["repeat"]),
            f"replay {r['sampler']} r{r['repeat']}",
            [float(v) for v in r["best_so_far"]],
            [float(v) for v in r["elapsed_s"]],
            float(r["spent_usd"][-1]) if r["spent_usd"] else math.nan,
            [float(v) for v in r["values"]],
            [float(v) for v in r["spent_usd"]],
        )
        for r in repeats
    ]
    space = record.space
    samplers = params["samplers"].split(",")
    landscape = record.landscape
    meta = {
        "kind": "replay",
        "space": space,
        "space_source": record.space_source,
        "experiment": record.experiment,
        "objective": record.objective,
        "samplers": samplers,
        "backends": [],
        "repeats": int(params["repeats"]),
        "tracking_uri": tracker.display_uri,
        **{k: v for k, v in _core.provenance(tracker, run, ("optuna", "scikit-learn")).items() if k in _SHOWN},
        "device": "replayed on this host; trial times as recorded on "
        + study_report(tracker, landscape).meta["devices"],
        "params": ",".join(record.params),
        "parent_run_id": run_id,
        "parent_study": "",
        "landscape": landscape,
        "replay_command": _core.run_command(tags),
        "landscape_design": record.landscape_design,
        "landscape_trials": params.get("landscape.trials", "?"),
    }
    given = params.get("target", "median")
    goal = target if target is not None else (None if given == "median" else float(given))
    comparison = build_comparison(curves, record.direction, int(params["budget"]), goal, meta, tracker)
    fidelity = {k.removeprefix("fidelity_"): v for k, v in metrics.items() if k.startswith("fidelity_")}
    fidelity["folds"] = float(params.get("fidelity.folds", "nan"))
    comparison.meta["caveat"] = _caveat(fidelity)
    timed = ("replay_wall_s", "surrogate_fit_s", "replayed_trials", "exact_lookups")
    timing: dict[str, float] = {k: metrics[k] for k in timed if k in metrics}
    real = real_comparison(tracker, space, record.fingerprint or "", samplers)  # a replay's is always tagged
    if price_on is None and record.priced_on is not None:  # "": the latest bench run, as when it ran
        price_on = PriceOn(record.priced_on or None, record.priced_experiment or None)
    pricing = None
    if price_on is not None:
        pricing = price_replay(tracker, comparison, price_on, landscape_backend(tracker, landscape))
    return ReplayReport(comparison, fidelity, timing, real, pricing)


def landscape_backend(tracker: Tracker, landscape: str) -> str:
    """The backend the landscape's trials ran on (one backend: a landscape is one study)."""
    table = study_report(tracker, landscape).table
    for run_id in table["run_id"].dropna().head(1):
        return str(tracker.client.get_run(run_id).data.tags.get("backend", "cpu"))
    raise UserError(f"landscape {landscape!r} has no trial runs")


_SHOWN = ("host", "git_commit", "versions")


def real_comparison(tracker: Tracker, space: str, fingerprint: str, samplers: Sequence[str]) -> CompareReport | None:
    """The real ``compare-samplers`` of the same space and settings (same fingerprint), on its one backend:
    the samplers both have, over the repeats every one of them completed."""
    exp = tracker.client.get_experiment_by_name(study_experiment(space))
    if exp is None:
        return None
    runs = _core.search(
        tracker,
        [exp.experiment_id],
        f"{kind_filter(StudyRecord.KIND)} and {tag_filter(STUDY_TAG, f'{space}-cmp-%', 'LIKE')}",
    )
    pattern = re.compile(rf"^{re.escape(space)}-cmp-(?P<sampler>[a-z]+)-r(?P<repeat>\d+)$")
    found: dict[str, set[int]] = {}
    budget = None
    for run in runs:
        m = pattern.match(study_record(run).study)
        if not m or m["sampler"] not in samplers or run.info.status != "FINISHED":
            continue
        if study_fingerprint(tracker, run) != fingerprint:
            continue
        found.setdefault(m["sampler"], set()).add(int(m["repeat"]))
        budget = StudyBudget.from_tags(run.data.tags).max_trials or budget
    common = [s for s in samplers if s in found]
    if len(common) < 2 or budget is None:
        return None
    repeats = 0
    while all(repeats in found[s] for s in common):
        repeats += 1
    if repeats < 2:
        return None
    return compare_report(tracker, space, common, repeats, budget)


def _caveat(f: dict[str, float]) -> str:
    """The first finding of a replay: what its verdicts are about, given the surrogate's fidelity."""
    tau, r2 = f.get("kendall_tau", math.nan), f.get("r2", math.nan)
    if tau >= GOOD_TAU and r2 >= GOOD_R2:
        return (
            f"These verdicts are about the recorded landscape, which the surrogate reproduces well here "
            f"(held-out τ {tau:.2f}, R² {r2:.2f}); the training noise of real repeats is not in them."
        )
    return (
        f"These verdicts are about the surrogate's landscape, and its fidelity is weak here (held-out τ {tau:.2f}, "
        f"R² {r2:.2f}): they say how the samplers behave on it, not which one wins on real runs. A sampler that "
        "models the objective (TPE) can exploit the surrogate's own structure."
    )


def fidelity_table(report: ReplayReport) -> pd.DataFrame:
    f = report.fidelity
    n = report.comparison.meta["landscape_trials"]
    folds = "n/a" if math.isnan(f.get("folds", math.nan)) else f"{int(f['folds'])}"
    return pd.DataFrame(
        {
            "predicted": ["objective", "training time (log)"],
            "Kendall τ (held out)": [_core.number(f.get(k), ".2f") for k in ("kendall_tau", "time_kendall_tau")],
            "R² (held out)": [_core.number(f.get(k), ".2f") for k in ("r2", "time_r2")],
            "recorded trials": [n, n],
            "folds": [folds, folds],
        }
    )


def fidelity_notes(report: ReplayReport) -> list[str]:
    f, m, t = report.fidelity, report.comparison.meta, report.timing
    tau, r2 = f.get("kendall_tau", math.nan), f.get("r2", math.nan)
    trusted = tau >= GOOD_TAU and r2 >= GOOD_R2
    worst = (
        f"; the held-out point it got most wrong was recorded at {_obj(f['worst_recorded'])} and predicted at "
        f"{_obj(f['worst_predicted'])} (R² is a squared error: one such point, a diverged run say, can sink it "
        "while τ, a rank measure, holds)"
        if "worst_recorded" in f and "worst_predicted" in f
        else ""
    )
    lines = [
        f"Landscape {_core.md_code(m['landscape'])}: {m['landscape_design']}; {m['landscape_trials']} completed "
        "real trials, "
        "one fixed training seed. Where a sampler proposes a recorded point (every grid point, every categorical "
        "combination recorded) the replay looks it up; elsewhere a random forest fitted on every recorded trial "
        "predicts its objective and training time (scikit-learn, 200 trees; forests as kurobako's and HPOBench's "
        "surrogate benchmarks use: no kernel to choose, categorical and integer parameters as they are, never an "
        "objective outside the recorded range)",
        "Fidelity = out-of-fold predictions of a K-fold split of the recorded trials (points the forest was not "
        "fitted on): Kendall τ says whether the surrogate orders points as the real runs did (1 = the same order, "
        "0 = no relation), R² how much of the variance between points it explains",
        (
            f"Here τ = {tau:.2f} and R² = {r2:.2f}: the surrogate orders unseen points much as real runs did, so "
            "the replay's sampler ranking can be trusted on this space as far as the landscape reaches"
            if trusted
            else f"Here τ = {tau:.2f} and R² = {r2:.2f}; trusting the ranking needs τ ≥ {GOOD_TAU} and R² ≥ {GOOD_R2}: "
            "the surrogate is weak on this space, so read the replay's ranking as indicative only (record more "
            "points, or check it against a real comparison below)"
        )
        + worst,
        "The landscape holds one training seed, so replayed repeats vary only by the sampler's own randomness: "
        "the replay's tests say whether samplers differ on this landscape; the real comparison's, whether that "
        "difference survives the training noise as well",
    ]
    if t:
        exact = t.get("exact_lookups", 0.0) / max(1.0, t.get("replayed_trials", 1.0))
        lines.append(
            f"Replayed {int(t.get('replayed_trials', 0)):,} trials in {t.get('replay_wall_s', math.nan):.1f} s "
            f"(surrogate fit and fidelity {t.get('surrogate_fit_s', math.nan):.1f} s); {exact:.0%} were exact lookups"
        )
    return lines


def agreement_table(report: ReplayReport) -> pd.DataFrame | None:
    """Each sampler's mean best objective and rank, real beside replayed."""
    if report.real is None:
        return None
    maximize = report.comparison.meta["direction"] == "maximize"
    real = report.real.summary.set_index("sampler")
    replay = report.comparison.summary.set_index("sampler")
    common = [s for s in report.comparison.meta["samplers"] if s in real.index]
    real_rank = real.loc[common, "best_mean"].rank(ascending=not maximize, method="min")
    replay_rank = replay.loc[common, "best_mean"].rank(ascending=not maximize, method="min")
    return pd.DataFrame(
        {
            "sampler": common,
            "real best (mean ± SE)": [_pm(real, s) for s in common],
            "real repeats": [int(real.loc[s, "repeats"]) for s in common],
            "real rank": [int(real_rank[s]) for s in common],
            "replay best (mean ± SE)": [_pm(replay, s) for s in common],
            "replay repeats": [int(replay.loc[s, "repeats"]) for s in common],
            "replay rank": [int(replay_rank[s]) for s in common],
        }
    )


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.4f}"


def _pm(summary: pd.DataFrame, sampler: str) -> str:
    """A sampler's mean best objective ± its standard error, as the comparison's own table shows it."""
    return _core.plus_minus(summary.loc[sampler, "best_mean"], summary.loc[sampler, "best_sem"], ".5g", ".2g", "")


def agreement_notes(report: ReplayReport) -> list[str]:
    from scipy.stats import kendalltau

    if report.real is None:
        return [
            "No real comparison of this space with the same settings is in the store: run `harness "
            "compare-samplers` with the same space file and --set to compare the replay's ranking with the real one"
        ]
    table = agreement_table(report)
    assert table is not None
    lines = []
    if len(table) > 1:
        tau = kendalltau(table["real rank"], table["replay rank"]).statistic
        same = list(table["real rank"]) == list(table["replay rank"])
        lines.append(
            f"Ranking by mean best objective: {'the same order' if same else 'a different order'} in the replay "
            f"and the real comparison (Kendall τ between the two rankings {_core.number(tau, '.2f')})"
        )
    shifts = ", ".join(
        f"{_core.md_text(s)} {_signed(report.comparison.summary.set_index('sampler').loc[s, 'best_mean'] - real_mean)}"
        for s, real_mean in report.real.summary.set_index("sampler")["best_mean"].items()
        if s in set(table["sampler"])
    )
    lines.append(
        f"Replayed minus real mean best objective: {shifts} (a forest averages neighbouring points, so it "
        "flattens peaks: a sampler whose best points are predicted, not looked up, is replayed below its real value)"
    )
    real_tests = report.real.tests
    replay_tests = report.comparison.tests
    agree, total, differ = 0, 0, []
    for _, r in real_tests[real_tests["measure"] == "best objective"].iterrows():
        match = replay_tests[
            (replay_tests["measure"] == "best objective")
            & (replay_tests["a"] == r["a"])
            & (replay_tests["b"] == r["b"])
        ]
        if match.empty:
            continue
        total += 1
        replayed = match.iloc[0]["verdict"]
        if replayed == r["verdict"]:
            agree += 1
        else:
            differ.append(f"{_core.md_text(r['a'])} vs {_core.md_text(r['b'])}: real {r['verdict']}, replay {replayed}")
    if total:
        lines.append(
            f"Pairwise verdicts on the best objective: {agree} of {total} agree between the real comparison "
            f"({int(report.real.summary['repeats'].min())} repeats per sampler) and the replay "
            f"({int(report.comparison.summary['repeats'].min())})"
            + (f"; differ: {'; '.join(differ)}" if differ else "")
        )
    lines.append(
        "How far to trust the replay: where the fidelity is good and the rankings agree, the replay answers "
        "sampler questions on this space for seconds instead of hours; where a verdict differs, the real "
        "comparison's (with its training noise) is the one to believe, and the replay says how many real repeats "
        "it would take to see the replayed effect"
    )
    return lines


def write_replay_report(report: ReplayReport, out_dir: Path, command: str) -> tuple[Path, ...]:
    """``replay_<space>.md|csv|html`` and ``replay_<space>_curves.png``; the HTML also in the replay's run."""
    extra = [
        Section("Fidelity", table=fidelity_table(report), notes=fidelity_notes(report)),
        Section("Replay vs real", table=agreement_table(report), notes=agreement_notes(report)),
    ]
    if report.pricing is not None:
        p = report.pricing
        extra += [
            Section(f"On every backend of the bench ({_core.md_text(p.experiment)})", table=p.table, notes=p.notes),
            Section("Backends compared (the bench's repetitions)", table=hardware_verdicts(p)),
        ]
    stem = f"replay_{report.comparison.meta['space']}"
    return write_compare_report(report.comparison, out_dir, command, stem=stem, extra=extra)
