"""The hardware benchmark's tables, read back from the tracking store.

``harness bench hardware`` logs one run per measurement under a parent run; this module groups
them per experiment x framework x backend x batch size x precision and writes ``hardware.md|csv|png``:
throughput (the median over repetitions of each run's median window), time to accuracy and cost,
and the projection of the talks' headline runs from the measured steady throughput
(``talk_runs.yaml`` beside this module: what each run was, its size and the talk's own figure).
Each row also has the mean and its bootstrap 95% CI over repetitions (``harness.stats.summarize``), and
the rows of one experiment that differ in exactly one of framework, backend, batch size and precision are compared
(``harness.stats.pairwise``: Mann-Whitney U on the repetitions, Holm across the pairs of one experiment
and measure), in ``hardware_comparisons.csv`` and a findings list that names a faster row only where
the test says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness._paths import safe_child
from harness.config import load_yaml
from harness.errors import UserError
from harness.report import _html
from harness.report._core import (
    KERAS_VERSIONS,
    children,
    generated_by,
    md_code,
    md_commit,
    md_text,
    number,
    provenance,
    require_store,
    search,
    write_csv,
)
from harness.report._document import Document, Figure, Section
from harness.report._publish import publish
from harness.stats import ALPHA, NO_DIFFERENCE, PairTest, format_p, pairwise, smallest_testable, summarize, winner
from harness.tracking import FRAMEWORK_TAG, BenchHardwareRecord, Tracker, kind_filter

EXPERIMENT = "bench-hardware"
_FRAMEWORK = f"tags.{FRAMEWORK_TAG}"
_GROUP = [
    "tags.bench.experiment",
    _FRAMEWORK,
    "tags.bench.backend",
    "tags.device",
    "tags.bench.batch_size",
    "tags.bench.precision",
]
_KEYS = ("experiment", "framework", "backend", "device", "batch", "precision")
# compared one at a time
_VARIES = {"framework": "framework", "backend": "backend", "batch": "batch size", "precision": "precision"}


@dataclasses.dataclass(frozen=True)
class TalkRun:
    """A headline run of the talks, to project on measured hardware."""

    name: str
    experiment: str  # the benchmark experiment whose throughput it is projected from
    examples: int  # examples (images, tiles) the run trains on: iterations x batch
    how: str  # where the size comes from
    talk: str  # the talk's own time and cost, quoted


def talk_runs() -> list[TalkRun]:
    text = resources.files("harness.report").joinpath("talk_runs.yaml").read_text(encoding="utf-8")
    return [TalkRun(**row) for row in load_yaml(text, "harness/report/talk_runs.yaml")]


@dataclasses.dataclass(frozen=True)
class HardwareReport:
    throughput: pd.DataFrame
    time_to_accuracy: pd.DataFrame
    projections: pd.DataFrame
    meta: dict[str, str]
    store: Tracker | None = dataclasses.field(default=None, repr=False, compare=False)  # its HTML is logged there
    comparisons: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # a row per pair of rows
    findings: tuple[str, ...] = ()  # what the comparisons say, in words
    frameworks: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # framework x backend, side by side


def find_parent(tracker: Tracker, run_id: str | None) -> Any:
    require_store(tracker, "harness bench hardware")
    if run_id is not None:
        return tracker.client.get_run(run_id)
    exp = tracker.client.get_experiment_by_name(EXPERIMENT)
    runs = [] if exp is None else search(tracker, [exp.experiment_id], kind_filter(BenchHardwareRecord.KIND))
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.status == "FINISHED"]
    if not parents:
        raise UserError(f"no finished `harness bench hardware` run in {tracker.display_uri}; run it first")
    return max(parents, key=lambda r: r.info.start_time)


def _spread(values: pd.Series, fmt: str) -> str:
    """``median [min, max]`` over repetitions (the median alone for one)."""
    v = values.dropna().astype(float)
    if v.empty:
        return ""
    if len(v) == 1:
        return format(v.iloc[0], fmt)
    return f"{format(v.median(), fmt)} [{format(v.min(), fmt)}, {format(v.max(), fmt)}]"


def _column(g: pd.DataFrame, name: str) -> pd.Series:
    """A metric's values over the group's runs (nan where a run lacks it, all nan where none has it)."""
    return g[name].astype(float) if name in g else pd.Series(np.nan, index=g.index)


def _count(values: pd.Series) -> int:
    return int(np.isfinite(values.astype(float)).sum())


def _mean_ci(values: pd.Series, fmt: str) -> str:
    """``mean [low, high]``: the mean over repetitions and its bootstrap 95% CI (the mean alone for one)."""
    s = summarize(values.astype(float).tolist())
    if s.n == 0:
        return ""
    if not s.mean_ci.defined:
        return format(s.mean, fmt)
    return f"{format(s.mean, fmt)} [{format(s.mean_ci.low, fmt)}, {format(s.mean_ci.high, fmt)}]"


def _rows(frame: pd.DataFrame) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """Per experiment x framework x backend x device x batch x precision: the row's key columns and its runs
    (a run from before the framework tag trained on TensorFlow)."""
    framework = frame[_FRAMEWORK].fillna("tensorflow") if _FRAMEWORK in frame else "tensorflow"
    frame = frame.assign(**{_FRAMEWORK: framework})
    for key, g in frame.groupby(_GROUP, sort=False):
        yield dict(zip(_KEYS, key, strict=True)), g


def _throughput(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row, g in _rows(frame):
        unit = g["tags.bench.unit"].iloc[0]
        price = g["tags.price_per_hour"].iloc[0]
        rows.append(
            {
                **row,
                "reps": len(g),
                "examples/s, median [min, max]": _spread(g["metrics.bench_examples_per_s"], ",.1f") + f" {unit}",
                "examples_per_s": float(g["metrics.bench_examples_per_s"].median()),
                "step ms": _spread(g["metrics.bench_step_ms"], ",.1f"),
                "compile s": _spread(g["metrics.bench_compile_s"], ".1f"),
                "peak memory MiB": number(g["metrics.bench_peak_memory_mb"].max(), ",.0f"),
                "$/h": price,
                "$ per 1M examples": _spread(g.get("metrics.bench_usd_per_million_examples", pd.Series()), ".4f"),
                "n": _count(g["metrics.bench_examples_per_s"]),
                "examples/s, mean [95% CI]": _mean_ci(g["metrics.bench_examples_per_s"], ",.1f"),
                "$ per 1M examples, mean [95% CI]": _mean_ci(
                    _column(g, "metrics.bench_usd_per_million_examples"), ".4f"
                ),
            }
        )
    return pd.DataFrame(rows)


def _tta(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row, g in _rows(frame):
        reached = g["metrics.bench_reached"].fillna(0).astype(float)
        rows.append(
            {
                **row,
                "target %": f"{100 * float(g['tags.bench.target'].iloc[0]):.2f}",
                "reached": f"{int(reached.sum())}/{len(g)}",
                "time to target s, median [min, max]": _spread(
                    g.get("metrics.bench_time_to_target_s", pd.Series()), ".1f"
                ),
                "of which data s": _spread(g["metrics.bench_data_load_s"], ".2f"),
                "step at target": _spread(g.get("metrics.bench_step_at_target", pd.Series()), ".0f"),
                "$ to target": _spread(g.get("metrics.bench_usd_to_target", pd.Series()), ".5f"),
                "n": _count(_column(g, "metrics.bench_time_to_target_s")),  # the repetitions that reached it
                "time to target s, mean [95% CI]": _mean_ci(_column(g, "metrics.bench_time_to_target_s"), ".1f"),
                "$ to target, mean [95% CI]": _mean_ci(_column(g, "metrics.bench_usd_to_target"), ".5f"),
            }
        )
    return pd.DataFrame(rows)


def _projections(throughput: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for run in talk_runs():
        measured = throughput[throughput["experiment"] == run.experiment] if len(throughput) else throughput
        for _, m in measured.iterrows():
            hours = run.examples / m["examples_per_s"] / 3600
            price = m["$/h"]
            rows.append(
                {
                    "talk's run": run.name,
                    "size": run.how,
                    "projected on": f"{m['framework']} on {m['backend']}: {m['device']}, batch {m['batch']}, "
                    f"{m['precision']}",
                    "from throughput": f"{m['examples_per_s']:,.1f}/s ({run.experiment})",
                    "projected hours": f"{hours:,.2f}",
                    "projected $": "" if price in ("", "unknown", None) else f"{hours * float(price):,.2f}",
                    "the talk": run.talk,
                }
            )
    return pd.DataFrame(rows)


def _side_by_side(throughput: pd.DataFrame, tta: pd.DataFrame) -> pd.DataFrame:
    """Per experiment, batch and precision: a column per framework x backend of the median examples/s, and
    of the median time to target; empty unless more than one framework was measured."""
    if not len(throughput) and not len(tta):
        return pd.DataFrame()
    rows = pd.concat([t for t in (throughput, tta) if len(t)])
    if rows["framework"].nunique() < 2:
        return pd.DataFrame()
    keys = ["experiment", "batch", "precision"]
    parts, order = [], []  # the columns in the order measured
    for table, column, what in (
        (throughput, "examples/s, median [min, max]", "examples/s"),
        (tta, "time to target s, median [min, max]", "s to target"),
    ):
        if not len(table):
            continue
        median = table[column].astype(str).str.split(" [", n=1, regex=False).str[0]  # the median alone
        if "reached" in table:
            median = median.where(median != "", "not reached (" + table["reached"] + ")")
        where = table["framework"] + " " + table["backend"]
        order.extend(where)
        cells = table.assign(measure=what, where=where, value=median)
        parts.append(
            cells.pivot_table(index=[*keys, "measure"], columns="where", values="value", aggfunc="first", sort=False)
        )
    wide = pd.concat(parts)[list(dict.fromkeys(order))].reset_index()
    wide.columns.name = None
    return wide.fillna("")


@dataclasses.dataclass(frozen=True)
class _Measure:
    """What the comparisons test: one value per run, and which way is faster."""

    name: str
    higher_is_better: bool
    values: Callable[[pd.DataFrame], pd.Series]  # a group's runs -> a value each
    ratio: str  # what the ratio of medians is a ratio of, in words


def _throughput_values(g: pd.DataFrame) -> pd.Series:
    return _column(g, "metrics.bench_examples_per_s")


def _tta_values(g: pd.DataFrame) -> pd.Series:
    """Seconds to the target; inf (censored: slower than any that got there) where it was not reached."""
    reached = _column(g, "metrics.bench_reached").fillna(0.0) > 0
    return _column(g, "metrics.bench_time_to_target_s").where(reached, math.inf)


_THROUGHPUT = _Measure("throughput", True, _throughput_values, "the examples/s")
_TTA = _Measure("time to accuracy", False, _tta_values, "the time")


@dataclasses.dataclass(frozen=True)
class _Sample:
    """One row of a table (experiment x framework x backend x device x batch x precision) and its repetitions."""

    key: dict[str, Any]
    values: dict[Hashable, float]  # run id -> value

    @property
    def name(self) -> str:
        where = f"{self.key['framework']} {self.key['backend']}"
        return f"{where} b{self.key['batch']} {self.key['precision']} ({self.key['device']})"

    def shown(self, dimension: str) -> str:
        """The row by the one thing it varies in: ``gpu``, ``batch 64``, ``mixed_float16``."""
        value = str(self.key[dimension])
        return f"batch {value}" if dimension == "batch" else value

    def at(self, dimension: str) -> str:
        """What the compared rows share: ``tensorflow, batch 64, float32`` when they differ in backend."""
        return ", ".join(self.shown(d) for d in _VARIES if d != dimension)


@dataclasses.dataclass(frozen=True)
class _Compared:
    """A pair of rows of one experiment that differ in ``dimension`` alone, and its test."""

    measure: _Measure
    dimension: str
    a: _Sample
    b: _Sample
    test: PairTest

    @property
    def ratio(self) -> float:
        """a's median / b's (nan where a median is censored or b's is zero)."""
        ma, mb = (float(np.median(list(s.values.values()))) for s in (self.a, self.b))
        return ma / mb if math.isfinite(ma) and math.isfinite(mb) and mb > 0 else math.nan

    @property
    def faster(self) -> _Sample:
        return self.a if self.test.verdict == "better" else self.b

    @property
    def slower(self) -> _Sample:
        return self.b if self.test.verdict == "better" else self.a


def _samples(frame: pd.DataFrame, measure: _Measure) -> dict[str, list[_Sample]]:
    """Per experiment, its rows in the order measured."""
    out: dict[str, list[_Sample]] = {}
    for row, g in _rows(frame):
        values = measure.values(g)
        runs: dict[Hashable, float] = {str(r): float(v) for r, v in zip(g["run_id"], values, strict=True)}
        out.setdefault(str(row["experiment"]), []).append(_Sample(row, runs))
    return out


def _one_apart(samples: Sequence[_Sample]) -> list[tuple[_Sample, _Sample, str]]:
    """The pairs of rows that differ in exactly one of framework, backend, batch size and precision."""
    pairs = []
    for i, a in enumerate(samples):
        for b in samples[i + 1 :]:
            differ = [d for d in _VARIES if a.key[d] != b.key[d]]
            if len(differ) == 1:
                pairs.append((a, b, differ[0]))
    return pairs


def _compare(frame: pd.DataFrame, measure: _Measure) -> list[_Compared]:
    """Every experiment's one-apart pairs: Mann-Whitney on the repetitions, Holm across one experiment's pairs."""
    out = []
    for samples in _samples(frame, measure).values():
        pairs = _one_apart(samples)
        if not pairs:
            continue
        groups = {s.name: s.values for s in samples}
        tests = pairwise(
            groups,
            higher_is_better=measure.higher_is_better,
            paired=False,
            pairs=[(a.name, b.name) for a, b, _ in pairs],
        )
        out += [_Compared(measure, d, a, b, t) for (a, b, d), t in zip(pairs, tests, strict=True)]
    return out


def _verdict(c: _Compared) -> str:
    return f"{c.faster.shown(c.dimension)} faster" if c.test.significant else c.test.verdict


def _needed(t: PairTest) -> str:
    if t.verdict != NO_DIFFERENCE:
        return ""
    return "n/a" if t.needed is None else str(t.needed)


def _comparisons(compared: Sequence[_Compared]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "experiment": c.a.key["experiment"],
                "measure": c.measure.name,
                "varies": _VARIES[c.dimension],
                "at": c.a.at(c.dimension),
                "a": c.a.shown(c.dimension),
                "b": c.b.shown(c.dimension),
                "n": f"{c.test.n_a}, {c.test.n_b}",
                "ratio of medians (a/b)": "n/a" if math.isnan(c.ratio) else f"{c.ratio:.2f}",
                "p (Holm)": format_p(c.test.p_holm),
                "verdict": _verdict(c),
                "repeats needed": _needed(c.test),
                "p_holm": c.test.p_holm,
            }
            for c in compared
        ]
    )


def _faster_words(c: _Compared) -> str:
    ratio = c.ratio if c.faster is c.a else (1 / c.ratio if c.ratio else math.nan)
    median = "" if math.isnan(ratio) else f"median {ratio:.2f}x {c.measure.ratio}, "
    return (
        f"{md_text(c.faster.shown(c.dimension))} faster than {md_text(c.slower.shown(c.dimension))} "
        f"({median}p = {format_p(c.test.p_holm)}, Holm)"
    )


def _noise(tested: Sequence[_Compared]) -> str:
    """Why a family of pairs is within noise: its p, and what it would take to tell."""
    if len(tested) > 1:
        return f"smallest p = {format_p(min(c.test.p_holm for c in tested))}, Holm"
    t = tested[0].test
    if t.needed:
        return f"p = {format_p(t.p_holm)}, Holm; about {t.needed} repetitions per row would detect the difference seen"
    return f"p = {format_p(t.p_holm)}, Holm" + ("; no difference observed" if t.effect == 0 else "")


def _finding(family: Sequence[_Compared]) -> str:
    """The rows of one experiment that differ in one dimension, at the same other two, in one sentence."""
    first, dimension = family[0], family[0].dimension
    head = (
        f"{md_text(first.a.key['experiment'])}, {first.measure.name} by {_VARIES[dimension]} "
        f"({md_text(first.a.at(dimension))})"
    )
    rows = list(dict.fromkeys(s for c in family for s in (c.a.name, c.b.name)))
    shown = {s.name: md_text(s.shown(dimension)) for c in family for s in (c.a, c.b)}  # Markdown and HTML notes
    tested = [c for c in family if c.test.verdict != "not testable"]
    if not tested:
        return f"{head}: not testable ({first.test.note})"
    significant = [c for c in tested if c.test.significant]
    if not significant:
        return f"{head}: {' vs '.join(shown[r] for r in rows)} within noise ({_noise(tested)})"
    parts = [_faster_words(c) for c in significant]
    best = winner(rows, [c.test for c in family]) if len(rows) > 2 else None
    if best is not None:
        parts.insert(0, f"{shown[best]} is the fastest")
    if len(tested) > len(significant):
        parts.append(f"the other pairs within noise ({_noise([c for c in tested if not c.test.significant])})")
    return f"{head}: " + "; ".join(parts)


def _untestable(compared: Sequence[_Compared]) -> str:
    """The sentence that replaces the findings when no pair could be tested."""
    most = max(max(c.test.n_a, c.test.n_b) for c in compared)
    need = (
        f"Mann-Whitney needs at least 2 repetitions per row, and {smallest_testable(ALPHA, paired=False)} to reach "
        f"p < {ALPHA} on a single pair (`harness bench hardware --repeats 5`)"
    )
    if most <= 1:
        return f"With one repetition per row, no comparison can be tested: {need}."
    return f"No comparison can be tested: every pair has a row with fewer than 2 repetitions; {need}."


def _findings(compared: Sequence[_Compared]) -> tuple[str, ...]:
    if not compared:
        return ()
    if all(c.test.verdict == "not testable" for c in compared):
        return (_untestable(compared),)
    families: dict[tuple[str, str, str, str], list[_Compared]] = {}
    for c in compared:
        key = (str(c.a.key["experiment"]), c.measure.name, c.dimension, c.a.at(c.dimension))
        families.setdefault(key, []).append(c)
    return tuple(_finding(f) for f in families.values())


def hardware_report(tracker: Tracker, run_id: str | None = None) -> HardwareReport:
    parent = find_parent(tracker, run_id)
    frame = children(tracker, parent)
    if frame.empty:
        raise UserError(f"parent run {parent.info.run_id} has no measurements")
    frame = frame[frame["status"] == "FINISHED"].sort_values("start_time")  # rows in the order measured
    thr = frame[frame["tags.bench.measure"] == "throughput"]
    tta = frame[frame["tags.bench.measure"] == "time-to-accuracy"]
    throughput = _throughput(thr) if len(thr) else pd.DataFrame()
    meta = provenance(tracker, parent, (*KERAS_VERSIONS, "mlflow"))
    meta.update({k: parent.data.tags.get(f"bench.{k}", "") for k in ("repeats", "windows", "quick")})
    # quick mode measures tiny stand-ins (32x32 ResNet, synthetic scenes): nothing to project from
    projections = _projections(throughput) if meta["quick"] != "true" else pd.DataFrame()
    compared = [*_compare(thr, _THROUGHPUT), *_compare(tta, _TTA)]
    to_target = _tta(tta) if len(tta) else pd.DataFrame()
    return HardwareReport(
        throughput,
        to_target,
        projections,
        meta,
        tracker,
        comparisons=_comparisons(compared),
        findings=_findings(compared),
        frameworks=_side_by_side(throughput, to_target),
    )


def _usd_per_million(row: Any) -> float:
    """$ per million examples at the row's median throughput; nan where the price is unknown."""
    try:
        price = float(row["$/h"])
    except (TypeError, ValueError):
        return float("nan")
    return price / 3600 / row["examples_per_s"] * 1e6 if row["examples_per_s"] > 0 else float("nan")


@_html.default_style
def hardware_figure(report: HardwareReport) -> Any:
    """Per experiment, a bar per backend x batch x precision: throughput, and cost per million
    examples where the backend has a price (matplotlib's Figure API: no pyplot state)."""
    from matplotlib.figure import Figure

    t = report.throughput
    cost = t.apply(_usd_per_million, axis=1) if len(t) else pd.Series(dtype=float)
    priced = bool(cost.notna().any())
    exps = list(dict.fromkeys(t["experiment"]))
    several = "framework" in t and t["framework"].nunique() > 1  # bars name the framework where it varies

    def frameworks(r: Any) -> str:
        return f"{r.framework} " if several else ""

    fig = Figure(figsize=(12 if priced else 8, 1.2 + 0.9 * len(t)), layout="constrained")
    axes = fig.subplots(len(exps), 2 if priced else 1, squeeze=False)
    for row, exp in zip(axes, exps, strict=True):
        mine = t["experiment"] == exp
        rows = t[mine]
        several = "framework" in t and t["framework"].nunique() > 1  # name the framework where it varies
        labels = [
            f"{r.framework + ' ' if several else ''}{r.backend} b{r.batch} {r.precision}" for r in rows.itertuples()
        ]
        row[0].barh(labels, rows["examples_per_s"], color="tab:blue")
        row[0].set_title(f"{exp}: throughput", fontsize=9, loc="left")
        row[0].set_xlabel("examples/s (median over repetitions)", fontsize=8)
        if priced:
            row[1].barh(labels, cost[mine].fillna(0.0), color="tab:orange")
            row[1].set_title(f"{exp}: cost", fontsize=9, loc="left")
            row[1].set_xlabel("$ per 1M examples at that throughput (0: no price)", fontsize=8)
        for ax in row:
            ax.tick_params(labelsize=8)
            ax.invert_yaxis()  # rows top-down in the order measured, as in the table
    return fig


def _lead(m: dict[str, str]) -> list[str]:
    """The benchmark's provenance and method (text from the store through md_text)."""
    code = {k: md_code(v) for k, v in m.items()}
    return [
        f"Benchmark run: {code['command']}",
        f"MLflow parent run {code['parent_run_id']} ({m['parent_status']}), started {m['started']}, "
        f"host {code['host']}; {md_text(m['versions'])}; harness commit {md_commit(m['git_commit'])}",
        f"{md_text(m['repeats'])} repetitions per row{' (quick mode: checks only)' if m['quick'] == 'true' else ''}. "
        f"Throughput: after one untimed warm-up execution (tracing and compilation, shown as *compile s*), "
        f"{md_text(m['windows'])} timed windows of a fixed number of steps; each run's rate is its median window, "
        "the row shows the median [min, max] over repetitions. Peak memory: the GPU's peak, or on a CPU the "
        "process's resident memory at window ends.",
        "Time to accuracy (DAWNBench's rule): from before the dataset is read to the first evaluation at or "
        "above the target, evaluation time included.",
        "Cost = time x the backend's price per hour (harness/hardware/prices.yaml, each row with its source "
        "and date). A batch size other than the experiment's own keeps its configured learning rate.",
        "*mean [95% CI]*: the mean over the row's *n* repetitions (for time to accuracy, those that reached the "
        "target) and its seeded bootstrap (BCa) 95% confidence interval; one repetition has no interval.",
    ]


_TITLE = "Hardware: throughput, time to accuracy and cost"
_QUICK = "**QUICK MODE**: tiny stand-ins that check the benchmark runs; these are not measurements."
_PROJECTED = (
    "Projected = the run's examples / the steady throughput measured above (no evaluation, data "
    "loading or start-up), x the backend's price. These are projections, not runs."
)
_PROJECTIONS = "What the talks' runs would take here (projections)"
_COMPARISONS = "Comparisons"
_FRAMEWORKS = "Framework x backend"
_SIDE_BY_SIDE = (
    "The same rows side by side, a column per Keras framework and backend: the median examples/s, and the median "
    "seconds to the target, over repetitions (the tables above have their spread; the comparisons below, their tests)."
)
_COMPARED = (
    "Rows of one experiment that differ in exactly one of framework, backend, batch size and precision, compared on "
    "throughput (higher is better) and time to accuracy (lower is better; a repetition that never reached the "
    "target counts as slower than every one that did): Mann-Whitney U on the repetitions (unpaired), p "
    f"Holm-corrected across the pairs of one experiment and measure. A row is named faster only where p (Holm) < "
    f"{ALPHA}; otherwise the difference is within noise, and *repeats needed* is the repetitions per row that "
    "would detect the observed difference (power 0.8). *ratio of medians*: a's median / b's."
)
_NO_PAIRS = "(no two rows of one experiment differ in just one of framework, backend, batch size and precision)"


def _comparison_section(report: HardwareReport, table: pd.DataFrame) -> Section:
    """The method, the findings, the table."""
    if not len(table):
        return Section(_COMPARISONS, text=[_NO_PAIRS])
    return Section(_COMPARISONS, text=[_COMPARED], notes=report.findings, table=table)


def hardware_document(report: HardwareReport, command: str, figure_file: str = "hardware.png") -> Document:
    """Throughput (with its chart, ``figure_file`` beside the Markdown), time to accuracy, the comparisons
    and the projections of the talks' runs."""
    quick = report.meta["quick"] == "true"
    throughput = report.throughput.drop(columns=["examples_per_s"]) if len(report.throughput) else pd.DataFrame()
    compared = report.comparisons.drop(columns=["p_holm"]) if len(report.comparisons) else pd.DataFrame()
    figure = hardware_figure(report) if len(report.throughput) else None
    # constrained layout already: written without bbox_inches="tight", as ever
    figures = [Figure(figure, file=figure_file, tight=False)] if figure is not None else []
    sections = [Section("Throughput", table=throughput, figures=figures)]
    if len(report.time_to_accuracy):
        sections.append(Section("Time to accuracy", table=report.time_to_accuracy))
    if len(report.frameworks):
        sections.append(Section(_FRAMEWORKS, text=[_SIDE_BY_SIDE], table=report.frameworks))
    if len(report.throughput) or len(report.time_to_accuracy):
        sections.append(_comparison_section(report, compared))
    if len(report.projections):
        sections.append(Section(_PROJECTIONS, text=[_PROJECTED], table=report.projections))
    return Document(
        _TITLE, _lead(report.meta), sections, generated=generated_by(command), banner=_QUICK if quick else ""
    )


def write_hardware(report: HardwareReport, out_dir: Path, command: str, stem: str = "hardware") -> list[Path]:
    """``<stem>.md``, ``.csv``, ``_comparisons.csv``, ``_frameworks.csv``, ``_projections.csv``, ``.png`` and
    ``.html`` (also logged to the bench's parent run)."""
    doc = hardware_document(report, command, f"{stem}.png")
    files = publish(doc, out_dir, stem, report.throughput, tracker=report.store, run_id=report.meta["parent_run_id"])
    written = [files.md, files.csv]
    tables = (
        ("comparisons", report.comparisons),
        ("frameworks", report.frameworks),
        ("projections", report.projections),
    )
    for suffix, table in tables:
        if len(table):
            written.append(write_csv(safe_child(out_dir, f"{stem}_{suffix}.csv", what="report file"), table))
    return [*written, *files.figures, files.html]
