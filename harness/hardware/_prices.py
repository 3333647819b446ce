"""Price table: hardware -> dollars per hour, from an editable YAML file."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from harness.config import load_mapping, read_config_text
from harness.errors import ConfigError

PRICES_ENV = "HARNESS_PRICES"


def load_prices(path: str | Path | None = None) -> dict[str, float]:
    """``path``, else ``$HARNESS_PRICES``, else the table shipped with harness."""
    chosen = path or os.environ.get(PRICES_ENV)
    if chosen:
        source = Path(chosen)
        text = read_config_text(source, "price table")
    else:
        source = Path("harness/hardware/prices.yaml")
        text = resources.files("harness.hardware").joinpath("prices.yaml").read_text(encoding="utf-8")
    table = load_mapping(text, f"price table {source}", "hardware to $/hour")
    prices: dict[str, float] = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"price table {source}: {key!r} must be a price >= 0 in $/hour, but got {value!r}")
        prices[str(key)] = float(value)
    return prices


def price_per_hour(hardware: str, prices: dict[str, float]) -> float | None:
    """Price of ``hardware`` (``"cpu"``, ``"gpu:NVIDIA H200 x2"``, ``"tpu:v3-8"``); None if unlisted.

    For GPUs the per-GPU price is multiplied by the count after `` x``.
    """
    kind, _, name = hardware.partition(":")
    if kind == "cpu":
        return prices.get("cpu")
    name, _, count = name.partition(" x")
    for key, price in prices.items():
        key_kind, _, needle = key.partition(":")
        if key_kind == kind and needle and needle.lower() in name.lower():
            return price * (int(count) if count.isdigit() else 1)
    return None
