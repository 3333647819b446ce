"""Hardware backends (tf.distribute) and the price table."""

from harness.hardware._backend import (
    Hardware,
    cpu_description,
    is_chief,
    make_strategy,
    tf_config,
)
from harness.hardware._prices import (
    PRICES_ENV,
    CmleEntry,
    CmleMapping,
    PriceRow,
    PriceTable,
    cmle_mapping,
    load_prices,
    price_per_hour,
    price_rows,
    split_count,
)
from harness.hardware._probe import PRECISIONS, BackendRow, MachineReport, probe, render

__all__ = [
    "PRECISIONS",
    "PRICES_ENV",
    "BackendRow",
    "CmleEntry",
    "CmleMapping",
    "Hardware",
    "MachineReport",
    "PriceRow",
    "PriceTable",
    "cmle_mapping",
    "cpu_description",
    "is_chief",
    "load_prices",
    "make_strategy",
    "price_per_hour",
    "price_rows",
    "probe",
    "render",
    "split_count",
    "tf_config",
]
