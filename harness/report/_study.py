"""Study tables and sampler comparisons, rebuilt from the tracking store (never from memory).

``study_report``: one row per trial of a study's MLflow parent run (trial number,
state, parameters, objective, time, cost) and the best trial. ``compare_report``:
per sampler, over the repeats of ``harness compare-samplers`` (one study each),
best objective mean ± sd, trials and time to a target, area under the best-so-far
curve, total time and cost, plus the best-so-far curves.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.report._ladder import _tracking_uri
from harness.tracking import Tracker

_STATE_FROM_STATUS = {"FINISHED": "COMPLETE", "KILLED": "PRUNED", "FAILED": "FAIL", "RUNNING": "RUNNING"}


@dataclasses.dataclass
class StudyReport:
    table: pd.DataFrame  # one row per trial, numeric
    params: list[str]
    best: dict[str, Any] | None
    meta: dict[str, str]


def find_study_run(tracker: Tracker, name: str) -> Any:
    """The MLflow parent run of study ``name`` (the latest, if a name was reused in another store)."""
    if tracker.uri.startswith("sqlite:///") and not Path(tracker.uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"no tracking store at {tracker.uri.removeprefix('sqlite:///')}; run `harness study` here first, "
            "or pass --tracking-uri"
        )
    exps = [e.experiment_id for e in tracker.client.search_experiments(filter_string="name LIKE 'study/%'")]
    runs = (
        tracker.client.search_runs(
            exps,
            f"tags.`harness.kind` = 'study' and tags.`harness.study` = '{name}'",
            order_by=["attributes.start_time DESC"],
        )
        if exps
        else []
    )
    if not runs:
        raise UserError(f"no study {name!r} in {tracker.uri}; run `harness study SPACE` (or --name {name}) first")
    return runs[0]


def _trial_rows(tracker: Tracker, parent: Any) -> tuple[pd.DataFrame, list[str]]:
    import mlflow

    with _tracking_uri(tracker.uri):
        runs = mlflow.search_runs(
            experiment_ids=[parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            output_format="pandas",
        )
    params = [p for p in parent.data.tags.get("harness.params", "").split(",") if p]
    keys = [k for k in parent.data.tags.get("harness.param_keys", "").split(",") if k] or params
    if runs.empty:
        columns = ["trial", "state", "status", *params, "objective", "time_s", "cost_usd", "retry_of", "run_id"]
        return pd.DataFrame(columns=columns), params

    def column(name: str, default: Any = math.nan) -> pd.Series:
        return runs[name] if name in runs else pd.Series(default, index=runs.index)

    state = column("tags.optuna.state", None)
    state = state.where(state.notna() & (state != ""), runs["status"].map(_STATE_FROM_STATUS))
    table = pd.DataFrame(
        {
            "trial": column("tags.optuna.trial_number", "-1").astype(int),
            "state": state,
            "status": runs["status"],
            **{p: column(f"params.{k}", "") for p, k in zip(params, keys, strict=True)},
            "objective": column("metrics.objective").astype(float),
            "time_s": column("metrics.trial_wall_s").astype(float),
            "cost_usd": column("metrics.cost_usd").astype(float),
            "retry_of": column("tags.harness.retry_of", "").fillna(""),
            "run_id": runs["run_id"],
        }
    )
    return table.sort_values("trial", kind="stable").reset_index(drop=True), params


def counted(table: pd.DataFrame) -> pd.DataFrame:
    """Trials the budget counts: a failed trial that was run again is replaced by its re-run."""
    rerun = {int(v) for v in table["retry_of"] if str(v).strip().lstrip("-").isdigit()}
    return table[~(table["trial"].isin(rerun) & (table["state"] == "FAIL"))]


def study_report(tracker: Tracker, name: str) -> StudyReport:
    parent = find_study_run(tracker, name)
    table, params = _trial_rows(tracker, parent)
    tags = parent.data.tags
    direction = tags.get("harness.direction", "maximize")
    done = table[table["state"] == "COMPLETE"].dropna(subset=["objective"])
    best = None
    if not done.empty:
        row = done.loc[done["objective"].idxmax() if direction == "maximize" else done["objective"].idxmin()]
        best = {"trial": int(row["trial"]), "objective": float(row["objective"]), **{p: _param(row[p]) for p in params}}
    live = counted(table)
    meta = {
        "study": name,
        "parent_run_id": parent.info.run_id,
        "parent_status": parent.info.status,
        "tracking_uri": tracker.uri,
        "command": tags.get("harness.command", ""),
        "resumed": tags.get("harness.resumed", "0"),
        "space": tags.get("harness.space", "?"),
        "space_source": tags.get("harness.space_source", "?"),
        "space_format": tags.get("harness.space_format", "?"),
        "experiment": tags.get("harness.experiment", "?"),
        "objective": tags.get("harness.objective", "?"),
        "direction": direction,
        "sampler": tags.get("harness.sampler", "?"),
        "sampler_class": parent.data.params.get("sampler.class", "?"),
        "sampler_seed": tags.get("harness.sampler_seed", "?"),
        "pruner": tags.get("harness.pruner", "?"),
        "storage_kind": tags.get("optuna.storage_kind", "?"),
        "max_trials": tags.get("harness.max_trials", "?"),
        "max_parallel": tags.get("harness.max_parallel", "") or "no limit",
        "max_failed": tags.get("harness.max_failed", "") or "no limit",
        "counts": (
            f"{len(live)} counted ({(live['state'] == 'COMPLETE').sum()} complete, "
            f"{(live['state'] == 'PRUNED').sum()} pruned, {(live['state'] == 'FAIL').sum()} failed, "
            f"{(live['state'] == 'RUNNING').sum()} running); {len(table) - len(live)} failed and re-run"
        ),
        "devices": ", ".join(sorted(_unique(tracker, table, "device"))) or "?",
        "prices": ", ".join(sorted(_unique(tracker, table, "price_per_hour"))) or "unknown",
        "host": tags.get("host", "?"),
        "git_commit": tags.get("mlflow.source.git.commit", "?"),
        "versions": ", ".join(
            f"{k.removesuffix('.version')} {tags[k]}"
            for k in ("optuna.version", "mlflow.version", "tensorflow.version", "keras.version")
            if k in tags
        ),
        "cmle": (
            f"{tags['cmle.tier']} = {tags.get('cmle.description', '')}, list price "
            f"{tags.get('cmle.price_per_hour', 'unknown')} $/h"
            if "cmle.tier" in tags
            else ""
        ),
        "started": datetime.fromtimestamp(parent.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_time_s": f"{table['time_s'].sum():.1f}",
        "total_cost_usd": "n/a" if table["cost_usd"].isna().all() else f"{table['cost_usd'].sum():.4f}",
    }
    return StudyReport(table, params, best, meta)


def _unique(tracker: Tracker, table: pd.DataFrame, tag: str) -> set[str]:
    out = set()
    for run_id in table["run_id"].head(20):
        value = tracker.client.get_run(run_id).data.tags.get(tag)
        if value:
            out.add(value)
    return out


def _obj(value: float) -> str:
    """An objective: five significant digits (accuracies near 1 and losses near 0 both stay readable)."""
    return "" if value is None or math.isnan(value) else f"{value:.5g}"


def _num(value: float, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _param(value: Any) -> str:
    """MLflow params are strings: shorten long floats (0.011781448719376511 -> 0.01178)."""
    text = str(value)
    if "." in text or "e" in text.lower():
        try:
            return f"{float(text):.4g}"
        except ValueError:
            pass
    return text


def display_study(report: StudyReport) -> pd.DataFrame:
    t = report.table
    return pd.DataFrame(
        {
            "trial": t["trial"],
            "state": t["state"],
            "MLflow run": t["status"],
            **{p: [_param(v) for v in t[p]] for p in report.params},
            "objective": [_obj(v) for v in t["objective"]],
            "time (s)": [_num(v, 1) for v in t["time_s"]],
            "cost ($)": [_num(v, 4) or "n/a" for v in t["cost_usd"]],
            "re-run of": t["retry_of"],
        }
    )


def study_markdown(report: StudyReport, report_command: str) -> str:
    m = report.meta
    best = report.best
    best_line = (
        f"- **Best: trial {best['trial']}, {m['objective']} = {_obj(best['objective'])}** ("
        + ", ".join(f"{p}={best[p]}" for p in report.params)
        + ")"
        if best
        else "- Best: no trial completed"
    )
    head = [
        f"# Study `{m['study']}`",
        "",
        f"Generated from the MLflow tracking store by `{report_command}`; do not edit by hand.",
        "",
        f"- Study run: `{m['command']}`" + (f" (resumed {m['resumed']} times)" if m["resumed"] != "0" else ""),
        f"- Search space `{m['space']}` ({m['space_source']}, {m['space_format']} format), "
        f"experiment {m['experiment']}",
        f"- Objective {m['objective']} ({m['direction']}); sampler {m['sampler']} seed {m['sampler_seed']} "
        f"({m['sampler_class']}), pruner {m['pruner']}, Optuna storage {m['storage_kind']}",
        f"- Budget: max_trials {m['max_trials']}, max_parallel {m['max_parallel']}, max_failed {m['max_failed']}; "
        f"trials: {m['counts']}",
        f"- MLflow parent run `{m['parent_run_id']}` ({m['parent_status']}), started {m['started']}",
        f"- Device: {m['devices']} on host `{m['host']}`; {m['versions']}; harness commit `{m['git_commit']}`",
        f"- Total trial time {m['total_time_s']} s, cost ${m['total_cost_usd']} (wall time x {m['prices']} $/h, "
        "harness/hardware/prices.yaml)",
    ]
    if m["cmle"]:
        head.append(f"- Cloud ML Engine scale tier {m['cmle']} (for reference; trials ran on the device above)")
    head += [best_line, ""]
    body = display_study(report).to_markdown(index=False, disable_numparse=True)
    return "\n".join(head) + "\n" + body + "\n"


def write_study_report(report: StudyReport, out_dir: Path, report_command: str) -> tuple[Path, Path]:
    """``study_<name>.md`` and ``.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"study_{report.meta['study']}"
    md, csv = out_dir / f"{stem}.md", out_dir / f"{stem}.csv"
    md.write_text(study_markdown(report, report_command), encoding="utf-8")
    report.table.assign(study=report.meta["study"], parent_run_id=report.meta["parent_run_id"]).to_csv(csv, index=False)
    return md, csv


# --- sampler comparison ---------------------------------------------------------------------------


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


@dataclasses.dataclass
class CompareReport:
    summary: pd.DataFrame  # one row per sampler
    studies: pd.DataFrame  # one row per (sampler, repeat)
    curves: list[Curve]
    meta: dict[str, Any]


def compare_study_name(space: str, sampler: str, repeat: int) -> str:
    return f"{space}-cmp-{sampler}-r{repeat}"


def _curve(tracker: Tracker, space: str, sampler: str, repeat: int, direction: str) -> Curve:
    name = compare_study_name(space, sampler, repeat)
    report = study_report(tracker, name)
    t = counted(report.table)
    best: list[float] = []
    elapsed: list[float] = []
    current, clock = math.nan, 0.0
    better = max if direction == "maximize" else min
    for _, row in t.iterrows():
        if row["state"] == "COMPLETE" and not math.isnan(row["objective"]):
            current = row["objective"] if math.isnan(current) else better(current, row["objective"])
        clock += 0.0 if math.isnan(row["time_s"]) else float(row["time_s"])
        best.append(current)
        elapsed.append(clock)
    values = [float(v) for v in t.loc[t["state"] == "COMPLETE", "objective"].dropna()]
    cost = float(t["cost_usd"].sum()) if t["cost_usd"].notna().any() else math.nan
    return Curve(sampler, repeat, name, best, elapsed, cost, values)


def _reach(curve: Curve, target: float, direction: str) -> tuple[float, float]:
    """(trials, seconds) until the best-so-far first reaches ``target``; inf if never."""
    for i, value in enumerate(curve.best_so_far):
        if not math.isnan(value) and (value >= target if direction == "maximize" else value <= target):
            return float(i + 1), curve.elapsed_s[i]
    return math.inf, math.inf


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
) -> CompareReport:
    first = find_study_run(tracker, compare_study_name(space, samplers[0], 0))
    direction = first.data.tags.get("harness.direction", "maximize")
    curves = [_curve(tracker, space, s, r, direction) for s in samplers for r in range(repeats)]
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
        trials_to, time_to = _reach(c, target, direction)
        rows.append(
            {
                "sampler": c.sampler,
                "repeat": c.repeat,
                "study": c.study,
                "trials": len(c.best_so_far),
                "best": c.best_so_far[-1] if c.best_so_far else math.nan,
                "trials_to_target": trials_to,
                "time_to_target_s": time_to,
                "auc": _auc(c, lo, hi, direction, budget),
                "total_time_s": c.elapsed_s[-1] if c.elapsed_s else 0.0,
                "cost_usd": c.cost_usd,
            }
        )
    studies = pd.DataFrame(rows)
    summary_rows = []
    for sampler in samplers:
        s = studies[studies["sampler"] == sampler]
        best = s["best"].dropna()
        summary_rows.append(
            {
                "sampler": sampler,
                "repeats": len(s),
                "best_mean": best.mean() if len(best) else math.nan,
                "best_sd": best.std(ddof=1) if len(best) > 1 else math.nan,
                "reached": int((s["trials_to_target"] < math.inf).sum()),
                "median_trials_to_target": float(s["trials_to_target"].median()),
                "median_time_to_target_s": float(s["time_to_target_s"].median()),
                "auc_mean": s["auc"].mean(),
                "auc_sd": s["auc"].std(ddof=1) if len(s) > 1 else math.nan,
                "time_s_mean": s["total_time_s"].mean(),
                "time_s_total": s["total_time_s"].sum(),
                "cost_usd_mean": s["cost_usd"].mean(),
                "cost_usd_total": s["cost_usd"].sum(),
            }
        )
    tags = first.data.tags
    meta = {
        "space": space,
        "space_source": tags.get("harness.space_source", "?"),
        "experiment": tags.get("harness.experiment", "?"),
        "objective": tags.get("harness.objective", "?"),
        "direction": direction,
        "samplers": list(samplers),
        "repeats": repeats,
        "budget": budget,
        "target": target,
        "target_rule": target_rule,
        "tracking_uri": tracker.uri,
        "host": tags.get("host", "?"),
        "git_commit": tags.get("mlflow.source.git.commit", "?"),
        "versions": ", ".join(
            f"{k.removesuffix('.version')} {tags[k]}" for k in ("optuna.version", "tensorflow.version") if k in tags
        ),
        "device": study_report(tracker, curves[0].study).meta["devices"],
        "params": tags.get("harness.params", ""),
    }
    return CompareReport(pd.DataFrame(summary_rows), studies, curves, meta)


def _pm(mean: float, sd: float, digits: int | None = None) -> str:
    """mean ± sd; objectives with significant digits, fractions (AUC) with ``digits`` decimals."""
    if math.isnan(mean):
        return "n/a"
    if digits is None:
        return _obj(mean) + ("" if math.isnan(sd) else f" ± {sd:.2g}")
    return f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")


def _median(value: float, digits: int = 0) -> str:
    return "not reached" if math.isinf(value) else ("n/a" if math.isnan(value) else f"{value:.{digits}f}")


def display_compare(report: CompareReport) -> pd.DataFrame:
    s = report.summary
    return pd.DataFrame(
        {
            "sampler": s["sampler"],
            "best objective (mean ± sd)": [_pm(m, d) for m, d in zip(s["best_mean"], s["best_sd"], strict=True)],
            "reached target": [f"{r}/{n}" for r, n in zip(s["reached"], s["repeats"], strict=True)],
            "median trials to target": [_median(v) for v in s["median_trials_to_target"]],
            "median time to target (s)": [_median(v, 1) for v in s["median_time_to_target_s"]],
            "AUC best-so-far (mean ± sd)": [_pm(m, d, 3) for m, d in zip(s["auc_mean"], s["auc_sd"], strict=True)],
            "time per study (s)": [f"{v:.1f}" for v in s["time_s_mean"]],
            "cost per study ($)": ["n/a" if math.isnan(v) else f"{v:.4f}" for v in s["cost_usd_mean"]],
            "total cost ($)": ["n/a" if math.isnan(v) else f"{v:.4f}" for v in s["cost_usd_total"]],
        }
    )


def compare_findings(report: CompareReport) -> list[str]:
    """What the numbers say: the winner on each measure, and random vs grid (Bergstra & Bengio 2012)."""
    s = report.summary.set_index("sampler")
    maximize = report.meta["direction"] == "maximize"
    lines = []
    if s["best_mean"].notna().any():
        best = s["best_mean"].idxmax() if maximize else s["best_mean"].idxmin()
        lines.append(f"Best objective on average: **{best}** ({_obj(s.loc[best, 'best_mean'])}).")
    lines.append(f"Largest area under the best-so-far curve (fastest to good values): **{s['auc_mean'].idxmax()}**.")
    reached = s[s["median_trials_to_target"] < math.inf]
    if not reached.empty:
        fastest = reached["median_trials_to_target"].idxmin()
        n = reached.loc[fastest, "median_trials_to_target"]
        lines.append(f"Fewest trials to the target (median): **{fastest}** ({n:.0f}).")
    if "random" in s.index and "grid" in s.index:
        r, g = s.loc["random"], s.loc["grid"]
        diff = (r["best_mean"] - g["best_mean"]) * (1 if maximize else -1)
        verdict = "beats" if diff > 0 else ("ties with" if diff == 0 else "does not beat")
        lines.append(
            f"Random {verdict} grid at equal budget on the best objective ({_obj(r['best_mean'])} vs "
            f"{_obj(g['best_mean'])}); AUC {r['auc_mean']:.3f} vs {g['auc_mean']:.3f}. Bergstra & Bengio (2012) "
            "expect random to win when only a few parameters matter; this is what we measured."
        )
    return lines


def compare_markdown(report: CompareReport, command: str, curves_png: str) -> str:
    m = report.meta
    head = [
        f"# Sampler comparison: `{m['space']}`",
        "",
        f"Generated from the MLflow tracking store by `{command}`; do not edit by hand.",
        "",
        f"- Search space {m['space_source']} (params: {m['params']}), experiment {m['experiment']}",
        f"- Objective {m['objective']} ({m['direction']}); every sampler gets the same budget of "
        f"{m['budget']} full-fidelity trials (no pruning), repeated with sampler seeds 0..{m['repeats'] - 1}; "
        f"one study each (`{m['space']}-cmp-<sampler>-r<seed>`)",
        f"- Target {_obj(m['target'])} ({m['target_rule']}); a repeat that never reaches it counts as infinite "
        "in the medians",
        "- Time = cumulative trial wall time (trials run one after another); AUC = mean over trials 1..budget "
        "of the best-so-far, scaled so that 0 is the worst and 1 the best objective seen in the comparison",
        f"- Device: {m['device']} on host `{m['host']}`; {m['versions']}; harness commit `{m['git_commit']}`",
        *(
            [
                "- Samplers draw with per-trial seeds from (seed, trial number): TPE's random start-up trials "
                "are the random sampler's first trials of the same seed, so their curves coincide until TPE "
                "starts modelling (common random numbers)"
            ]
            if {"random", "tpe"} <= set(m["samplers"])
            else []
        ),
        f"- Curves: [{curves_png}]({curves_png})",
        "",
    ]
    body = display_compare(report).to_markdown(index=False, disable_numparse=True)
    findings = "\n".join(f"- {line}" for line in compare_findings(report))
    per_study = report.studies.assign(
        best=[_obj(v) for v in report.studies["best"]],
        trials_to_target=[_median(v) for v in report.studies["trials_to_target"]],
        time_to_target_s=[_median(v, 1) for v in report.studies["time_to_target_s"]],
        auc=[_num(v, 3) for v in report.studies["auc"]],
        total_time_s=[_num(v, 1) for v in report.studies["total_time_s"]],
        cost_usd=[_num(v, 4) or "n/a" for v in report.studies["cost_usd"]],
    ).to_markdown(index=False, disable_numparse=True)
    return "\n".join(head) + "\n" + body + "\n\n" + findings + "\n\n## Every study\n\n" + per_study + "\n"


def compare_figure(report: CompareReport) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    by_trial, by_time = fig.subplots(1, 2)
    colours = {s: f"C{i}" for i, s in enumerate(report.meta["samplers"])}
    for sampler in report.meta["samplers"]:
        curves = [c for c in report.curves if c.sampler == sampler]
        for c in curves:
            xs = list(range(1, len(c.best_so_far) + 1))
            by_trial.step(xs, c.best_so_far, where="post", color=colours[sampler], alpha=0.25, lw=1)
            by_time.step(c.elapsed_s, c.best_so_far, where="post", color=colours[sampler], alpha=0.5, lw=1)
        n = max((len(c.best_so_far) for c in curves), default=0)
        mean = []
        for i in range(n):
            vals = [c.best_so_far[min(i, len(c.best_so_far) - 1)] for c in curves if c.best_so_far]
            vals = [v for v in vals if not math.isnan(v)]
            mean.append(statistics.fmean(vals) if vals else math.nan)
        by_trial.step(range(1, n + 1), mean, where="post", color=colours[sampler], lw=2.2, label=f"{sampler} (mean)")
        by_time.plot([], [], color=colours[sampler], label=sampler)
    by_trial.xaxis.get_major_locator().set_params(integer=True)
    for ax, xlabel in ((by_trial, "trials"), (by_time, "cumulative trial time (s)")):
        ax.axhline(report.meta["target"], color="grey", ls="--", lw=1, label="target")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {report.meta['objective']} so far")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report.meta['space']}: best-so-far, {report.meta['repeats']} repeats per sampler")
    return fig


def write_compare_report(report: CompareReport, out_dir: Path, command: str) -> tuple[Path, Path, Path]:
    """``compare_<space>.md``, ``.csv`` (per study) and ``compare_<space>_curves.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"compare_{report.meta['space']}"
    md, csv, png = out_dir / f"{stem}.md", out_dir / f"{stem}.csv", out_dir / f"{stem}_curves.png"
    compare_figure(report).savefig(png, dpi=110, bbox_inches="tight")
    md.write_text(compare_markdown(report, command, png.name), encoding="utf-8")
    summary = report.summary.assign(level="sampler")
    studies = report.studies.assign(level="study")
    pd.concat([summary, studies], ignore_index=True).to_csv(csv, index=False)
    return md, csv, png
