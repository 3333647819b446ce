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

from harness._paths import safe_child
from harness.errors import UserError
from harness.report import _core, _html
from harness.report._study import _num, _obj, counted, find_study_run, study_report
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
    summary: pd.DataFrame  # one row per sampler
    studies: pd.DataFrame  # one row per (sampler, repeat)
    curves: list[Curve]
    meta: dict[str, Any]
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there


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
    direction = first.data.tags.get("harness.direction", "maximize")
    curves = [_curve(tracker, space, s, r, direction, b) for b in each for s in samplers for r in range(repeats)]
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
    summary_rows = []
    for backend, sampler in ((b, s) for b in each for s in samplers):
        s = studies[(studies["sampler"] == sampler) & (studies["backend"] == backend)]
        best = s["best"].dropna()
        summary_rows.append(
            {
                "sampler": sampler,
                "backend": backend,
                "repeats": len(s),
                "best_mean": best.mean() if len(best) else math.nan,
                "best_sd": best.std(ddof=1) if len(best) > 1 else math.nan,
                "reached": int((s["trials_to_target"] < math.inf).sum()),
                "median_trials_to_target": float(s["trials_to_target"].median()),
                "median_time_to_target_s": float(s["time_to_target_s"].median()),
                "median_usd_to_target": float(s["usd_to_target"].median()),
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
        "backends": list(backends),
        "repeats": repeats,
        "budget": budget,
        "target": target,
        "target_rule": target_rule,
        "tracking_uri": tracker.display_uri,
        **{k: v for k, v in _core.provenance(tracker, first, ("optuna", "tensorflow")).items() if k in _SHOWN},
        "device": "; ".join(
            dict.fromkeys(study_report(tracker, c.study).meta["devices"] for c in curves if c.repeat == 0)
        ),
        "params": tags.get("harness.params", ""),
        # a comparison has no MLflow run of its own: its HTML goes to the first study's parent run
        "parent_run_id": first.info.run_id,
        "parent_study": compare_study_name(space, samplers[0], 0, each[0]),
    }
    return CompareReport(pd.DataFrame(summary_rows), studies, curves, meta, tracker)


_SHOWN = ("host", "git_commit", "versions")  # what a comparison reports of its first study's provenance


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
    backend = {"backend": s["backend"]} if report.meta.get("backends") else {}
    return pd.DataFrame(
        {
            "sampler": s["sampler"],
            **backend,
            "best objective (mean ± sd)": [_pm(m, d) for m, d in zip(s["best_mean"], s["best_sd"], strict=True)],
            "reached target": [f"{r}/{n}" for r, n in zip(s["reached"], s["repeats"], strict=True)],
            "median trials to target": [_median(v) for v in s["median_trials_to_target"]],
            "median time to target (s)": [_median(v, 1) for v in s["median_time_to_target_s"]],
            "median $ to target": [_median(v, 5) for v in s["median_usd_to_target"]],
            "AUC best-so-far (mean ± sd)": [_pm(m, d, 3) for m, d in zip(s["auc_mean"], s["auc_sd"], strict=True)],
            "time per study (s)": [f"{v:.1f}" for v in s["time_s_mean"]],
            "cost per study ($)": ["n/a" if math.isnan(v) else f"{v:.4f}" for v in s["cost_usd_mean"]],
            "total cost ($)": ["n/a" if math.isnan(v) else f"{v:.4f}" for v in s["cost_usd_total"]],
        }
    )


def compare_findings(report: CompareReport) -> list[str]:
    """What the numbers say: the winner on each measure, and random vs grid (Bergstra & Bengio 2012);
    per backend when the comparison spans several, then the fastest and cheapest way to the target."""
    backends = report.meta.get("backends") or [""]
    lines = []
    for backend in backends:
        s = report.summary[report.summary["backend"] == backend].set_index("sampler")
        where = f"On {backend}: " if backend else ""
        lines += [where + line for line in _findings(s, report.meta["direction"] == "maximize")]
    if len(backends) > 1:
        reached = report.summary[report.summary["median_time_to_target_s"] < math.inf]
        if not reached.empty:
            fast = reached.loc[reached["median_time_to_target_s"].idxmin()]
            lines.append(
                f"Fastest to the target (median): **{fast['sampler']} on {fast['backend']}** "
                f"({fast['median_time_to_target_s']:.1f} s)."
            )
            priced = reached[reached["median_usd_to_target"].notna()]
            if not priced.empty:
                cheap = priced.loc[priced["median_usd_to_target"].idxmin()]
                lines.append(
                    f"Cheapest to the target (median): **{cheap['sampler']} on {cheap['backend']}** "
                    f"(${cheap['median_usd_to_target']:.5f})."
                )
    return lines


def _findings(s: pd.DataFrame, maximize: bool) -> list[str]:
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


def _lead(report: CompareReport) -> list[str]:
    """The comparison's setup and provenance (Markdown and HTML alike; the Markdown adds the curves' link)."""
    m = report.meta
    return [
        f"Search space {m['space_source']} (params: {m['params']}), experiment {m['experiment']}",
        f"Objective {m['objective']} ({m['direction']}); every sampler gets the same budget of "
        f"{m['budget']} full-fidelity trials (no pruning), repeated with sampler seeds 0..{m['repeats'] - 1}; "
        f"one study each (`{m['space']}-cmp-<sampler>-r<seed>{'-<backend>' if m['backends'] else ''}`)"
        + (f", on each backend: {', '.join(m['backends'])}" if m["backends"] else ""),
        f"Target {_obj(m['target'])} ({m['target_rule']}); a repeat that never reaches it counts as infinite "
        "in the medians",
        "Time = cumulative trial wall time (trials run one after another); AUC = mean over trials 1..budget "
        "of the best-so-far, scaled so that 0 is the worst and 1 the best objective seen in the comparison",
        f"Device: {m['device']} on host `{m['host']}`; {m['versions']}; harness commit `{m['git_commit']}`",
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
        auc=[_num(v, 3) for v in report.studies["auc"]],
        total_time_s=[_num(v, 1) for v in report.studies["total_time_s"]],
        cost_usd=[_num(v, 4) or "n/a" for v in report.studies["cost_usd"]],
    )


def _title(report: CompareReport) -> str:
    return f"Sampler comparison: `{report.meta['space']}`"


def compare_markdown(report: CompareReport, command: str, curves_png: str) -> str:
    head = [
        f"# {_title(report)}",
        "",
        _core.generated_by(command),
        "",
        *[f"- {line}" for line in _lead(report)],
        f"- Curves: [{curves_png}]({curves_png})",
        "",
    ]
    body = display_compare(report).to_markdown(index=False, disable_numparse=True)
    findings = "\n".join(f"- {line}" for line in compare_findings(report))
    per_study = _per_study(report).to_markdown(index=False, disable_numparse=True)
    return "\n".join(head) + "\n" + body + "\n\n" + findings + "\n\n## Every study\n\n" + per_study + "\n"


@_html.default_style
def compare_figure(report: CompareReport) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    by_trial, by_time = fig.subplots(1, 2)
    groups = list(dict.fromkeys((c.sampler, c.backend) for c in report.curves))
    colours = {g: f"C{i}" for i, g in enumerate(groups)}
    for group in groups:
        curves = [c for c in report.curves if (c.sampler, c.backend) == group]
        sampler = f"{group[0]} on {group[1]}" if group[1] else group[0]
        for c in curves:
            xs = list(range(1, len(c.best_so_far) + 1))
            by_trial.step(xs, c.best_so_far, where="post", color=colours[group], alpha=0.25, lw=1)
            by_time.step(c.elapsed_s, c.best_so_far, where="post", color=colours[group], alpha=0.5, lw=1)
        n = max((len(c.best_so_far) for c in curves), default=0)
        mean = []
        for i in range(n):
            vals = [c.best_so_far[min(i, len(c.best_so_far) - 1)] for c in curves if c.best_so_far]
            vals = [v for v in vals if not math.isnan(v)]
            mean.append(statistics.fmean(vals) if vals else math.nan)
        by_trial.step(range(1, n + 1), mean, where="post", color=colours[group], lw=2.2, label=f"{sampler} (mean)")
        by_time.plot([], [], color=colours[group], label=sampler)
    by_trial.xaxis.get_major_locator().set_params(integer=True)
    for ax, xlabel in ((by_trial, "trials"), (by_time, "cumulative trial time (s)")):
        ax.axhline(report.meta["target"], color="grey", ls="--", lw=1, label="target")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {report.meta['objective']} so far")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report.meta['space']}: best-so-far, {report.meta['repeats']} repeats per sampler")
    return fig


def write_compare_report(report: CompareReport, out_dir: Path, command: str) -> tuple[Path, Path, Path, Path]:
    """``compare_<space>.md``, ``.csv`` (per study), ``compare_<space>_curves.png`` and ``.html`` (also
    logged to the first study's parent run); a comparison across backends is
    ``compare_<space>_on_<backend>-<backend>...`` (it never replaces the one-backend table)."""
    stem = f"compare_{report.meta['space']}"
    if report.meta.get("backends"):
        stem += "_on_" + "-".join(b.replace(":", "x") for b in report.meta["backends"])
    md, csv, png = (safe_child(out_dir, stem + end, what="report file") for end in (".md", ".csv", "_curves.png"))
    figure = compare_figure(report)
    _core.write_figure(png, figure, dpi=110, bbox_inches="tight")
    _core.write_file(md, compare_markdown(report, command, png.name))
    summary = report.summary.assign(level="sampler")
    studies = report.studies.assign(level="study")
    _core.write_csv(csv, pd.concat([summary, studies], ignore_index=True))
    sections = [
        _html.Section("Samplers", table=display_compare(report)),
        _html.Section("Findings", notes=compare_findings(report)),
        _html.Section("Best so far", figures=[figure], caption="Thin lines: each repeat; thick: the mean per sampler."),
        _html.Section("Every study", table=_per_study(report)),
    ]
    page = _html.publish_html(
        out_dir,
        stem,
        _title(report),
        sections,
        lead=[
            *_lead(report),
            f"Logged to the MLflow parent run `{report.meta['parent_run_id']}` of study "
            f"`{report.meta['parent_study']}` (a comparison has no run of its own)",
        ],
        generated=_core.generated_by(command),
        tracker=report.store,
        run_id=report.meta["parent_run_id"],
    )
    return md, csv, png, page
