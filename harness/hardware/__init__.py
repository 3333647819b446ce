"""Hardware backends (tf.distribute) and the price table."""

from harness.hardware._backend import (
    Hardware,
    cpu_description,
    is_chief,
    make_strategy,
    tf_config,
)
from harness.hardware._prices import PRICES_ENV, load_prices, price_per_hour
from harness.hardware._probe import PRECISIONS, BackendRow, MachineReport, probe, render

__all__ = [
    "PRECISIONS",
    "PRICES_ENV",
    "BackendRow",
    "Hardware",
    "MachineReport",
    "cpu_description",
    "is_chief",
    "load_prices",
    "make_strategy",
    "price_per_hour",
    "probe",
    "render",
    "tf_config",
]
