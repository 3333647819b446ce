"""Sampler comparisons, rebuilt from the tracking store (never from memory).

Per sampler (and backend, with ``--backends``), over the repeats of ``harness compare-samplers``
(one study each): best objective mean ± sd, trials, time and dollars to a target, area under the
best-so-far curve, total time and cost, plus the best-so-far curves.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness import stats
from harness.errors import UserError
from harness.report import _core, _html
from harness.report._document import Document, Figure, Section, render_markdown
from harness.report._publish import publish
from harness.report._study import _obj, counted, find_study_run, study_record, study_report
from harness.tracking import Tracker


@dataclasses.dataclass
class Curve:
    """One study of a comparison: best-so-far after each counted trial, against trials and time."""

    sampler: str
    repeat: int
    study: str
    best_so_far: list[float]  # nan until the first completed trial
    elapsed_s: list[float]  # cumulative trial time after each trial
    cost_usd: float
    values: list[float]  # objective of each completed trial
    spent_usd: list[float]  # cumulative cost after each trial (nan where a price is unknown)
    backend: str = ""


@dataclasses.dataclass
class CompareReport:
    summary: pd.DataFrame  # one row per sampler (and backend)
    studies: pd.DataFrame  # one row per (sampler, backend, repeat)
    curves: list[Curve]
    meta: dict[str, Any]
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there
    tests: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # pairwise: one row per pair and measure


def compare_study_name(space: str, sampler: str, repeat: int, backend: str = "") -> str:
    """``<space>-cmp-<sampler>-r<seed>``, with ``-<backend>`` when the comparison spans backends."""
    return f"{space}-cmp-{sampler}-r{repeat}" + (f"-{backend}" if backend else "")


def _curve(tracker: Tracker, space: str, sampler: str, repeat: int, direction: str, backend: str = "") -> Curve:
    name = compare_study_name(space, sampler, repeat, backend)
    report = study_report(tracker, name)
    t = counted(report.table)
    best: list[float] = []
    elapsed: list[float] = []
    spent: list[float] = []
    current, clock, dollars = math.nan, 0.0, 0.0
    better = max if direction == "maximize" else min
    for _, row in t.iterrows():
        if row["state"] == "COMPLETE" and not math.isnan(row["objective"]):
            current = row["objective"] if math.isnan(current) else better(current, row["objective"])
        clock += 0.0 if math.isnan(row["time_s"]) else float(row["time_s"])
        dollars += float(row["cost_usd"])  # nan (no price) stays nan from there on
        best.append(current)
        elapsed.append(clock)
        spent.append(dollars)
    values = [float(v) for v in t.loc[t["state"] == "COMPLETE", "objective"].dropna()]
    cost = float(t["cost_usd"].sum()) if t["cost_usd"].notna().any() else math.nan
    return Curve(sampler, repeat, name, best, elapsed, cost, values, spent, backend)


def _reach(curve: Curve, target: float, direction: str) -> tuple[float, float, float]:
    """(trials, seconds, dollars) until the best-so-far first reaches ``target``; inf if never."""
    for i, value in enumerate(curve.best_so_far):
        if not math.isnan(value) and (value >= target if direction == "maximize" else value <= target):
            return float(i + 1), curve.elapsed_s[i], curve.spent_usd[i]
    return math.inf, math.inf, math.inf


def _auc(curve: Curve, lo: float, hi: float, direction: str, budget: int) -> float:
    """Mean of the normalised best-so-far over trials 1..budget (0 = worst value seen, 1 = best seen)."""
    if hi == lo:
        return 1.0 if any(not math.isnan(v) for v in curve.best_so_far) else 0.0
    points = []
    for i in range(budget):
        v = curve.best_so_far[min(i, len(curve.best_so_far) - 1)] if curve.best_so_far else math.nan
        if math.isnan(v):
            points.append(0.0)
        else:
            points.append((v - lo) / (hi - lo) if direction == "maximize" else (hi - v) / (hi - lo))
    return statistics.fmean(points) if points else 0.0


def compare_report(
    tracker: Tracker,
    space: str,
    samplers: Sequence[str],
    repeats: int,
    budget: int,
    target: float | None = None,
    backends: Sequence[str] = (),
) -> CompareReport:
    """``backends``: the comparison ran once per backend (``--backends``); one target for all of them."""
    each = list(backends) or [""]
    first = find_study_run(tracker, compare_study_name(space, samplers[0], 0, each[0]))
    record = study_record(first)
    direction = record.direction
    curves = [_curve(tracker, space, s, r, direction, b) for b in each for s in samplers for r in range(repeats)]
    meta = {
        "kind": "real",
        "space": space,
        "space_source": record.space_source,
        "experiment": record.experiment,
        "objective": record.objective,
        "samplers": list(samplers),
        "backends": list(backends),
        "repeats": repeats,
        "tracking_uri": tracker.display_uri,
        **{k: v for k, v in _core.provenance(tracker, first, ("optuna", "tensorflow")).items() if k in _SHOWN},
        "device": "; ".join(
            dict.fromkeys(study_report(tracker, c.study).meta["devices"] for c in curves if c.repeat == 0)
        ),
        "params": ",".join(record.params),
        # a comparison has no MLflow run of its own: its HTML goes to the first study's parent run
        "parent_run_id": first.info.run_id,
        "parent_study": compare_study_name(space, samplers[0], 0, each[0]),
    }
    return build_comparison(curves, direction, budget, target, meta, tracker)


def build_comparison(
    curves: Sequence[Curve],
    direction: str,
    budget: int,
    target: float | None,
    meta: dict[str, Any],
    store: Tracker | None = None,
) -> CompareReport:
    """Per-repeat rows, per-sampler summaries with CIs and the pairwise tests, from the repeats' curves
    (real studies or replayed ones alike)."""
    space = meta["space"]
    everything = [v for c in curves for v in c.values]
    if not everything:
        raise UserError(f"comparison of {space}: no trial completed in any study")
    lo, hi = min(everything), max(everything)
    finals = [c.best_so_far[-1] for c in curves if c.best_so_far and not math.isnan(c.best_so_far[-1])]
    target_rule = "given"
    if target is None:
        target = statistics.median(finals)
        target_rule = "median over all studies of the best objective found"
    rows = []
    for c in curves:
        trials_to, time_to, usd_to = _reach(c, target, direction)
        rows.append(
            {
                "sampler": c.sampler,
                "backend": c.backend,
                "repeat": c.repeat,
                "study": c.study,
                "trials": len(c.best_so_far),
                "best": c.best_so_far[-1] if c.best_so_far else math.nan,
                "trials_to_target": trials_to,
                "time_to_target_s": time_to,
                "usd_to_target": usd_to,
                "auc": _auc(c, lo, hi, direction, budget),
                "total_time_s": c.elapsed_s[-1] if c.elapsed_s else 0.0,
                "cost_usd": c.cost_usd,
            }
        )
    studies = pd.DataFrame(rows)
    samplers = list(dict.fromkeys(c.sampler for c in curves))
    each = list(dict.fromkeys(c.backend for c in curves))
    summary = pd.DataFrame([_summary_row(studies, s, b, budget) for b in each for s in samplers])
    meta = {**meta, "direction": direction, "budget": budget, "target": target, "target_rule": target_rule}
    tests = _tests(studies, samplers, each, direction == "maximize")
    return CompareReport(summary, studies, list(curves), meta, store, tests)


def _summary_row(studies: pd.DataFrame, sampler: str, backend: str, budget: int) -> dict[str, Any]:
    s = studies[(studies["sampler"] == sampler) & (studies["backend"] == backend)]
    best = stats.summarize(s["best"].tolist())
    auc = stats.summarize(s["auc"].tolist())
    trials_to = stats.censored_summary(s["trials_to_target"].tolist(), float(budget))
    time_to = stats.censored_summary(s["time_to_target_s"].tolist(), s["total_time_s"].tolist())
    usd_to = stats.censored_summary(s["usd_to_target"].tolist(), s["cost_usd"].fillna(math.inf).tolist())
    return {
        "sampler": sampler,
        "backend": backend,
        "repeats": len(s),
        "best_mean": best.mean,
        "best_sem": best.sem,
        "best_ci_low": best.mean_ci.low,
        "best_ci_high": best.mean_ci.high,
        "best_sd": best.sd,
        "reached": trials_to.reached,
        "trials_to_target_median": trials_to.median,
        "trials_to_target_ci_low": trials_to.median_ci.low,
        "trials_to_target_ci_high": trials_to.median_ci.high,
        "trials_to_target_restricted_mean": trials_to.restricted_mean,
        "trials_to_target_restricted_sem": trials_to.restricted_sem,
        "time_to_target_median_s": time_to.median,
        "usd_to_target_median": usd_to.median,
        "auc_mean": auc.mean,
        "auc_sem": auc.sem,
        "auc_ci_low": auc.mean_ci.low,
        "auc_ci_high": auc.mean_ci.high,
        "time_s_mean": s["total_time_s"].mean(),
        "time_s_total": s["total_time_s"].sum(),
        "cost_usd_mean": s["cost_usd"].mean(),
        "cost_usd_total": s["cost_usd"].sum(),
    }


# (column, what the tables call it, larger is better?): the measures samplers are tested on
_SAMPLER_MEASURES = (
    ("best", "best objective", None),  # None: the objective's own direction
    ("trials_to_target", "trials to target", False),
    ("auc", "AUC", True),
)
_BACKEND_MEASURES = (("time_to_target_s", "time to target", False), ("usd_to_target", "$ to target", False))


def _groups(studies: pd.DataFrame, column: str, key: str, names: Sequence[str], where: pd.Series) -> dict:
    out = {}
    for name in names:
        s = studies[where & (studies[key] == name)]
        out[name] = dict(zip(s["repeat"], s[column], strict=True))
    return out


def _tests(studies: pd.DataFrame, samplers: Sequence[str], backends: Sequence[str], maximize: bool) -> pd.DataFrame:
    """Pairwise tests: samplers on each backend (one Holm family per measure and backend), and, across
    backends, each sampler's backends on time and dollars to the target. Repeats pair by sampler seed."""
    rows = []
    for backend in backends:
        for column, label, larger in _SAMPLER_MEASURES:
            groups = _groups(studies, column, "sampler", samplers, studies["backend"] == backend)
            better = maximize if larger is None else larger
            for t in stats.pairwise(groups, higher_is_better=better):
                rows.append(_test_row(t, label, backend=backend, sampler=""))
    if len(backends) > 1:
        for sampler in samplers:
            for column, label, larger in _BACKEND_MEASURES:
                groups = _groups(studies, column, "backend", backends, studies["sampler"] == sampler)
                for t in stats.pairwise(groups, higher_is_better=bool(larger)):
                    rows.append(_test_row(t, label, backend="", sampler=sampler))
    columns = [
        "backend",
        "sampler",
        "measure",
        "a",
        "b",
        "n",
        "paired",
        "test",
        "p",
        "p_holm",
        "effect",
        "verdict",
        "repeats_needed",
    ]
    return pd.DataFrame(rows, columns=columns)


def _test_row(t: stats.PairTest, label: str, backend: str, sampler: str) -> dict[str, Any]:
    return {
        "backend": backend,
        "sampler": sampler,
        "measure": label,
        "a": t.a,
        "b": t.b,
        "n": min(t.n_a, t.n_b),
        "paired": t.paired,
        "test": t.test,
        "p": t.p,
        "p_holm": t.p_holm,
        "effect": t.effect,
        "verdict": t.verdict,
        "repeats_needed": t.needed,
    }


_SHOWN = ("host", "git_commit", "versions")  # what a comparison reports of its first study's provenance


def _ci(low: float, high: float, digits: int | None = None) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if digits is None:
        return f"[{_obj(low)}, {_obj(high)}]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _median(value: float, digits: int = 0) -> str:
    return "not reached" if math.isinf(value) else ("n/a" if math.isnan(value) else f"{value:.{digits}f}")


def _km(median: float, low: float, high: float, digits: int = 0) -> str:
    """A Kaplan-Meier median and its CI; beyond the budget it is "not reached" (> half never got there)."""
    if math.isnan(median):
        return "n/a"
    if math.isinf(median):
        return "not reached"
    ci = "" if math.isnan(low) else f" [{_median(low, digits)}, {'∞' if math.isinf(high) else _median(high, digits)}]"
    return _median(median, digits) + ci


def _restricted(mean: float, sem: float, reached: int, repeats: int) -> str:
    """The mean trials to the target, a censored repeat counted as the whole budget: then a lower bound (≥)."""
    if math.isnan(mean):
        return "n/a"
    text = f"{mean:.1f}" + ("" if math.isnan(sem) else f" ± {sem:.1f}")
    return text if reached == repeats else f"≥ {text}"


def display_compare(report: CompareReport) -> pd.DataFrame:
    s = report.summary
    backend = {"backend": s["backend"]} if report.meta.get("backends") else {}
    return pd.DataFrame(
        {
            "sampler": s["sampler"],
            **backend,
            "best objective (mean ± SE)": [
                _core.plus_minus(m, d, ".5g", ".2g") for m, d in zip(s["best_mean"], s["best_sem"], strict=True)
            ],
            "95% CI": [_ci(lo, hi) for lo, hi in zip(s["best_ci_low"], s["best_ci_high"], strict=True)],
            "reached target": [f"{r}/{n}" for r, n in zip(s["reached"], s["repeats"], strict=True)],
            "trials to target (KM median [95% CI])": [
                _km(m, lo, hi)
                for m, lo, hi in zip(
                    s["trials_to_target_median"],
                    s["trials_to_target_ci_low"],
                    s["trials_to_target_ci_high"],
                    strict=True,
                )
            ],
            "trials to target (mean ± SE)": [
                _restricted(m, e, r, n)
                for m, e, r, n in zip(
                    s["trials_to_target_restricted_mean"],
                    s["trials_to_target_restricted_sem"],
                    s["reached"],
                    s["repeats"],
                    strict=True,
                )
            ],
            "time to target (s, KM median)": [_median(v, 1) for v in s["time_to_target_median_s"]],
            "$ to target (KM median)": [_median(v, 5) for v in s["usd_to_target_median"]],
            "AUC (mean ± SE)": [
                _core.plus_minus(m, d, ".3f", ".3f") for m, d in zip(s["auc_mean"], s["auc_sem"], strict=True)
            ],
            "AUC 95% CI": [_ci(lo, hi, 3) for lo, hi in zip(s["auc_ci_low"], s["auc_ci_high"], strict=True)],
            "time per study (s)": [_core.number(v, ".1f") for v in s["time_s_mean"]],
            "cost per study ($)": ["n/a" if math.isnan(v) else f"{v:.4f}" for v in s["cost_usd_mean"]],
        }
    )


def display_tests(report: CompareReport) -> pd.DataFrame:
    t = report.tests
    if t.empty:
        return pd.DataFrame(columns=["measure", "pair", "test", "p (Holm)", "effect r", "verdict"])
    where = {}
    if report.meta.get("backends"):
        where = {"on": [b or f"{s} across backends" for b, s in zip(t["backend"], t["sampler"], strict=True)]}
    return pd.DataFrame(
        {
            **where,
            "measure": t["measure"],
            "pair": [f"{a} vs {b}" for a, b in zip(t["a"], t["b"], strict=True)],
            "n": t["n"],
            "test": [
                f"{name}{' (paired)' if p and name != 'sign' else ''}"
                for name, p in zip(t["test"], t["paired"], strict=True)
            ],
            "p (Holm)": [stats.format_p(p) for p in t["p_holm"]],
            "effect r": ["n/a" if math.isnan(e) else f"{e:+.2f}" for e in t["effect"]],
            "verdict": [_verdict_text(v, a, b) for v, a, b in zip(t["verdict"], t["a"], t["b"], strict=True)],
            "repeats to detect": [
                _needed(n, v, e) for n, v, e in zip(t["repeats_needed"], t["verdict"], t["effect"], strict=True)
            ],
        }
    )


def _verdict_text(verdict: str, a: str, b: str) -> str:
    if verdict == "better":
        return f"{a} better"
    if verdict == "worse":
        return f"{b} better"
    return verdict


def _needed(n: Any, verdict: str, effect: float) -> str:
    if verdict != stats.NO_DIFFERENCE:
        return ""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        # no power estimate: no difference at all, or censored repeats (a difference without a size)
        return "n/a (no effect observed)" if effect == 0 else "n/a (censored repeats)"
    return f"~{int(n):,} each"


def compare_findings(report: CompareReport) -> list[str]:
    """What the tests support: a sampler named best on a measure only where it is significantly better than
    every other (Holm-corrected, α = 0.05), else "within noise"; random vs grid (Bergstra & Bengio 2012);
    across backends, a faster or cheaper backend only where its test says so."""
    backends = report.meta.get("backends") or [""]
    samplers = report.meta["samplers"]
    lines = [report.meta["caveat"]] if report.meta.get("caveat") else []
    t = report.tests
    for backend in backends:
        where = f"On {_core.md_text(backend)}: " if backend else ""
        mine = t[(t["backend"] == backend) & (t["sampler"] == "")]
        lines += [where + line for line in _findings(mine, samplers, report.summary, backend)]
    if len(backends) > 1:
        for sampler in samplers:
            mine = t[t["sampler"] == sampler]
            name = _core.md_text(sampler)
            for label in ("time to target", "$ to target"):
                w = stats.winner(backends, _pair_tests(mine[mine["measure"] == label]))
                lines.append(
                    f"{name}: **{_core.md_text(w)}** is significantly the fastest backend to the target"
                    if w and label == "time to target"
                    else f"{name}: **{_core.md_text(w)}** is significantly the cheapest backend to the target"
                    if w
                    else f"{name}: no backend significantly beats the others on {label} (within noise)"
                )
    return lines


def _pair_tests(rows: pd.DataFrame) -> list[stats.PairTest]:
    return [
        stats.PairTest(
            r.a,
            r.b,
            int(r.n),
            int(r.n),
            bool(r.paired),
            r.test,
            math.nan,
            r.p,
            r.p_holm,
            r.effect,
            math.nan,
            stats.NO_INTERVAL,
            r.verdict,
            None,
        )
        for r in rows.itertuples()
    ]


def _findings(tests: pd.DataFrame, samplers: Sequence[str], summary: pd.DataFrame, backend: str) -> list[str]:
    if len(samplers) == 1:
        return [f"One sampler ({_core.md_text(samplers[0])}): no sampler comparison to test."]
    lines = []
    for _, label, _ in _SAMPLER_MEASURES:
        rows = tests[tests["measure"] == label]
        w = stats.winner(samplers, _pair_tests(rows))
        if w:
            worst = max(rows[(rows["a"] == w) | (rows["b"] == w)]["p_holm"])
            lines.append(
                f"Best on {label}: **{_core.md_text(w)}**, significantly better than every other sampler "
                f"(Holm-corrected p ≤ {stats.format_p(worst).removeprefix('< ')})."
            )
        else:
            lines.append(_no_winner(label, rows))
    pair = tests[
        (tests["measure"] == "best objective")
        & tests["a"].isin(["grid", "random"])
        & tests["b"].isin(["grid", "random"])
    ]
    if not pair.empty:
        r = pair.iloc[0]
        s = summary[summary["backend"] == backend].set_index("sampler")
        means = f"{_obj(s.loc['random', 'best_mean'])} vs {_obj(s.loc['grid', 'best_mean'])}"
        random_side = "better" if (r["a"] == "random") == (r["verdict"] == "better") else "worse"
        said = (
            f"random is significantly {random_side} than grid"
            if r["verdict"] in ("better", "worse")
            else "random and grid are within noise"
        )
        lines.append(
            f"At equal budget, {said} on the best objective ({means}, {_p(r['p_holm'])}, Holm). "
            "Bergstra & Bengio (2012) expect random to win when only a few parameters matter; this is what "
            "we measured."
        )
    return lines


def _p(p: float) -> str:
    text = stats.format_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _no_winner(label: str, rows: pd.DataFrame) -> str:
    """No sampler beats all others: which pairs do differ significantly, and which are within noise."""
    text = _core.md_text
    wins = [
        f"{text(r.a if r.verdict == 'better' else r.b)} > {text(r.b if r.verdict == 'better' else r.a)}"
        for r in rows.itertuples()
        if r.verdict in ("better", "worse")
    ]
    ties = [f"{text(r.a)} vs {text(r.b)}" for r in rows.itertuples() if r.verdict not in ("better", "worse")]
    if not wins:
        return f"No sampler is significantly better than another on {label}: every pair is within noise."
    return (
        f"No single best sampler on {label}: significantly {', '.join(wins)} (better first); "
        f"within noise: {', '.join(ties) or 'none'}."
    )


def _lead(report: CompareReport) -> list[str]:
    """The comparison's setup and provenance (text from the store through md_text)."""
    m = report.meta
    text, code = _core.md_text, _core.md_code
    replay = m.get("kind") == "replay"
    studies = f"{m['space']}-cmp-<sampler>-r<seed>{'-<backend>' if m['backends'] else ''}"
    how = (
        f"each repeat a replayed study against the recorded landscape {code(m.get('landscape', '?'))} (no training)"
        if replay
        else f"one study each (`{studies}`)"  # harness's own <placeholders>, in a code span, for a plain space name
        if code(m["space"]) == f"`{m['space']}`"
        else f"one study each ({text(studies)})"
    )
    replayed = [f"Replayed by {code(m['replay_command'])} (MLflow run {code(m['parent_run_id'])})"] if replay else []
    return [
        *replayed,
        f"Search space {text(m['space_source'])} (params: {text(m['params'])}), experiment {text(m['experiment'])}",
        f"Objective {text(m['objective'])} ({text(m['direction'])}); every sampler gets the same budget of "
        f"{m['budget']} full-fidelity trials (no pruning), repeated with sampler seeds 0..{m['repeats'] - 1}; "
        + how
        + (f", on each backend: {', '.join(map(text, m['backends']))}" if m["backends"] else ""),
        f"Target {_obj(m['target'])} ({text(m['target_rule'])}). A repeat that never reaches it is right-censored "
        "at its budget (trials) or its total time and cost: medians to the target are Kaplan-Meier "
        '(scipy.stats.ecdf, 95% log-log CI), "not reached" where fewer than half of the repeats reached it; '
        "the mean trials to the target count a censored repeat as the whole budget, a lower bound marked ≥; "
        "tests rank a censored repeat behind every repeat that reached the target",
        "Statistics: mean ± standard error with 95% seeded-bootstrap CIs (BCa); pairwise tests between samplers "
        "on one backend, repeats paired by sampler seed (common random numbers): Wilcoxon signed-rank, or a "
        "sign test where a pair is censored; Holm's correction across the pairs of each measure; effect = "
        "rank-biserial r (positive: the first of the pair larger); α = 0.05. A sampler is named best only "
        "where it is significantly better than every other",
        "Time = cumulative trial wall time (trials run one after another); AUC = mean over trials 1..budget "
        "of the best-so-far, scaled so that 0 is the worst and 1 the best objective seen in the comparison",
        f"Device: {text(m['device'])} on host {code(m['host'])}; {text(m['versions'])}; "
        f"harness commit {_core.md_commit(m['git_commit'])}",
        *(
            [
                "Samplers draw with per-trial seeds from (seed, trial number): TPE's random start-up trials "
                "are the random sampler's first trials of the same seed, so their curves coincide until TPE "
                "starts modelling (common random numbers)"
            ]
            if {"random", "tpe"} <= set(m["samplers"])
            else []
        ),
    ]


def _per_study(report: CompareReport) -> pd.DataFrame:
    return report.studies.assign(
        best=[_obj(v) for v in report.studies["best"]],
        trials_to_target=[_median(v) for v in report.studies["trials_to_target"]],
        time_to_target_s=[_median(v, 1) for v in report.studies["time_to_target_s"]],
        usd_to_target=[_median(v, 5) for v in report.studies["usd_to_target"]],
        auc=[_core.number(v, ".3f", "") for v in report.studies["auc"]],
        total_time_s=[_core.number(v, ".1f", "") for v in report.studies["total_time_s"]],
        cost_usd=[_core.number(v, ".4f") for v in report.studies["cost_usd"]],
    )


def _title(report: CompareReport) -> str:
    what = "Replayed sampler comparison" if report.meta.get("kind") == "replay" else "Sampler comparison"
    return f"{what}: {_core.md_code(report.meta['space'])}"


def compare_document(report: CompareReport, command: str, curves_png: str, extra: Sequence[Section] = ()) -> Document:
    """The comparison: samplers, findings, pairwise tests, ``extra`` sections (a replay's fidelity), the
    best-so-far curves (``curves_png``, the PNG beside the Markdown) and, for real studies, every study."""
    curves = Figure(compare_figure(report), file=curves_png)
    sections = [
        Section("Samplers", table=display_compare(report)),
        Section("Findings", notes=compare_findings(report)),
        Section("Pairwise tests", table=display_tests(report)),
        *extra,
        Section(
            "Best so far",
            figures=[curves],
            caption="Thick: the mean per sampler with its 95% bootstrap CI (band); thin: each repeat.",
        ),
    ]
    replay = report.meta.get("kind") == "replay"
    if not replay:
        sections.append(Section("Every study", table=_per_study(report)))
    run_id = _core.md_code(report.meta["parent_run_id"])
    run_note = (
        f"Logged to the replay's MLflow run {run_id}"
        if replay
        else f"Logged to the MLflow parent run {run_id} of study "
        f"{_core.md_code(report.meta['parent_study'])} (a comparison has no run of its own)"
    )
    return Document(
        _title(report),
        _lead(report),
        sections,
        generated=_core.generated_by(command),
        md_lead=[f"Curves: {_core.md_link(curves_png, curves_png)}"],
        html_lead=[run_note],  # the page is what is logged there
    )


def compare_markdown(report: CompareReport, command: str, curves_png: str, extra: Sequence[Section] = ()) -> str:
    return render_markdown(compare_document(report, command, curves_png, extra))


@_html.default_style
def compare_figure(report: CompareReport) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    by_trial, by_time = fig.subplots(1, 2)
    groups = list(dict.fromkeys((c.sampler, c.backend) for c in report.curves))
    colours = {g: f"C{i}" for i, g in enumerate(groups)}
    thin = len(report.curves) <= 60  # hundreds of replayed repeats: the bands say it, not the lines
    for group in groups:
        curves = [c for c in report.curves if (c.sampler, c.backend) == group]
        sampler = f"{group[0]} on {group[1]}" if group[1] else group[0]
        for c in curves if thin else ():
            xs = list(range(1, len(c.best_so_far) + 1))
            by_trial.step(xs, c.best_so_far, where="post", color=colours[group], alpha=0.2, lw=0.8)
            by_time.step(c.elapsed_s, c.best_so_far, where="post", color=colours[group], alpha=0.4, lw=0.8)
        n = max((len(c.best_so_far) for c in curves), default=0)
        mean, low, high = [], [], []
        for i in range(n):
            vals = [c.best_so_far[min(i, len(c.best_so_far) - 1)] for c in curves if c.best_so_far]
            summary = stats.summarize([v for v in vals if not math.isnan(v)])
            mean.append(summary.mean)
            low.append(summary.mean_ci.low)
            high.append(summary.mean_ci.high)
        steps = np.arange(1, n + 1)
        by_trial.step(steps, mean, where="post", color=colours[group], lw=2.2, label=f"{sampler} (mean, 95% CI)")
        by_trial.fill_between(steps, low, high, step="post", color=colours[group], alpha=0.18, lw=0)
        _time_band(by_time, curves, colours[group], sampler)
    by_trial.xaxis.get_major_locator().set_params(integer=True)
    for ax, xlabel in ((by_trial, "trials"), (by_time, "cumulative trial time (s)")):
        ax.axhline(report.meta["target"], color="grey", ls="--", lw=1, label="target")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {report.meta['objective']} so far")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report.meta['space']}: best-so-far, {report.meta['repeats']} repeats per sampler")
    return fig


def _time_band(ax: Any, curves: Sequence[Curve], colour: str, label: str) -> None:
    """Mean best-so-far against time, with its 95% CI, on a common grid of times (each repeat's curve is a
    step function of its own trial times; before its first trial ends it has no value)."""
    import numpy as np

    ends = [c.elapsed_s[-1] for c in curves if c.elapsed_s]
    if not ends:
        return
    grid = np.linspace(0.0, max(ends), 60)
    mean, low, high = [], [], []
    for t in grid:
        vals = []
        for c in curves:
            i = int(np.searchsorted(c.elapsed_s, t, side="right")) - 1
            if i >= 0 and not math.isnan(c.best_so_far[i]):
                vals.append(c.best_so_far[i])
        summary = stats.summarize(vals)
        mean.append(summary.mean)
        low.append(summary.mean_ci.low)
        high.append(summary.mean_ci.high)
    ax.plot(grid, mean, color=colour, lw=2.0, label=f"{label} (mean, 95% CI)")
    ax.fill_between(grid, low, high, color=colour, alpha=0.18, lw=0)


def compare_stem(report: CompareReport) -> str:
    stem = f"compare_{report.meta['space']}"
    if report.meta.get("backends"):
        stem += "_on_" + "-".join(b.replace(":", "x") for b in report.meta["backends"])
    return stem


def write_compare_report(
    report: CompareReport,
    out_dir: Path,
    command: str,
    stem: str | None = None,
    extra: Sequence[Section] = (),
) -> tuple[Path, Path, Path, Path]:
    """``compare_<space>.md``, ``.csv`` (summary, pairwise tests, per study), ``compare_<space>_curves.png`` and
    ``.html`` (also logged to the parent run: the first study's, or the replay's own); a comparison across
    backends is ``compare_<space>_on_<backend>-<backend>...`` (it never replaces the one-backend table).
    ``extra``: sections after the pairwise tests (a replay's fidelity)."""
    stem = stem or compare_stem(report)
    parts = [report.summary.assign(level="sampler"), report.tests.assign(level="test")]
    if report.meta.get("kind") != "replay":
        parts.append(report.studies.assign(level="study"))
    table = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    doc = compare_document(report, command, f"{stem}_curves.png", extra)
    files = publish(doc, out_dir, stem, table, tracker=report.store, run_id=report.meta["parent_run_id"])
    (png,) = files.figures
    return files.md, files.csv, png, files.html
