"""Backends and the price table."""

from __future__ import annotations

import datetime
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REAL_DATA, missing_real_data, store_runs

from harness.errors import ConfigError
from harness.hardware import (
    BackendRow,
    MachineReport,
    PriceTable,
    cmle_mapping,
    load_prices,
    make_strategy,
    price_per_hour,
    price_rows,
    render,
)

BACKENDS = (("cpu", "cpu"), ("gpu", "gpu:NVIDIA H200 x2"))
GOOD_ROW = "cpu:\n  price: 1.5\n  what: my machine\n  source: my invoice\n  date: 2026-11-01\n"


def test_shipped_price_table() -> None:
    prices = load_prices()
    assert price_per_hour("cpu", prices) == prices["cpu"] > 0
    assert price_per_hour("gpu:NVIDIA H200 x2", prices) == pytest.approx(2 * prices["gpu:H200"])
    assert price_per_hour("gpu:Tesla K80 x1", prices) == prices["gpu:K80"]
    assert price_per_hour("gpu:Mystery 9000 x1", prices) is None
    assert price_per_hour("tpu:v3-8", prices) == prices["tpu:v3-8"]
    assert price_per_hour("tpu:v4-32", prices) is None  # a pod slice is not priced as one device
    # CPU machine types match exactly: "cpu" stays the price of CPU runs, an unlisted type has none
    assert price_per_hour("cpu:n1-standard-8", prices) == prices["cpu:n1-standard-8"] != prices["cpu"]
    assert price_per_hour("cpu:n1-standard-96", prices) is None
    both = price_per_hour("cpu:n1-standard-8 + gpu:Tesla V100-SXM2-16GB x2", prices)  # a host VM and its GPUs
    assert both == pytest.approx(prices["cpu:n1-standard-8"] + 2 * prices["gpu:V100"])
    assert price_per_hour("cpu:n1-standard-8 + gpu:Mystery x1", prices) is None
    assert [(r.key, n) for r, n in price_rows("gpu:NVIDIA H200 x2", prices)] == [("gpu:H200", 2)]
    assert price_rows("gpu:Mystery 9000 x1", prices) == ()


def test_every_shipped_row_has_a_price_a_source_and_a_date() -> None:
    rows = load_prices().rows
    for key, row in rows.items():
        assert row.key == key and math.isfinite(row.price) and row.price >= 0, key
        assert row.what and row.source and isinstance(row.date, datetime.date), key
    wanted = {"cpu", "cpu:n1-standard-4", "cpu:n1-highmem-8"}
    wanted |= {f"gpu:{g}" for g in ("K80", "P100", "V100", "T4", "A100", "H100", "H200")}
    wanted |= {f"tpu:{t}" for t in ("v2-8", "v3-8", "v4-8", "v5litepod-8", "v5p-8")}
    assert wanted <= set(rows)
    assert "retired" in rows["gpu:K80"].what  # a deprecated product says so


def test_cmle_tiers_and_machine_types_consist_of_rows_that_exist() -> None:
    from harness.hardware import ACCELERATORS

    prices, cmle = load_prices(), cmle_mapping()
    assert set(cmle.tiers) == {"BASIC", "BASIC_GPU", "BASIC_TPU", "STANDARD_1", "PREMIUM_1"}
    legacy = "standard large_model complex_model_s complex_model_m complex_model_l standard_gpu complex_model_m_gpu"
    legacy += " complex_model_l_gpu standard_p100 complex_model_m_p100 standard_v100 large_model_v100"
    legacy += " complex_model_m_v100 complex_model_l_v100 cloud_tpu"
    assert set(cmle.machine_types) == set(legacy.split())
    for entry in (*cmle.tiers.values(), *cmle.machine_types.values()):
        assert entry.source and isinstance(entry.date, datetime.date), entry.name
    machine = {name: " + ".join(e.parts) for name, e in cmle.machine_types.items()}
    for part in (p for e in cmle.machine_types.values() for p in e.parts):
        assert part.partition(" x")[0] in prices, part
    for tier in cmle.tiers.values():
        assert all(m in machine for m in tier.parts), tier.name
    assert all(key in prices for key in ACCELERATORS.values())
    # the rows reproduce AI Platform Training's own prices, where its archived list shows them
    # (https://web.archive.org/web/20191104130630/https://cloud.google.com/ml-engine/docs/pricing)
    listed = {"BASIC": 0.19, "STANDARD_1": 1.988, "PREMIUM_1": 16.5536, "BASIC_GPU": 0.83, "BASIC_TPU": 4.69}
    for name, price in listed.items():
        tier = sum(price_per_hour(machine[m], prices) or math.nan for m in cmle.tiers[name].parts)
        assert tier == pytest.approx(price), name
    listed = {"standard": 0.19, "large_model": 0.4736, "complex_model_s": 0.2836, "complex_model_m": 0.5672}
    listed |= {"complex_model_l": 1.1344, "standard_gpu": 0.83, "complex_model_m_gpu": 2.56}
    for name, price in listed.items():
        assert price_per_hour(machine[name], prices) == pytest.approx(price), name


def test_user_price_table_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("cpu: 1.5\n")
    monkeypatch.setenv("HARNESS_PRICES", str(path))
    assert load_prices()["cpu"] == 1.5


def test_old_flat_form_and_the_row_form_both_load(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("cpu: 1.5\ngpu:H200: 10\ntpu:v2: 4.5\n")  # the old form, keys as they were
    prices = load_prices(path)
    assert dict(prices) == {"cpu": 1.5, "gpu:H200": 10.0, "tpu:v2": 4.5} and prices.file == str(path)
    assert price_per_hour("gpu:NVIDIA H200 x2", prices) == 20.0 and price_per_hour("tpu:v2-8", prices) == 4.5
    assert (prices.rows["cpu"].source, prices.rows["cpu"].date) == ("", None)
    path.write_text(GOOD_ROW + "gpu:H200: 10\ncmle_tiers: {ignored: here}\n")  # mixed; cmle sections skipped
    prices = load_prices(path)
    assert dict(prices) == {"cpu": 1.5, "gpu:H200": 10.0}
    assert prices.rows["cpu"].date == datetime.date(2026, 11, 1) and prices.rows["cpu"].source == "my invoice"
    assert pickle.loads(pickle.dumps(prices)).rows == prices.rows  # travels to worker processes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu: cheap\n", r"'cpu' must be a price >= 0 in \$/hour, but got 'cheap'"),
        ("cpu: -1\n", r"'cpu' must be a price >= 0 in \$/hour, but got -1"),
        ("cpu: .nan\n", r"'cpu' must be a price >= 0 in \$/hour, but got nan"),
        ("[1, 2]\n", "expected a mapping"),
        (GOOD_ROW.replace("  price: 1.5\n", ""), r"row 'cpu': missing price \(\$/hour"),
        (GOOD_ROW.replace("  source: my invoice\n", ""), r"row 'cpu': missing source \(a URL or citation"),
        (GOOD_ROW.replace("  date: 2026-11-01\n", ""), r"row 'cpu': missing date \(the day the price was read"),
        (GOOD_ROW.replace("1.5", "-0.5"), r"row 'cpu': price must be a finite number >= 0 \(\$/hour\), but got -0.5"),
        (GOOD_ROW.replace("1.5", ".inf"), r"row 'cpu': price must be a finite number >= 0 .*, but got inf"),
        (GOOD_ROW.replace("1.5", "'1.5'"), r"row 'cpu': price must be a finite number >= 0 .*, but got '1.5'"),
        (GOOD_ROW.replace("1.5", "true"), r"row 'cpu': price must be a finite number >= 0 .*, but got True"),
        (GOOD_ROW.replace("my invoice", "''"), r"row 'cpu': source must be a URL or citation .*, but got ''"),
        (GOOD_ROW.replace("2026-11-01", "2026-11"), r"row 'cpu': date must be an ISO date .*, but got '2026-11'"),
        (GOOD_ROW.replace("2026-11-01", "20261101"), r"row 'cpu': date must be an ISO date .*, but got 20261101"),
        (GOOD_ROW.replace("2026-11-01", "'2026-02-30'"), r"row 'cpu': date must be an ISO date .*'2026-02-30'"),
        (GOOD_ROW.replace("2026-11-01", "2026-11-01 10:00:00"), r"row 'cpu': date must be an ISO date .*datetime"),
        (GOOD_ROW.replace("2026-11-01", "2026-13-01"), r"line 5: '2026-13-01' is not a valid date"),
        (GOOD_ROW.replace("source:", "srouce:"), r"row 'cpu': unknown field 'srouce' \(did you mean 'source'\?\)"),
    ],
)
def test_bad_price_table(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_prices(path)
    assert str(path) in str(info.value)


def test_backends_table_cites_the_source_and_date_of_each_price(tmp_path: Path) -> None:
    def table(prices: PriceTable) -> list[str]:
        rows = [BackendRow(b, True, k, price_per_hour(k, prices), "", price_rows(k, prices)) for b, k in BACKENDS]
        rows.append(BackendRow("tpu", False, "", None, "no TPU"))
        return render(MachineReport("2.x", "3.x", "CPU only", (), "works", {}, tuple(rows))).splitlines()

    shipped = load_prices()
    out = table(shipped)
    cpu = next(i for i, line in enumerate(out) if line.startswith("cpu "))
    cited = f"= cpu at 0.0971 $/h, read 2026-11-01 from {shipped.rows['cpu'].source}"
    assert float(out[cpu].split()[2]) == shipped["cpu"] and out[cpu + 1].strip() == cited
    gpu = next(i for i, line in enumerate(out) if line.startswith("gpu "))
    assert out[gpu + 1].strip().startswith("= 2 x gpu:H200 at 10.6000 $/h, read 2026-11-01 from https://")
    assert out[-1].startswith("tpu ")  # no price, nothing to cite
    path = tmp_path / "prices.yaml"
    path.write_text("cpu: 1.5\n")
    assert (
        table(load_prices(path))[cpu + 1].strip()
        == "= cpu at 1.5000 $/h, no source or date given (a flat `key: price` row)"
    )


def test_cpu_backend() -> None:
    _, hw = make_strategy("cpu")
    assert hw.backend == "cpu" and hw.hardware == "cpu" and hw.description.startswith("CPU: ")


def test_gpu_backend_without_gpu_is_a_clear_error() -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="backend='gpu' but TensorFlow sees no GPU"):
        make_strategy("gpu")


def test_backends_command_reports_what_this_machine_offers(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "devices: CPU: " in out and "XLA (jit_compile=true): works" in out
    assert "float32 works" in out and "mixed_bfloat16 works" in out
    cpu = next(line for line in out.splitlines() if line.startswith("cpu "))
    assert cpu.split()[1] == "yes" and float(cpu.split()[2]) == load_prices()["cpu"]
    assert any(line.startswith("tpu ") and line.split()[1] == "no" for line in out.splitlines())
    assert any(line.startswith("multiworker:N ") and line.split()[1] == "yes" for line in out.splitlines())


@pytest.mark.slow
def test_precision_and_xla_are_per_run_options_and_leave_keras_as_they_found_it() -> None:
    import keras
    import numpy as np

    import harness.ladders  # noqa: F401  (registers the config sections)
    from harness.config import config_from
    from harness.data import ArrayDataset
    from harness.train import train

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (96, 8, 8, 1), dtype=np.uint8)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    data = ArrayDataset("tiny", x[:64], y[:64], x[64:], y[64:], 2, "-", "generated")
    overrides = {"layers": [16], "iterations": 4, "eval_every": 2, "batch_size": 16, "eval_batch_size": 32}
    cfg = config_from({**overrides, "steps_per_execution": 2, "precision": "mixed_bfloat16", "jit_compile": True})
    assert cfg.params()["run.precision"] == "mixed_bfloat16" and cfg.params()["run.jit_compile"] is True
    result = train(cfg, data)
    layers = {layer.name: layer for layer in result.model.layers}
    assert layers["dense1"].compute_dtype == "bfloat16" and layers["dense1"].variable_dtype == "float32"
    assert layers["logits"].compute_dtype == "float32"  # a stable softmax and loss
    assert np.isfinite(result.final["final_test_loss"]) and len(result.history) == 2
    assert keras.config.dtype_policy().name == "float32"  # the next run starts from the default


@pytest.mark.realdata
def test_mirrored_over_two_logical_cpu_devices_trains_like_one_device(tmp_path: Path) -> None:
    """backend=cpu:2 (MirroredStrategy over two logical CPU devices) on a short real MNIST run gives the
    quality of backend=cpu. A fresh process: logical devices are set before TensorFlow starts."""
    if not (REAL_DATA / "mnist").is_dir():
        missing_real_data("mnist/")
    args = "ladder mnist --rungs cnn --set iterations=300 --set eval_every=300 --set steps_per_execution=150"
    args += " --vary backend=cpu,cpu:2 --no-report --data-dir"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args.split(), str(REAL_DATA)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = {
        r.data.params["run.backend"]: r for r in store_runs(tmp_path, "ladder/mnist") if "run.backend" in r.data.params
    }
    assert set(runs) == {"cpu", "cpu:2"} and all(r.info.status == "FINISHED" for r in runs.values())
    assert "2 logical devices (MirroredStrategy)" in runs["cpu:2"].data.tags["device"]
    one, two = (runs[b].data.metrics["final_test_accuracy"] for b in ("cpu", "cpu:2"))
    assert one > 0.95 and two > 0.95 and abs(one - two) < 0.01  # the same global batch, split in two


def test_counted_backends_fail_clearly_where_the_devices_are_missing() -> None:
    with pytest.raises(ConfigError, match=r"'gpu:2' needs 2 GPUs but TensorFlow sees no GPU here; use backend=cpu"):
        make_strategy("gpu:2")
    with pytest.raises(ConfigError, match=r"backend must be one of .*cpu:N.* but got backend='cpu:0'"):
        make_strategy("cpu:0")
