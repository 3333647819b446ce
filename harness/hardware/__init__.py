"""Hardware backends (tf.distribute), the price table and Cloud ML Engine's tiers."""

from harness.hardware._backend import (
    Hardware,
    cpu_description,
    host_devices_flag,
    host_devices_here,
    is_chief,
    make_strategy,
    tf_config,
)
from harness.hardware._cmle import (
    ACCELERATORS,
    Tier,
    TrainingJob,
    api_int,
    load_training_job,
    read_tier,
    training_input,
)
from harness.hardware._memory import gpu_count, gpu_peak_mb, reset_gpu_peak
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
    "ACCELERATORS",
    "PRECISIONS",
    "PRICES_ENV",
    "BackendRow",
    "CmleEntry",
    "CmleMapping",
    "Hardware",
    "MachineReport",
    "PriceRow",
    "PriceTable",
    "Tier",
    "TrainingJob",
    "api_int",
    "cmle_mapping",
    "cpu_description",
    "gpu_count",
    "gpu_peak_mb",
    "host_devices_flag",
    "host_devices_here",
    "is_chief",
    "load_prices",
    "load_training_job",
    "make_strategy",
    "price_per_hour",
    "price_rows",
    "probe",
    "read_tier",
    "render",
    "reset_gpu_peak",
    "split_count",
    "tf_config",
    "training_input",
]
