"""Issue 25, hostile input: bounds on everything a user can type, every fault in one line with an
honest exit code, and messages that name the right flag and suggest what would work.

A full disk is a real one: a 64 KiB tmpfs mounted in a private mount namespace (``unshare -rm``, no
root needed where user namespaces are allowed); where that is refused the tests say so and skip.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import run_cli, store_runs

from harness.config import MAX_LAYERS, MAX_WIDTH, apply_overrides, config_from, default_config, parse_variants
from harness.data import unread_data_dir
from harness.errors import ConfigError
from harness.hardware import load_prices
from harness.hardware._backend import available_gb, check_local_workers, usable_cores
from harness.ladders._spec import parse_ladder

LADDER = """\
name: tiny
base: {dataset: mnist, iterations: 20, eval_every: 10}
rungs:
  - name: a
    reference: 0.9
    set: {model: mlp}
"""

PRICE_ROW = "cpu:\n  price: 1.5\n  what: my machine\n  source: my invoice\n  date: 2026-11-01\n"


def _one_line_error(err: str) -> str:
    """The error line of a refused command: exactly one, and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


# --- (a) a full disk under --tensorboard-dir; (e) a store half-built on a full disk -------------------------


def _tmpfs_shell(script: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``script`` (sh) in a private mount namespace where it may mount a tmpfs; skip where that is refused."""
    probe = (
        subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {shlex.quote(str(cwd))}"],
            capture_output=True,
            text=True,
        )
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        why = "no unshare" if probe is None else probe.stderr.strip()
        pytest.skip(f"cannot mount a tmpfs here (unshare -rm: {why}); the full-disk cases need one")
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_a_full_disk_under_the_tensorboard_dir_is_one_line(tmp_path: Path, tiny_data_dir: Path) -> None:
    tb = tmp_path / "tb"
    tb.mkdir()
    ladder = ["ladder", "mnist", "--rungs", "1", "--scale", "smoke", "--no-report"]
    harness = shlex.join(
        [sys.executable, "-m", "harness", *ladder, "--data-dir", str(tiny_data_dir), "--tensorboard-dir", str(tb)]
    )
    # a 64 KiB tmpfs filled to the last block: the event files cannot be written (folders still can)
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {tb} && (dd if=/dev/zero of={tb}/fill bs=4k 2>/dev/null; true) && "
        f"{harness} 2>{tmp_path}/err.txt"
    )
    done = _tmpfs_shell(script, tmp_path)
    err = (tmp_path / "err.txt").read_text(encoding="utf-8")
    assert done.returncode == 1, err  # the system failed, not the input
    line = _one_line_error(err)
    assert line.startswith(f"error: the disk is full at the TensorBoard folder {tb}/mnist/"), line
    runs = store_runs(tmp_path, "ladder/mnist")
    assert runs and all(r.info.status == "FAILED" for r in runs)  # the rung and its parent, ended


BUILD_STORE = """\
import sys
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
try:
    SqlAlchemyStore("sqlite:///" + sys.argv[1], "/tmp")
except Exception as exc:
    print("FAILED", exc)
"""


@pytest.mark.slow
def test_a_store_half_built_on_a_full_disk_is_named_in_one_line(tmp_path: Path) -> None:
    """MLflow's own client builds a store on a 128 KiB tmpfs and fails midway; harness is then given that
    store: on the still-full disk ("disk I/O error"), and copied to a disk with room (a partial schema)."""
    full = tmp_path / "full"
    full.mkdir()
    (tmp_path / "build.py").write_text(BUILD_STORE, encoding="utf-8")
    store = full / "mlflow.db"
    clean = shlex.join([sys.executable, "-m", "harness", "runs", "clean", "--tracking-uri", f"sqlite:///{store}"])
    script = (
        f"mount -t tmpfs -o size=128k tmpfs {full} && {sys.executable} build.py {store} > built.txt 2>/dev/null; "
        f"{clean} 2> err.txt; echo $? > rc.txt; cp {store} {tmp_path}/copy.db"
    )
    _tmpfs_shell(script, tmp_path)
    built = (tmp_path / "built.txt").read_text(encoding="utf-8")
    assert "FAILED" in built and "full" in built, built  # MLflow itself ran out of space: a half-built store
    err = (tmp_path / "err.txt").read_text(encoding="utf-8")
    assert (tmp_path / "rc.txt").read_text().strip() == "2", err
    line = _one_line_error(err)
    assert line.startswith(f"error: cannot use {store} as an MLflow store: "), line
    assert "disk I/O error" in line or "full" in line, line

    copy = tmp_path / "copy.db"  # the same file where there is room: its schema cannot be completed
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{copy}")
    assert rc == 2, out
    assert _one_line_error(out).startswith(f"error: cannot use {copy} as an MLflow store: "), out


@pytest.mark.slow
def test_a_store_with_a_partial_schema_is_named_in_one_line(tmp_path: Path) -> None:
    import sqlite3

    store = tmp_path / "mlflow.db"
    with sqlite3.connect(store) as conn:  # what a client killed after its first table leaves
        conn.execute("create table experiments (experiment_id integer primary key, name varchar(256))")
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{store}")
    assert rc == 2, out
    line = _one_line_error(out)
    assert line.startswith(f"error: cannot use {store} as an MLflow store: no such column: experiments."), line

    damaged = tmp_path / "damaged.db"  # a SQLite header, then bytes that are no database pages
    damaged.write_bytes(store.read_bytes()[:100] + b"\xa5" * 8000)
    rc, out = run_cli("runs", "clean", "--tracking-uri", f"sqlite:///{damaged}")
    assert rc == 2, out
    assert _one_line_error(out).startswith(f"error: {damaged}: cannot open it as a SQLite database ("), out


# --- (b) detect-boxes' and detect-scan's numbers, before any store or model ------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-side", "0"], "--max-side must be a PNG size in 16..16,384 pixels, but got 0"),
        (["--max-side", "-5"], "--max-side must be a PNG size in 16..16,384 pixels, but got -5"),
        (["--held-out", "-1"], "--held-out must be a number of images in 0..10,000, but got -1"),
        (["--extras", "-1"], "--extras must be a number of images in 0..10,000, but got -1"),
    ],
)
def test_detect_boxes_numbers_are_checked_first(workdir: Path, flags: list[str], message: str) -> None:
    rc, out = run_cli("detect-boxes", "yolo/layers17", *flags)
    assert rc == 2 and _one_line_error(out) == f"error: {message}", out
    assert not (workdir / "mlflow.db").exists()  # refused before the store, the data or the model


@pytest.mark.parametrize("scales", ["nan", "0.8,inf", "1e9", "-1"])
def test_detect_scan_scales_must_be_finite_resize_factors(workdir: Path, scales: str) -> None:
    rc, out = run_cli("detect-scan", "0" * 32, "x.png", "--scales", scales)
    assert rc == 2 and "scales must be 1 to 16 resize factors in (0, 10]" in _one_line_error(out), out
    assert not (workdir / "mlflow.db").exists()


# --- (c) layer counts and widths, bounded where the config is parsed ---------------------------------------------


def test_thousands_of_layers_are_refused_at_parse_time(workdir: Path) -> None:
    start = time.monotonic()
    rc, out = run_cli("ladder", "mnist", "--rungs", "2", "--set", f"model.layers=[{', '.join(['8'] * 2500)}]")
    assert rc == 2, out
    line = _one_line_error(out)
    assert f"layers must be 0 to {MAX_LAYERS} hidden widths of 1..{MAX_WIDTH:,} each, but got 2,500 entries" in line
    assert len(line) < 400  # the list is cut, not echoed
    assert time.monotonic() - start < 10  # not 33 s of model building ending in RecursionError
    assert not (workdir / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"layers": [200, 10**6]}, r"layers must be 0 to 100 hidden widths of 1..16,384 each, but got 1,000,000"),
        ({"layers": [8] * 101}, r"but got 101 entries"),
        ({"model": "cnn", "conv1": 10**6}, r"conv1 must be in 1..16,384, but got conv1=1000000"),
        ({"model": "cnn", "filter_sizes": [5, 5, 1000]}, r"filter_sizes must be 3 to 3 kernel sides of 1..64"),
        ({"model": "cnn", "dense": 0}, r"dense must be > 0"),
        (
            {"task": "detection", "dataset": "aerial_synthetic", "model": "squeezenet", "layers": 10**9},
            r"layers must be in 1..100",
        ),
        (
            {"task": "detection", "dataset": "aerial_synthetic", "model": "squeezenet", "depth_increment": 5000},
            r"depth_increment must be small enough to keep every depth <= 16,384",
        ),
        (
            {"task": "detection", "dataset": "aerial_synthetic", "model": "darknet", "first_layer_filter_depth": 10**5},
            r"in 1..16,384",
        ),
        (
            {"task": "detection", "dataset": "aerial_synthetic", "model": "squeezenet", "cell_n": 10**4},
            r"cell_n must be in 1..64",
        ),
        (
            {"task": "tabular", "dataset": "adult_synthetic", "model": "dnn", "hidden": [10**6]},
            r"hidden must be 1 to 100",
        ),
        (
            {"task": "tabular", "dataset": "adult_synthetic", "model": "dnn", "embedding_dim": 10**6},
            r"embedding_dim must be in 0..16,384",
        ),
        ({"batch_size": 2**40}, r"batch_size must be in 1..1,048,576"),
        ({"iterations": 10**12, "eval_every": 10**12}, r"iterations must be in 1..1,000,000,000"),
        ({"seed": -1}, r"seed must be in 0..2,147,483,647"),
        ({"iterations": 10**30}, r"key 'iterations' expects an int within \+-9,223,372,036,854,775,807"),
    ],
)
def test_model_and_run_sizes_are_bounded_with_the_allowed_range(overrides: dict, message: str) -> None:
    import harness.ladders  # noqa: F401  (registers the tasks, datasets and models)

    start = time.monotonic()
    with pytest.raises(ConfigError, match=message):
        config_from(overrides, "command line")
    assert time.monotonic() - start < 2  # checked before a layout of a billion layers is planned


def test_the_shipped_sizes_stay_within_the_bounds() -> None:
    import harness.ladders  # noqa: F401

    assert config_from({"layers": [MAX_WIDTH] * MAX_LAYERS}).model.layers[-1] == MAX_WIDTH  # type: ignore[attr-defined]
    for dataset, model in (("aerial_synthetic", "squeezenet"), ("aerial_synthetic", "darknet")):
        config_from({"task": "detection", "dataset": dataset, "model": model, "layers": 17})


# --- (f) values accepted silently before -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            LADDER.replace("reference: 0.9", "reference: .nan"),
            r"rungs\[1\]: reference must be a finite number, but got reference=nan",
        ),
        (
            LADDER.replace("reference: 0.9", "reference: -.inf"),
            r"reference must be a finite number, but got reference=-inf",
        ),
        (
            LADDER.replace("iterations: 20", "iterations: 20, lr0: 1e999"),
            r"base: key 'lr0' expects a finite number, but got '1e999'",
        ),
        (
            LADDER.replace("iterations: 20", "iterations: 20, lr0: .inf"),
            r"key 'lr0' expects a finite number, but got inf",
        ),
        (LADDER.replace("iterations: 20", "iterations: 20, dropout: .nan"), r"key 'dropout' expects a finite number"),
        (
            LADDER.replace("name: tiny", "name: [a, b]"),
            r"t.yaml: name must be a string, but got name=\['a', 'b'\] \(list\)",
        ),
        (
            LADDER.replace("  - name: a", "  - name: [a, b]"),
            r"rungs\[1\]: name must be a string, but got name=\['a', 'b'\]",
        ),
        (
            LADDER.replace("name: tiny", "name: tiny\ntitle: {a: 1}"),
            r"title must be a string, but got title=\{'a': 1\} \(dict\)",
        ),
        (LADDER.replace("    reference: 0.9", "    changes: [x]"), r"rungs\[1\]: changes must be a string"),
        (LADDER.replace("name: tiny", "name: tiny\nmetric: [test_accuracy]"), r"metric must be a string"),
    ],
)
def test_ladder_values_of_the_wrong_kind_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ladder(text, "t.yaml")


def test_non_finite_numbers_are_refused_in_every_override() -> None:
    for raw in (1e999, float("nan"), -float("inf"), "1e999", 10**400):
        with pytest.raises(ConfigError, match=r"key 'lr0' expects a finite number"):
            apply_overrides(default_config(), {"lr0": raw}, "command line")


def test_a_nan_reference_file_exits_2_in_one_line(workdir: Path) -> None:
    path = workdir / "bad.yaml"
    path.write_text(LADDER.replace("reference: 0.9", "reference: .nan"), encoding="utf-8")
    rc, out = run_cli("ladder", str(path), "--scale", "standard")
    assert rc == 2 and "reference must be a finite number" in _one_line_error(out), out
    rc, out = run_cli("ladder", "mnist", "--set", "lr0=1e999")
    assert rc == 2 and "key 'lr0' expects a finite number, but got '1e999'" in _one_line_error(out), out
    assert not (workdir / "mlflow.db").exists()


def test_a_price_read_in_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICE_ROW.replace("2026-11-01", "2099-01-01"), encoding="utf-8")
    today = datetime.date.today().isoformat()
    with pytest.raises(
        ConfigError,
        match=rf"row 'cpu': date must be the day the price was read, not in the future \(today is {today}\), "
        r"but got 2099-01-01",
    ):
        load_prices(path)
    path.write_text(PRICE_ROW.replace("2026-11-01", "'2099-01-01'"), encoding="utf-8")  # quoted: a string
    with pytest.raises(ConfigError, match="not in the future"):
        load_prices(path)
    path.write_text(PRICE_ROW.replace("2026-11-01", today), encoding="utf-8")
    assert load_prices(path)["cpu"] == 1.5  # read today is fine


# --- (g) multiworker:N against this machine's cores and memory ------------------------------------------------


def test_multiworker_n_that_does_not_fit_says_what_fits() -> None:
    cores, free = usable_cores(), available_gb()
    with pytest.raises(ConfigError) as info:
        check_local_workers(99)
    message = str(info.value)
    assert message.startswith("backend='multiworker:99' needs ~89 GB (0.9 GB per worker process) and 99 cores; ")
    assert f"this machine has {cores} cores" in message
    assert (" GB free: " in message) == (free is not None)  # the memory it saw, where it can see it
    fit = int(message.split("at most ")[1].split(" workers fit")[0])
    assert fit <= max(cores, 2)
    if fit >= 1:  # the advice is accepted
        assert f"(use multiworker:{fit})" in message
        check_local_workers(fit)
    else:
        assert "(use backend=cpu)" in message


@pytest.mark.slow
def test_multiworker_99_is_refused_before_any_run_and_synthetic_data_dir_is_warned(workdir: Path) -> None:
    """One command, two findings: --data-dir is not read by the synthetic census rows (a warning), and
    99 local workers do not fit this machine (exit 2, one line, no store)."""
    rc, out = run_cli(
        "ladder",
        "census",
        "--scale",
        "smoke",
        "--rungs",
        "dnn",
        "--set",
        "backend=multiworker:99",
        "--data-dir",
        str(workdir / "nowhere"),
    )
    assert rc == 2, out
    assert (
        f"warning: dataset adult_synthetic is synthetic and reads nothing from --data-dir {workdir / 'nowhere'}\n"
        in out
    )
    assert "backend='multiworker:99' needs ~89 GB" in _one_line_error(out)
    assert not (workdir / "mlflow.db").exists()


# --- (h) --data-dir given for a synthetic dataset ----------------------------------------------------------------


def test_a_data_dir_for_synthetic_datasets_is_warned_once_each() -> None:
    import harness.ladders  # noqa: F401

    names = ["mnist", "adult_synthetic", "aerial_synthetic", "adult_synthetic", "synthetic_images", "planesnet"]
    assert unread_data_dir(names, "../data") == [
        f"warning: dataset {name} is synthetic and reads nothing from --data-dir ../data"
        for name in ("adult_synthetic", "aerial_synthetic", "synthetic_images")
    ]
    assert unread_data_dir(names, None) == []  # $HARNESS_DATA_DIR serves every command: no warning for it


# --- (d) a Lambda layer refused by Keras' safe mode; (h) detect-boxes on a synthetic run ---------------------


def _detection_run_with_a_lambda(root: Path) -> str:
    """A detection run in a real store at ``root``: its config.yaml (synthetic scenes) and a model.keras
    whose Lambda layer holds Python code, as a file from elsewhere might."""
    import keras

    import harness.ladders  # noqa: F401
    from harness.tracking import Tracker

    cfg = config_from(
        {"task": "detection", "dataset": "aerial_synthetic", "model": "squeezenet", "images": 2, "image_size": 128}
    )
    tracker = Tracker(f"sqlite:///{root / 'mlflow.db'}")
    exp = tracker.experiment_id("ladder/yolo")
    with tracker.run(exp, "smuggled") as run:
        run.log_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), "config.yaml")
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
        model.save(root / "model.keras")
        tracker.client.log_artifact(run.run_id, str(root / "model.keras"))
    return run.run_id


@pytest.mark.slow
def test_a_lambda_layer_refused_by_safe_mode_is_one_line(workdir: Path) -> None:
    from PIL import Image

    run_id = _detection_run_with_a_lambda(workdir)
    Image.new("RGB", (64, 64)).save(workdir / "scene.png")
    expected = (
        f"error: run {run_id}: Keras' safe mode refused to load its model.keras: it holds a Lambda layer, whose "
        "Python code would run on loading (arbitrary code from the store)"
    )
    rc, out = run_cli("detect-scan", run_id, "scene.png")
    assert rc == 2 and _one_line_error(out).startswith(expected), out

    rc, out = run_cli("detect-boxes", run_id, "--data-dir", "somewhere")
    assert rc == 2 and _one_line_error(out).startswith(expected), out
    assert "warning: dataset aerial_synthetic is synthetic and reads nothing from --data-dir somewhere\n" in out
    assert not os.path.exists(workdir / "results")  # nothing drawn


# --- (i) gpu:N where there is no GPU; (j) --vary named in its own errors -----------------------------------------


@pytest.mark.slow
def test_gpu_n_without_gpus_suggests_the_cpu_and_the_cpu_runs() -> None:
    import tensorflow as tf

    from harness.hardware import make_strategy

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the message under test is for machines without one")
    with pytest.raises(ConfigError) as info:
        make_strategy("gpu:3")
    message = str(info.value)
    assert "TensorFlow sees no GPU here; use backend=cpu" in message and "gpu:1" not in message
    suggested = message.split("use backend=")[1].split()[0]
    assert make_strategy(suggested)[1].backend == "cpu"  # what it suggests is accepted here


def test_vary_errors_name_vary() -> None:
    with pytest.raises(ConfigError) as info:
        parse_variants(["layers=[1,2]"])
    message = str(info.value)
    assert message.startswith("--vary layers: not valid YAML") and "--set" not in message
    assert "splits '[1,2]' at each comma into the values '[1', '2]'" in message
    assert parse_variants(["layers=[16],[32]"]) == ({"layers": [16]}, {"layers": [32]})  # the advice works
    with pytest.raises(ConfigError, match=r"^--vary expects KEY=V1,V2"):
        parse_variants(["layers"])


def test_vary_on_the_command_line_names_vary(workdir: Path) -> None:
    rc, out = run_cli("ladder", "mnist", "--vary", "layers=[1,2]")
    assert rc == 2 and _one_line_error(out).startswith("error: --vary layers: not valid YAML"), out
    assert "--set" not in out


def test_ladder_seed_flags_are_bounded(workdir: Path) -> None:
    for flags, message in (
        (["--seeds", "0"], "--seeds must be >= 1 and <= 1,000, but got 0"),
        (["--seeds", "100000"], "--seeds must be >= 1 and <= 1,000, but got 100000"),
        (["--seed", "-1"], "--seed must be in 0..2,147,483,647 (seeds up to 2**31 - 1), but got -1"),
    ):
        rc, out = run_cli("ladder", "mnist", *flags)
        assert rc == 2 and _one_line_error(out) == f"error: {message}", out
    assert not (workdir / "mlflow.db").exists()
