"""Hostile input, by class: config files that are too big, not text, or bombs; ranges and options
that would only fail later. Each class is refused fast, with a message naming the file or flag and
what was expected, exit 2 and no traceback, before any run or store exists.

Property-based tests (hypothesis) generate files and arguments, valid and invalid, and assert that
parsing either succeeds or raises the clean ``ConfigError``, never anything else.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.config import MAX_CONFIG_BYTES, apply_overrides, default_config, load_yaml, parse_cli_overrides
from harness.errors import ConfigError
from harness.hardware import load_prices
from harness.ladders import load_ladder
from harness.ladders._spec import parse_ladder
from harness.studies import parse_space
from harness.studies._space import MAX_GRID_POINTS

LADDER = """\
name: tiny
base: {dataset: mnist, iterations: 20, eval_every: 10}
rungs:
  - name: a
    set: {model: mlp}
  - name: b
    set: {layers: [16]}
"""

SPACE = """\
name: t
experiment: {ladder: mnist, rung: softmax, scale: smoke}
objective: {metric: accuracy}
budget: {max_trials: 4}
params:
  lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.001, 0.01]}
"""

CMLE = """\
trainingInput:
  scaleTier: BASIC
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 4
    algorithm: RANDOM_SEARCH
    params:
      - parameterName: hp-lr0
        type: DOUBLE
        minValue: 0.001
        maxValue: 0.1
"""

# "billion laughs": 9 levels of 9 aliases, a few hundred bytes that expand to 9**9 values
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


# --- files that are not text, too big, or bombs -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ladder", "space", "prices"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: caf\xe9\nrungs: []\n", r"not UTF-8 text \(byte 0xe9 at offset 9, line 1\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"not UTF-8 text"),
        (b"a: 1\nb: 2\na: 3\n", r"line 3: duplicate key 'a' \(first on line 1\)"),
        (BOMB.encode(), r"expands to more than 100,000 values"),
        (b"a: &a [1, *a]\n", r"an alias refers to itself"),
        (b"a: " + b"[" * 200 + b"]" * 200 + b"\n", r"nested too deeply"),
        (b"a: " + b"x" * (MAX_CONFIG_BYTES + 10) + b"\n", r"larger than 1,048,576 bytes"),
        (b"a: 1\nb: 2026-13-01\n", r"line 2: '2026-13-01' is not a valid date \(month must be in 1..12\)"),
    ],
    ids=["latin1", "binary", "duplicate", "alias-bomb", "alias-cycle", "deep", "huge", "bad-date"],
)
def test_bad_config_files_are_refused_fast_naming_the_file(
    tmp_path: Path, kind: str, content: bytes, message: str
) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(content)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=message) as info:
        if kind == "ladder":
            load_ladder(str(path))
        elif kind == "space":
            from harness.studies import load_space

            load_space(path)
        else:
            load_prices(path)
    assert str(path) in str(info.value)
    assert time.monotonic() - start < 5  # bounded: no parse of megabytes, no expansion of aliases


def test_a_bomb_in_a_set_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--set layers: expands to more than"):
        parse_cli_overrides(["layers=" + BOMB.replace("\n", ", ").join("{}")])


def test_yaml_merge_keys_and_anchors_within_bounds_still_work() -> None:
    assert load_yaml("m: &m {x: 1}\nn: {<<: *m, y: 2}\n", "f.yaml") == {"m": {"x": 1}, "n": {"x": 1, "y": 2}}


def test_shipped_files_parse_under_the_bounds() -> None:
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "harness" / "ladders").glob("*.yaml")):
        assert load_ladder(str(path)).rungs
    for path in sorted((root / "search_spaces").glob("*.yaml")):
        from harness.studies import load_space

        assert load_space(path).params
    assert load_prices()["cpu"] > 0


def test_cli_refuses_a_binary_ladder_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    """The real command line, in its own process: the message, the exit code, no store created."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "ladder", str(path), "--scale", "smoke"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"error: ladder file {path}: not UTF-8 text" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


# --- ranges and sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("5-3", r"range '5-3' runs backwards; write it 3-5"),
        ("1-99999999999", r"'1-99999999999' is outside the rungs of mnist \(1..8\)"),
        ("0", r"'0' is outside the rungs"),
        ("9", r"'9' is outside the rungs of mnist \(1..8\)"),
        ("1,,2", r"cannot parse ''"),
        ("x'y", r"cannot parse \"x'y\""),
    ],
)
def test_rung_ranges_are_checked_before_they_are_built(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_ladder("mnist").select(spec)


def test_cli_rung_range_and_study_budget_errors_exit_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _cli(["ladder", "mnist", "--rungs", "5-3"], capsys)
    assert rc == 2 and "runs backwards" in err
    space = workdir / "s.yaml"
    space.write_text(SPACE)
    for flag in ("--max-failed", "--trials"):
        rc, err = _cli(["study", str(space), flag, "0"], capsys)
        assert rc == 2 and f"{flag} must be >= 1, but got 0" in err
    assert not (workdir / "mlflow.db").exists()


def test_a_huge_grid_is_counted_not_built() -> None:
    text = SPACE.replace(
        "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.001, 0.01]}",
        "lr0: {type: float, low: 0.0, high: 0.1, step: 1.0e-12}\n  iterations: {type: int, low: 1, high: 1000000000}",
    )
    space = parse_space(text, "big.yaml")
    assert space.grid_size() > MAX_GRID_POINTS
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"big.yaml: the grid has [\d,]+ points \(lr0 100,000,000,001, iterations"):
        space.grid()
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("pruner: {name: median, n_warmup_steps: abc}", r"pruner option 'n_warmup_steps' expects a finite number"),
        ("pruner: {name: median, n_warmup_steps: -10}", r"'n_warmup_steps' expects a number >= 0, but got -10"),
        ("pruner: {name: median, n_warmup_steps: .nan}", r"'n_warmup_steps' expects a finite number"),
        ("pruner: {name: median, n_warmup_steps: 2.5}", r"'n_warmup_steps' expects an integer"),
        ("pruner: {name: hyperband, reduction_factor: 1}", r"'reduction_factor' expects a number >= 2"),
        ("sampler_options: {tpe: {n_startup_trials: abc}}", r"'n_startup_trials' expects a finite number"),
        ("sampler_options: {tpe: {n_startup_trials: -5}}", r"'n_startup_trials' expects a number >= 0"),
        ("sampler_options: {tpe: {multivariate: 1}}", r"'multivariate' expects true or false"),
    ],
)
def test_sampler_and_pruner_option_values_are_checked_up_front(options: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_space(SPACE.replace("params:", f"{options}\nparams:"), "t.yaml")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_cmle_bounds_must_be_finite(value: str) -> None:
    with pytest.raises(ConfigError, match=r"maxValue: expected a finite number"):
        parse_space(CMLE.replace("maxValue: 0.1", f"maxValue: {value}"), "job.yaml")


# --- generated input: parse or refuse cleanly, never anything else -------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_KEYS = ["name", "title", "metric", "notes", "base", "scales", "rungs", "set", "changes", "reference", "note"]
_CONFIG_KEYS = ["dataset", "model", "layers", "lr0", "iterations", "eval_every", "dropout", "batch_size", "conv1"]
_PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _clean(call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except ConfigError as exc:
        assert str(exc)  # a message, and nothing else escapes


@pytest.mark.slow
@_PROPS
@given(
    st.dictionaries(st.sampled_from(_KEYS + _CONFIG_KEYS), _values, max_size=6),
    st.lists(st.dictionaries(st.sampled_from(_KEYS + _CONFIG_KEYS), _values, max_size=4), max_size=3),
)
def test_generated_ladder_files_parse_or_fail_cleanly(top: dict, rungs: list) -> None:
    doc = {"name": "gen", **top, "rungs": rungs or top.get("rungs")}
    _clean(lambda: parse_ladder(yaml.safe_dump(doc, allow_unicode=True), "gen.yaml"))


@_PROPS
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_as_a_ladder_file_fail_cleanly(raw: bytes) -> None:
    from harness.config._yaml import decode_text

    _clean(lambda: parse_ladder(decode_text(raw, "gen.yaml"), "gen.yaml"))


@_PROPS
@given(st.sampled_from([*_CONFIG_KEYS, "model.layers", "optim.lr0", "nope"]), st.text(max_size=40))
def test_generated_set_overrides_apply_or_fail_cleanly(key: str, raw: str) -> None:
    _clean(lambda: apply_overrides(default_config(), parse_cli_overrides([f"{key}={raw}"]), "command line"))


@_PROPS
@given(st.text(alphabet="0123456789-,' abcx", max_size=16))
def test_generated_rung_selectors_select_or_fail_cleanly(spec: str) -> None:
    ladder = load_ladder("mnist")

    def select() -> None:
        chosen = ladder.select(spec)
        assert not spec.strip() or chosen.rungs  # a selection is never silently empty

    _clean(select)


@_PROPS
@given(
    st.sampled_from(["INTEGER", "DOUBLE", "DISCRETE", "CATEGORICAL"]),
    _scalars,
    _scalars,
    st.sampled_from(["GRID_SEARCH", "RANDOM_SEARCH", "ALGORITHM_UNSPECIFIED"]),
)
def test_generated_cmle_params_parse_or_fail_cleanly(kind: str, low: object, high: object, algorithm: str) -> None:
    doc = yaml.safe_load(CMLE)
    hp = doc["trainingInput"]["hyperparameters"]
    hp["algorithm"] = algorithm
    hp["params"] = [{"parameterName": "hp-iterations", "type": kind, "minValue": low, "maxValue": high}]

    def parse() -> None:
        space = parse_space(yaml.safe_dump(doc), "job.yaml")
        for p in space.params:
            if p.low is not None:
                assert math.isfinite(p.low) and math.isfinite(p.high or 0)

    _clean(parse)
