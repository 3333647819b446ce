"""Run a ladder: one MLflow parent run, one child run per rung and seed.

A thin driver: it resolves configs, opens runs, calls ``harness.train.train``
with the sinks, and logs artifacts. Ctrl-C ends the current child run and the
parent run KILLED; finished rungs stay in the store, complete and reportable.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness import interrupts
from harness.config import Config, apply_overrides
from harness.data import ArrayDataset, Split, load_dataset
from harness.hardware import Hardware, load_prices, make_strategy, price_per_hour
from harness.ladders._spec import Ladder, Rung
from harness.tracking import JsonlSink, MetricSink, RunHandle, TensorBoardSink, Tracker, environment_tags


@dataclasses.dataclass(frozen=True)
class LadderRequest:
    """What ``harness ladder`` was asked to do."""

    ladder: Ladder
    scale: str = "standard"
    seeds: int = 1
    base_seed: int = 0
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data_dir: str | None = None
    tensorboard_dir: Path = Path("tensorboard")
    command: str = ""
    prices: str | None = None
    datasets: Mapping[str, ArrayDataset] | None = None  # preloaded (benchmarks); else loaded by name
    variants: tuple[Mapping[str, Any], ...] = ({},)  # --vary: each rung runs once per variant

    def variant_configs(self) -> list[tuple[Rung, str, Config]]:
        """(rung, variant label, config) for every rung and variant, in run order."""
        out = []
        for rung, cfg in self.ladder.configs(self.scale, self.overrides):
            for variant in self.variants:
                label = ",".join(f"{k}={v}" for k, v in variant.items())
                out.append((rung, label, apply_overrides(cfg, variant, "--vary")))
        return out

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, but got {self.seeds=}")


def experiment_name(ladder_name: str) -> str:
    return f"ladder/{ladder_name}"


def run_ladder(request: LadderRequest, tracker: Tracker, progress: Callable[[str], None] = print) -> str:
    """Run every rung x seed; return the parent run id."""
    ladder = request.ladder
    configs = request.variant_configs()
    strategy, hardware = make_strategy(configs[0][2].backend)
    price = price_per_hour(hardware.hardware, load_prices(request.prices))
    datasets: dict[tuple[str, Split], ArrayDataset] = {
        (name, Split()): data for name, data in (request.datasets or {}).items()
    }
    for _, _, cfg in configs:  # load (and validate) all data before the first run starts
        key = (cfg.dataset, cfg.data_split())
        if key not in datasets:
            datasets[key] = load_dataset(cfg.dataset, request.data_dir, cfg.data_split())

    base_tags = {
        **environment_tags(),
        "harness.kind": "ladder",
        "harness.ladder": ladder.name,
        "harness.scale": request.scale,
        "backend": hardware.backend,
        "hardware": hardware.hardware,
        "device": hardware.description,
        "price_per_hour": "unknown" if price is None else f"{price}",
    }
    exp_id = tracker.experiment_id(experiment_name(ladder.name))
    parent_tags = {
        **base_tags,
        "harness.seeds": str(request.seeds),
        "harness.variants": ";".join(label for label in dict.fromkeys(v for _, v, _ in configs) if label),
        "harness.command": request.command,
        "harness.ladder_source": ladder.source,
        "data.checksum": ",".join(sorted({f"{n}:{d.checksum}" for (n, _), d in datasets.items()})),
    }
    with tracker.run(exp_id, f"{ladder.name}-{request.scale}", parent_tags) as parent:
        progress(f"MLflow parent run {parent.run_id} in {tracker.uri}")
        parent.log_text(yaml.safe_dump(_ladder_dump(ladder, request), sort_keys=False), "ladder.yaml")
        for rung, variant, cfg in configs:
            for i in range(request.seeds):
                interrupts.check()
                seed_cfg = dataclasses.replace(cfg, seed=request.base_seed + i)
                data = datasets[(cfg.dataset, cfg.data_split())]
                tags = {
                    **base_tags,
                    "harness.kind": "rung",
                    "harness.rung": rung.name,
                    "harness.rung_index": str(rung.index),
                    "harness.rung_changes": rung.changes,
                    "harness.variant": variant,
                    "harness.reference": "" if rung.reference is None else str(rung.reference),
                    "harness.seed": str(seed_cfg.seed),
                    "data.checksum": data.checksum,
                    "data.source": data.source,
                    "data.split": cfg.split,
                }
                name = "-".join(filter(None, [f"{rung.index:02d}", rung.name, variant, f"s{seed_cfg.seed}"]))
                with tracker.run(exp_id, name, tags, parent=parent) as child:
                    final = _run_rung(child, rung, seed_cfg, data, strategy, hardware, price, request, name)
                progress(
                    f"  {name:<32} final {final['final_test_accuracy']:.4f}  "
                    f"best {final['best_test_accuracy']:.4f}  {final['time_total_s']:6.1f}s  "
                    f"{final['examples_per_s']:8.0f} ex/s"
                )
    return parent.run_id


def _run_rung(
    run: RunHandle,
    rung: Rung,
    cfg: Config,
    data: ArrayDataset,
    strategy: Any,
    hardware: Hardware,
    price: float | None,
    request: LadderRequest,
    name: str,
) -> dict[str, float]:
    from harness.report._plots import learning_curve
    from harness.train import train

    run.log_params(cfg.to_dict())
    run.log_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), "config.yaml")
    tb_dir = request.tensorboard_dir / request.ladder.name / run.run_id[:8] / name
    with tempfile.TemporaryDirectory() as tmp:
        sinks: list[MetricSink] = [run, TensorBoardSink(tb_dir), JsonlSink(Path(tmp) / "metrics.jsonl")]
        try:
            result = train(cfg, data, sinks, strategy=strategy)
        finally:
            for sink in sinks:
                sink.close()
        final = dict(result.final)
        if price is not None:
            final["cost_usd"] = price * final["time_total_s"] / 3600
        run.log_metrics(int(final["steps"]), final)
        run.log_artifact(Path(tmp) / "metrics.jsonl")
    run.log_text(result.summary, "model_summary.txt")
    run.log_figure(learning_curve(result.history, f"{request.ladder.name} {name}"), "learning_curve.png")
    with tempfile.TemporaryDirectory() as tmp:  # the trained model, for `harness detect-scan RUN_ID`
        result.model.save(Path(tmp) / "model.keras")
        run.log_artifact(Path(tmp) / "model.keras")
    run.log_artifact(tb_dir, "tensorboard")
    return final


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
