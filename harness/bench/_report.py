"""bench.md and bench.html (for people) and bench.json (every raw number) from one benchmark run.

bench.json is the results dict as measured (and what ``--only`` keeps of earlier runs); bench.md and
bench.html are one report :class:`~harness.report.Document` built from typed sections read back from it,
written by the Markdown and HTML renderers every report uses. ``harness report bench`` rebuilds both
from a bench.json alone (bench.json is this benchmark's store).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import report
from harness.errors import UserError
from harness.report import Document, Section, Table, md_code, md_text, number, write_file
from harness.tasks import get_task

COMMAND = "`nox -s bench` (equivalently `harness bench --data-dir ../shared/data`)"
QUICK_COMMAND = "`harness bench --quick --data-dir ../shared/data`"
_FOOTER = "Every raw number, every repeat: `bench.json` beside this file."


def _run(cfg: Mapping[str, Any], key: str) -> Any:
    """A run setting of a measured config: nested by section now, flat in sections kept from before."""
    run = cfg.get("run")
    return run[key] if isinstance(run, dict) else cfg[key]


def _primary(cfg: Mapping[str, Any], section: str) -> str:
    """The primary metric of the task a section measured (its rows' keys are ``final_test_<m>``,
    ``best_test_<m>``), from the config it logged: nested by section now, dotted in section (c)."""
    task = cfg.get("task")
    name = task.get("name") if isinstance(task, dict) else cfg.get("task.name")
    if not isinstance(name, str):
        raise UserError(f"bench section {section} names no task in its config (measured before tasks): run it again")
    return get_task(name).primary


def _n(value: float | None, digits: int = 2) -> str:
    return number(value, f",.{digits}f", "–")


def _each(values: Sequence[float | None], digits: int = 2) -> str:
    return ", ".join(_n(v, digits) for v in values)


@dataclasses.dataclass(frozen=True)
class Meta:
    quick: bool
    date: str
    cpu: str
    gpus: Sequence[str]
    versions: Mapping[str, str]
    git_commit: str
    data_source: str = ""
    data_checksum: str = ""

    @classmethod
    def read(cls, meta: Mapping[str, Any]) -> Meta:
        return cls(
            bool(meta["quick"]),
            str(meta["date"]),
            str(meta["cpu"]),
            list(meta["gpus"] or []),
            dict(meta["versions"]),
            str(meta["git_commit"]),
            str(meta.get("data_source") or ""),
            str(meta.get("data_checksum") or ""),
        )


@dataclasses.dataclass(frozen=True)
class Stamp:
    """When and where a section was measured (``measured`` in bench.json)."""

    date: str | None
    git_commit: str
    command: str | None

    @classmethod
    def read(cls, section: Mapping[str, Any]) -> Stamp | None:
        stamp = section.get("measured") or {}
        if not stamp:
            return None
        return cls(stamp.get("date"), str(stamp.get("git_commit") or "unknown"), stamp.get("command"))

    def kept(self, meta: Meta) -> list[str]:
        """The line under a section kept from an earlier run (``--only``), or none."""
        if self.date == meta.date:
            return []
        when = f"measured {md_text(self.date)} at commit {md_code(self.git_commit[:12])} ({md_text(self.command)})"
        return [f"_Kept from an earlier run: {when}._"]


@dataclasses.dataclass(frozen=True)
class PathRun:
    """One timed run of a path of section (a): the harness, the plain-Keras baseline or ``fit`` on numpy."""

    wall_s: float
    examples_per_s: float
    time_warmup_s: float
    final_primary: float  # the task's primary metric at the last step (``final_test_<primary>``)
    params_count: float = math.nan  # not reported for the numpy row

    @classmethod
    def read(cls, row: Mapping[str, Any], primary: str) -> PathRun:
        return cls(
            row["wall_s"],
            row["examples_per_s"],
            row["time_warmup_s"],
            row[f"final_test_{primary}"],
            row.get("params_count", math.nan),
        )


@dataclasses.dataclass(frozen=True)
class Overhead:
    """Section (a): the harness against plain Keras, interleaved pairs of one rung."""

    rung_index: int
    rung_name: str
    iterations: int
    batch_size: int
    eval_every: int
    repeats: int
    harness: Sequence[PathRun]
    baseline: Sequence[PathRun]
    numpy_fit: PathRun | None
    harness_median_s: float
    baseline_median_s: float
    harness_examples_per_s: float
    baseline_examples_per_s: float
    ratio: float
    target_ratio: float
    store_create_s: float

    @classmethod
    def read(cls, o: Mapping[str, Any]) -> Overhead:
        cfg = o["config"]
        primary = _primary(cfg, "(a)")
        return cls(
            o["rung"]["index"],
            o["rung"]["name"],
            _run(cfg, "iterations"),
            _run(cfg, "batch_size"),
            _run(cfg, "eval_every"),
            o["repeats"],
            [PathRun.read(r, primary) for r in o["harness"]],
            [PathRun.read(r, primary) for r in o["baseline"]],
            None if o["numpy_fit"] is None else PathRun.read(o["numpy_fit"], primary),
            o["harness_median_s"],
            o["baseline_median_s"],
            o["harness_examples_per_s_median"],
            o["baseline_examples_per_s_median"],
            o["ratio"],
            o.get("target_ratio", 1.05),  # sections kept from before issue 23 were held to 1.05
            o["store_create_s"],
        )


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Section (b): ``harness.train.train`` on one rung, its steady state and the phases around it."""

    rung_index: int
    rung_name: str
    steps: float
    batch_size: int
    examples_per_s: float
    time_warmup_s: float
    time_setup_s: float
    time_train_steady_s: float
    time_eval_s: float
    time_total_s: float

    @classmethod
    def read(cls, t: Mapping[str, Any]) -> Throughput:
        return cls(
            t["rung"]["index"],
            t["rung"]["name"],
            t["steps"],
            _run(t["config"], "batch_size"),
            t["examples_per_s"],
            t["time_warmup_s"],
            t["time_setup_s"],
            t["time_train_steady_s"],
            t["time_eval_s"],
            t["time_total_s"],
        )


@dataclasses.dataclass(frozen=True)
class Seed:
    """One seed of section (c): did it reach the target, when, and how much of that was reading the data."""

    seed: int
    reached: bool
    step: float | None
    time_to_target_s: float | None
    data_load_s: float
    best_primary: float  # the best value of the task's primary metric (``best_test_<primary>``)
    examples_per_s: float

    @classmethod
    def read(cls, r: Mapping[str, Any], primary: str) -> Seed:
        keys = ("seed", "reached", "step", "time_to_target_s", "data_load_s", f"best_test_{primary}", "examples_per_s")
        return cls(*(r[k] for k in keys))


@dataclasses.dataclass(frozen=True)
class TimeToAccuracy:
    """Section (c): the mnist-speed rung to its target accuracy, one run per seed (``seeds`` empty: a section
    kept from a harness before (c) measured mnist-speed)."""

    target: float
    seeds: Sequence[Seed] = ()
    ladder: str = ""
    rung: str = ""
    what: str = ""
    experiment: str = ""
    median_s: float | None = None
    target_s: float = 0.0
    meets_target: bool = False

    @classmethod
    def read(cls, c: Mapping[str, Any]) -> TimeToAccuracy:
        if "repeats" not in c:
            return cls(c["target"])
        return cls(
            c["target"],
            [Seed.read(r, _primary(c["config"], "(c)")) for r in c["repeats"]],
            c["rung"]["ladder"],
            c["rung"]["name"],
            c["what"],
            c["experiment"],
            c["median_s"],
            c["target_s"],
            c["meets_target"],
        )


def _paired_verdict(harness: Sequence[Mapping[str, float]], baseline: Sequence[Mapping[str, float]]) -> str:
    """The harness's wall times against the baseline's of the same interleaved pair, in words."""
    from harness.stats import describe_verdict, pairwise

    groups = {
        "harness": {i: r["wall_s"] for i, r in enumerate(harness)},
        "plain Keras": {i: r["wall_s"] for i, r in enumerate(baseline)},
    }
    return describe_verdict(pairwise(groups, higher_is_better=False)[0])


def _header(meta: Meta) -> tuple[str, list[str]]:
    """The line under the title (the command) and the lead bullets (machine, versions, data)."""
    if meta.quick:
        command = (
            f"Command: {QUICK_COMMAND} — **QUICK MODE**: a few dozen steps on small subsets, only to "
            f"check that the benchmark runs; the numbers below mean nothing. Full benchmark: {COMMAND}."
        )
    else:
        command = f"Command: {COMMAND}"
    v = meta.versions
    lead = [
        f"Date: {meta.date}",
        f"Machine: {meta.cpu}; GPUs visible to TensorFlow: {meta.gpus or 'none'}",
        f"TensorFlow {v['tensorflow.version']}, Keras {v['keras.version']}, "
        f"MLflow {v['mlflow.version']}, Python {v['python.version']}",
        f"Git commit: {md_code(meta.git_commit)}",
    ]
    if meta.data_source:
        lead.append(
            f"Data: {md_text(meta.data_source)} (sha256 {md_text(meta.data_checksum[:12])}…), loaded once before timing"
        )
    return command, lead


def _path_row(name: str, median_s: float, runs: Sequence[PathRun], steady: float) -> list[str]:
    """A path's row of section (a): its median, every run, its steady rate, warm-ups and accuracies."""
    every = _each([r.wall_s for r in runs])
    warmups, accuracies = _each([r.time_warmup_s for r in runs]), _each([r.final_primary for r in runs], 4)
    return [name, _n(median_s), every, _n(steady, 0), warmups, accuracies]


def _overhead(o: Overhead, kept: list[str]) -> Section:
    target_met = "met" if o.ratio <= o.target_ratio else "NOT met"
    rows = [
        _path_row("harness", o.harness_median_s, o.harness, o.harness_examples_per_s),
        _path_row("plain Keras, tf.data (baseline)", o.baseline_median_s, o.baseline, o.baseline_examples_per_s),
    ]
    numpy_fit = o.numpy_fit
    if numpy_fit is not None:
        rows.append(
            [
                "plain Keras, `fit` on numpy arrays (informative, 1 run)",
                _n(numpy_fit.wall_s),
                _n(numpy_fit.wall_s),
                _n(numpy_fit.examples_per_s, 0),
                _n(numpy_fit.time_warmup_s),
                _n(numpy_fit.final_primary, 4),
            ]
        )
    params = {r.params_count for r in [*o.harness, *o.baseline]}
    same = (
        f"both models have {params.pop():,.0f} parameters"
        if len(params) == 1
        else f"**the models differ**: parameter counts {sorted(params)}"
    )
    walls = [{"wall_s": r.wall_s} for r in o.harness], [{"wall_s": r.wall_s} for r in o.baseline]
    after = [
        f"**Ratio harness / baseline (median wall time): {o.ratio:.4f}** "
        f"(target ≤ {o.target_ratio:.2f}: {target_met}); {same}.",
        f"Wall times paired by repeat (Wilcoxon signed-rank, shorter is better): {_paired_verdict(*walls)}.",
        f"Creating the fresh temporary tracking store that every harness run above logs to (MLflow's "
        f"one-off SQLite migration + the experiment) took {_n(o.store_create_s)} s, before timing "
        "and not counted above.",
        (
            f"`fit` on numpy arrays took {numpy_fit.wall_s / o.baseline_median_s:.2f}× the wall "
            f"time of the tf.data baseline, at "
            f"{numpy_fit.examples_per_s / o.baseline_examples_per_s:.2f}× its steady "
            "examples/s; the harness and the baseline both feed `fit` from `tf.data`."
            if numpy_fit is not None
            else "The informative `fit`-on-numpy row runs in standard mode only."
        ),
    ]
    return Section(
        f"(a) Harness overhead vs plain Keras — rung {o.rung_index} {md_code(o.rung_name)}",
        text=[
            *kept,
            f"{o.iterations} steps of batch {o.batch_size}, test-set evaluation every "
            f"{o.eval_every} steps; one untimed warm-up of each path, then {o.repeats} interleaved "
            f"harness/baseline pair{'s' if o.repeats != 1 else ''}. Both start from the dataset in memory, "
            "after `clear_session()` + `gc`.",
        ],
        notes=[
            "harness: `run_ladder` of a one-rung, one-seed ladder into a temporary MLflow SQLite "
            "store created for this benchmark (params, metrics, artifacts, TensorBoard and JSONL sinks, "
            "learning-curve PNG). Steady examples/s is the run's `examples_per_s` MLflow metric.",
            "baseline: the same CNN, loss, Adam and learning-rate schedule written inline in plain Keras: "
            "in-memory `tf.data` (shuffle, repeat, batch, map, prefetch), one `model.fit` with "
            "`steps_per_execution` and the same evaluations. Steady examples/s excludes the first "
            "execution and evaluations, as the harness's clock does.",
        ],
        table=Table(
            [
                "path",
                "median wall s",
                "every run (s)",
                "steady examples/s (median)",
                "warm-up s",
                "final test acc",
            ],
            rows,
            align="lrlrrr",
        ),
        after=after,
    )


def _throughput(t: Throughput, kept: list[str]) -> Section:
    return Section(
        f"(b) Training throughput — rung {t.rung_index} {md_code(t.rung_name)}",
        text=[
            *kept,
            f"`harness.train.train`, {t.steps:.0f} steps of batch {t.batch_size}, one "
            "evaluation at the end. Steady state excludes the first execution (tracing) and the evaluation.",
        ],
        table=Table(
            ["steady examples/s", "warm-up s", "setup s", "steady training s", "eval s", "total s"],
            [
                [
                    _n(t.examples_per_s, 0),
                    *(_n(v) for v in (t.time_warmup_s, t.time_setup_s, t.time_train_steady_s, t.time_eval_s)),
                    _n(t.time_total_s),
                ]
            ],
            align="rrrrrr",
        ),
    )


def _time_to_accuracy(c: TimeToAccuracy, kept: list[str]) -> Section:
    if not c.seeds:  # kept from before (c) measured mnist-speed
        return Section(
            f"(c) Time to {c.target:.1%} test accuracy", text=[*kept, "From an older harness: run it again."]
        )
    verdict = "met" if c.meets_target else "NOT met"
    shown = "not every seed reached the target" if c.median_s is None else f"{c.median_s:.2f} s"
    rows = [
        [
            str(r.seed),
            "yes" if r.reached else "no",
            "–" if r.step is None else f"{r.step:.0f}",
            _n(r.time_to_target_s),
            _n(r.data_load_s),
            _n(r.best_primary, 4),
            _n(r.examples_per_s, 0),
        ]
        for r in c.seeds
    ]
    return Section(
        f"(c) MNIST to {c.target:.1%} test accuracy — {md_code(c.ladder)} rung {md_code(c.rung)}",
        text=[
            *kept,
            f"{md_text(c.what)}, on this CPU: `harness bench hardware --experiments {c.experiment} --backends cpu` "
            "measuring time to accuracy only, one run per seed. DAWNBench's rules: the clock starts before the "
            "dataset is read and stops at the end of the first evaluation at or above the target (on the 10,000 "
            "test images), evaluation time included. Its recipe: harness/ladders/mnist-speed.yaml.",
        ],
        table=Table(
            [
                "seed",
                "reached",
                "step",
                "time to target s",
                "of it, reading the data s",
                "best test acc",
                "examples/s",
            ],
            rows,
            align="rlrrrrr",
        ),
        after=[f"**Median time to {c.target:.1%}: {shown}** (target < {c.target_s:g} s: {verdict})."],
    )


def _written_elsewhere(render: Callable[[dict[str, Any]], list[str]]) -> Callable[[dict[str, Any], list[str]], Section]:
    """Sections (d)-(f), whose modules write their own Markdown lines (a heading, a blank line, the body)."""

    def section(results: dict[str, Any], kept: list[str]) -> Section:
        body = render(results)
        return Section(body[0].removeprefix("## "), text=kept, markdown=body[2:])

    return section


def bench_document(results: dict[str, Any]) -> Document:
    """bench.md's document: the header, then each section measured (or kept from an earlier run)."""
    from harness.bench._replay import render_replay
    from harness.bench._study_overhead import render_section
    from harness.bench._yolo import render_yolo

    meta = Meta.read(results["meta"])
    sections: dict[str, Callable[[dict[str, Any], list[str]], Section]] = {
        "overhead": lambda s, kept: _overhead(Overhead.read(s), kept),
        "throughput": lambda s, kept: _throughput(Throughput.read(s), kept),
        "time_to_accuracy": lambda s, kept: _time_to_accuracy(TimeToAccuracy.read(s), kept),
        "study_overhead": _written_elsewhere(render_section),
        "yolo": _written_elsewhere(render_yolo),
        "replay": _written_elsewhere(render_replay),
    }
    built = []
    for key, build in sections.items():
        if key in results:
            stamp = Stamp.read(results[key])
            built.append(build(results[key], stamp.kept(meta) if stamp else []))
    command, lead = _header(meta)
    return Document("Harness benchmarks", lead, built, generated=command, footer=[_FOOTER])


def write_pages(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """bench.md and bench.html of ``results`` (one document, two renderers)."""
    doc = bench_document(results)
    return write_file(out_dir / "bench.md", report.render_markdown(doc)), report.write_html(out_dir / "bench.html", doc)


def write_report(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path, Path]:
    """bench.md, bench.html and bench.json; each written whole (write_file: a temporary file, then renamed)."""
    md, page = write_pages(results, out_dir)
    # bench.json is also where `--only` keeps the sections it does not measure again: never half written
    return md, page, write_file(out_dir / "bench.json", json.dumps(results, indent=2) + "\n")


def read_results(out_dir: Path) -> dict[str, Any]:
    """The results a benchmark run wrote to ``out_dir``'s bench.json, checked enough to render."""
    path = out_dir / "bench.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no bench.json here (expected the output folder of `harness bench`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read it as a benchmark's results ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("meta"), dict):
        raise UserError(f"{path}: not a benchmark's results (expected a JSON object with a 'meta' section)")
    return results
