"""Run a ladder: one MLflow parent run, one child run per rung, variant and seed.

A thin driver on :class:`harness.executor.Executor`: it resolves the configs,
opens the parent run and asks the executor for each child run (which resolves
each run's own backend, so ``--vary backend=cpu,gpu`` really runs both). Ctrl-C
ends the current child run and the parent run KILLED; finished rungs stay in the
store, complete and reportable. Stopped before the first rung started, it leaves no parent run.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from harness import interrupts
from harness._paths import check_name
from harness._secrets import redact_text
from harness.errors import ConfigError
from harness.executor import Executor
from harness.ladders._request import LadderRequest
from harness.ladders._spec import Ladder, Rung
from harness.tasks import get_task
from harness.tracking import LadderRecord, ProgressSink, RungRecord, Tracker, environment_tags, ladder_experiment


def run_ladder(request: LadderRequest, tracker: Tracker, progress: Callable[[str], None] = print) -> str:
    """Run every rung x variant x seed; return the parent run id."""
    ladder = request.ladder
    # names become report files and TensorBoard folders: refused before any run exists, not after
    check_name(ladder.name, f"{ladder.source}: ladder name", ConfigError)
    for rung in ladder.rungs:
        check_name(rung.name, f"{ladder.source}: rung {rung.index} name", ConfigError)
    configs = request.variant_configs()
    priced = request.priced_as
    executor = Executor(
        tracker,
        request.data_dir,
        request.prices,
        request.tensorboard_dir,
        request.datasets,
        priced_as=None if priced is None else priced.hardware,
    )
    fallback: dict[str, str] = {}
    if priced is not None:  # the file chose the backend; one this machine lacks falls back, as a study's tier does
        for backend in dict.fromkeys(cfg.run.backend for _, _, cfg in configs):
            try:
                executor.placement(backend)
            except ConfigError as exc:
                progress(
                    f"warning: {priced.where} asks for backend {backend!r}, which this machine lacks ({exc}); "
                    "running on backend=auto, each run priced as the hardware it used (the tier is in the cmle.* tags)"
                )
                fallback = {"cmle.fallback": f"backend=auto: this machine lacks {backend!r}"}
        if fallback:
            request = dataclasses.replace(request, overrides={**request.overrides, "backend": "auto"})
            configs = request.variant_configs()
            executor = Executor(tracker, request.data_dir, request.prices, request.tensorboard_dir, request.datasets)
    executor.prepare([cfg for _, _, cfg in configs])  # data and backends checked before any run exists
    task = get_task(configs[0][2].task.name)
    first = executor.placement(configs[0][2].run.backend, configs[0][2].run.framework)
    shared = {"ladder": ladder.name, "scale": request.scale, "task": task.name, "metric": ladder.metric}
    base_tags = {**environment_tags(), **({} if priced is None else priced.tags), **fallback}
    variants = tuple(label for label in dict.fromkeys(v for _, v, _ in configs) if label)
    for orphan in tracker.end_orphans():
        progress(f"ended KILLED: run {orphan.run_id} ({orphan.experiment}: {orphan.name}); {orphan.owner} is gone")
    exp_id = tracker.experiment_id(ladder_experiment(ladder.name))
    checksums = {f"{cfg.data.name}:{executor.data(cfg).checksum}" for _, _, cfg in configs}
    parent_tags = {
        **base_tags,
        **first.tags(),  # the first rung's; each child run carries its own
        **LadderRecord(
            **shared,
            seeds=request.seeds,
            rungs_selected=ladder.selected,  # "" = every rung: reports prefer such complete runs
            variants=variants,
            command=redact_text(request.command),
            ladder_source=ladder.source,
            ladder_notes="\n".join(ladder.notes),
        ).to_tags(),
        "data.checksum": ",".join(sorted(checksums)),
    }
    interrupts.check()  # stopped while the data loaded: no parent run at all
    # stopped after it exists but before a rung started: nothing to keep, so it is deleted (not left KILLED)
    with tracker.run(exp_id, f"{ladder.name}-{request.scale}", parent_tags, delete_if_interrupted_empty=True) as parent:
        progress(f"MLflow parent run {parent.run_id} in {tracker.display_uri}")
        executor.invocation = f"{time.strftime('%Y%m%d-%H%M%S')}-{parent.run_id[:8]}"
        parent.log_text(yaml.safe_dump(_ladder_dump(ladder, request), sort_keys=False), "ladder.yaml")
        parent.log_params(
            {
                "ladder": ladder.name,
                "scale": request.scale,
                "seeds": request.seeds,
                "base_seed": request.base_seed,
                "rungs": ladder.selected or "all",
                "variants": ";".join(variants) or "none",
                "overrides": yaml.safe_dump(dict(request.overrides), default_flow_style=True).strip()[:500],
            }
        )
        summary: dict[str, list[float]] = {}  # parent metric -> each seed's value, logged as their mean
        position = 1
        for rung, variant, cfg in configs:
            for i in range(request.seeds):
                interrupts.check()
                seed_cfg = cfg.with_seed(request.base_seed + i)
                tags = {
                    **base_tags,
                    **RungRecord(
                        **shared,
                        rung=rung.name,
                        rung_index=rung.index,
                        rung_changes=rung.changes,
                        rung_note=rung.note,
                        variant=variant,
                        reference=rung.reference,
                        seed=seed_cfg.run.seed,
                    ).to_tags(),
                }
                name = "-".join(filter(None, [f"{rung.index:02d}", rung.name, variant, f"s{seed_cfg.run.seed}"]))
                shown = ProgressSink(
                    f"[{position}/{len(configs) * request.seeds}] {name}",
                    seed_cfg.run.iterations,
                    ladder.metric,
                    maximize=task.directions.get(ladder.metric.removeprefix("test_"), "maximize") == "maximize",
                    percent=ladder.metric.removeprefix("test_") in task.percent,
                )
                position += 1
                # a run that trains in other processes (multiworker:N, another framework): its progress is in their log
                here = executor.trains_here(seed_cfg)
                outcome = executor.run(
                    exp_id, name, seed_cfg, tags, parent=parent, group=ladder.name, extra_sinks=[shown] if here else []
                )
                progress(f"  {name:<32} {_line(task.report_columns(), outcome.final, outcome.undefined)}")
                _summarize(parent, summary, rung, variant, ladder.metric, outcome.final)
    return parent.run_id


def _summarize(
    parent: Any, summary: dict[str, list[float]], rung: Rung, variant: str, metric: str, final: Mapping[str, float]
) -> None:
    """Each rung's final and best value (mean over its seeds so far) on the parent run, so that
    the MLflow runs view compares ladder invocations (``06-cnn/best_test_accuracy``)."""
    # MLflow metric names take letters, digits, _ - . : / and spaces
    prefix = re.sub(r"[^\w.\-: ]", "_", "-".join(filter(None, [f"{rung.index:02d}", rung.name, variant])))
    logged = {}
    for kind in ("final", "best"):
        if f"{kind}_{metric}" in final:
            values = summary.setdefault(f"{prefix}/{kind}_{metric}", [])
            values.append(float(final[f"{kind}_{metric}"]))
            logged[f"{prefix}/{kind}_{metric}"] = sum(values) / len(values)
    if logged:
        parent.log_metrics(0, logged)


def _line(columns: Any, final: Mapping[str, float], undefined: Mapping[str, str]) -> str:
    shown = []
    for col in columns:
        if col.metric in undefined:  # not a number for this data: say why, never 0.00%
            shown.append(f"{col.header.removesuffix(' %')} undefined ({undefined[col.metric]})")
        elif col.metric in final:
            value = final[col.metric]
            label = col.header.removesuffix(" %")
            shown.append(f"{label} {100 * value:.2f}%" if col.percent else f"{label} {value:.4g}")
    shown.append(f"{final['time_total_s']:6.1f}s  {final['examples_per_s']:8.0f} ex/s")
    return "  ".join(shown)


def _ladder_dump(ladder: Ladder, request: LadderRequest) -> dict[str, Any]:
    """The resolved ladder as run: scale, overrides and every rung's full config."""
    return {
        "name": ladder.name,
        "source": ladder.source,
        "scale": request.scale,
        "seeds": request.seeds,
        "overrides": dict(request.overrides),
        "rungs": [
            {
                "index": r.index,
                "name": r.name,
                "changes": r.changes,
                "reference": r.reference,
                "config": c.to_dict(),
            }
            for r, c in ladder.configs(request.scale, request.overrides)
        ],
    }
