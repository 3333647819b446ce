"""What ``harness ladder`` was asked to do, and every rung's config from it: checked before the runner,
MLflow or TensorFlow are imported, so that a bad ``--set`` or ``--vary`` answers at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.config import Config, apply_overrides
from harness.data import ArrayDataset
from harness.ladders._spec import Ladder, Rung


@dataclasses.dataclass(frozen=True)
class PricedAs:
    """Runs priced as hardware named by a file (``--cmle-config``: a Cloud ML Engine tier's list price),
    not as the machine they train on; the file's backend is in the configs, as a ``--set`` would be."""

    where: str  # the file and what it chose, prefixed to a backend this machine lacks
    hardware: str  # price-table keys joined by " + ", as price_per_hour reads them
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)  # on the parent and every run

    def __post_init__(self) -> None:
        if not self.hardware:
            raise ValueError(f"hardware must name price-table keys, but got {self.hardware=}")


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
    priced_as: PricedAs | None = None  # --cmle-config

    def variant_configs(self) -> list[tuple[Rung, str, Config]]:
        """(rung, variant label, config) for every rung and variant, in run order."""
        out = []
        for rung, cfg in self.ladder.configs(self.scale, self.overrides):
            for variant in self.variants:
                label = ",".join(f"{k}={v}" for k, v in variant.items())
                out.append((rung, label, apply_overrides(cfg, variant, f"--vary (rung {rung.name})")))
        return out

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, but got {self.seeds=}")
