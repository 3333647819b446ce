"""Hyperparameter studies: both search-space formats (valid and broken), samplers, pruning,
failed trials, resume, reports and sampler comparison, on tiny generated MNIST."""

from __future__ import annotations

import contextlib
import io
import json
import re
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.errors import ConfigError, UserError
from harness.studies import SamplerSpec, load_space, parse_space
from harness.studies._cmle import cmle_param_name
from harness.studies._journal import HEARTBEAT_ATTR, HeartbeatJournalStorage
from harness.studies._objective import PruningSink
from harness.studies._space import ExperimentRef, ObjectiveRef
from harness.studies._storage import default_storage_url, normalise_url, open_storage, redact, storage_kind
from harness.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "search_spaces"
# a few steps of the softmax rung on the tiny data: ~1-2 s per trial
TINY = {
    "iterations": 20,
    "eval_every": 10,
    "steps_per_execution": 10,
    "train_subset": 600,
    "test_subset": 200,
    "eval_batch_size": 200,
}


def _native(name: str, params: str, extra: str = "", budget: str = "{max_trials: 4}", fixed: dict | None = None) -> str:
    fixed_yaml = json.dumps({**TINY, **(fixed or {})})
    return textwrap.dedent(
        f"""\
        name: {name}
        experiment: {{ladder: mnist, rung: softmax, scale: smoke}}
        fixed: {fixed_yaml}
        objective: {{metric: accuracy}}
        budget: {budget}
        {extra}
        params:
        """
    ) + textwrap.indent(textwrap.dedent(params), "  ")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- search spaces: the shipped files ---------------------------------------------------------------


def test_shipped_native_mnist_space_is_a_small_grid_on_the_cnn_rung() -> None:
    space = load_space(SPACES / "mnist_cnn.yaml")
    assert (space.name, space.format, space.sampler, space.pruner.name) == ("mnist-cnn", "native", "tpe", "none")
    assert [p.name for p in space.params] == ["lr0", "dropout", "dense"]
    assert space.grid_size() == 12
    assert space.budget.max_trials == 12 and space.budget.max_parallel == 2 and space.budget.max_failed == 3
    objective_where = f"{SPACES / 'mnist_cnn.yaml'}: objective.metric"
    assert space.objective == ObjectiveRef("accuracy", None, objective_where)  # as written; the task resolves it
    assert space.sampler_options["tpe"] == {"n_startup_trials": 4}
    resolved = space.resolve()
    assert resolved.objective.final_key == "final_test_accuracy" and resolved.direction == "maximize"
    assert resolved.objective == get_task("classification").objectives()["accuracy"]
    assert resolved.experiment.label == "mnist:cnn@standard"
    base = resolved.base
    assert (base.model.name, base.run.iterations, base.run.eval_every) == ("cnn", 1500, 250)
    assert base.optim.lr2 == 2000  # the rung's own settings are kept
    assert resolved.keys == {"lr0": "optim.lr0", "dropout": "model.dropout", "dense": "model.dense"}
    cfg = resolved.config_for({"lr0": 0.01, "dropout": 0.25, "dense": 100}, "test")
    assert (cfg.optim.lr0, cfg.model.dropout, cfg.model.dense) == (0.01, 0.25, 100)


def test_shipped_cmle_files_map_names_types_tiers_and_goals() -> None:
    mnist = load_space(SPACES / "mnist_cnn_hptune.yaml")
    assert mnist.format == "cmle" and mnist.name == "mnist-cnn-hptune"
    assert [p.name for p in mnist.params] == ["lr0", "lr2", "dropout", "dense"]
    assert mnist.sampler == "tpe"  # ALGORITHM_UNSPECIFIED: Bayesian optimisation
    assert mnist.param("lr0").scale == "log" and mnist.param("lr2").kind == "int"
    assert mnist.param("dense").choices == (100, 200)  # DISCRETE
    assert mnist.tier is not None and mnist.tier.backend == "cpu"
    assert mnist.budget.max_failed == 3 and mnist.budget.max_parallel == 2
    # a Cloud ML Engine file does not say what it tunes: --experiment is required, the error lists the rungs
    with pytest.raises(ConfigError, match=r"--experiment LADDER:RUNG is required for a Cloud ML Engine file") as err:
        mnist.resolve()
    assert "mnist: softmax, dense5-sigmoid," in str(err.value) and "; planesnet: dense, cnn," in str(err.value)
    cnn = mnist.resolve(ExperimentRef.parse("mnist:cnn", "test"), overrides={"iterations": 1500, "eval_every": 250})
    assert cnn.base.model.name == "cnn" and cnn.base.run.backend == "cpu" and cnn.tier_backend == "cpu"
    assert (cnn.base.run.iterations, cnn.base.run.eval_every) == (1500, 250)
    assert (cnn.objective.final_key, cnn.direction) == ("final_test_accuracy", "maximize")

    planes = load_space(SPACES / "planesnet_hptune.yaml")
    assert [p.name for p in planes.params] == ["lr2", "filter_sizes", "dense"]
    fs = planes.param("filter_sizes")
    assert fs.choices == ("S", "M") and fs.to_config("S") == (4, 3, 2) and fs.to_config("M") == (5, 4, 3)
    assert (planes.objective.name, planes.objective.direction) == ("loss", "minimize")  # as the file says
    planes_cnn = planes.resolve(ExperimentRef.parse("planesnet:cnn", "test"))
    assert planes_cnn.objective.final_key == "final_test_loss" and planes_cnn.direction == "minimize"
    assert planes_cnn.keys == {"lr2": "optim.lr2", "filter_sizes": "model.filter_sizes", "dense": "model.dense"}
    assert planes.budget.max_trials == 50 and planes.budget.max_parallel == 10
    assert planes.tier is not None
    assert (planes.tier.name, planes.tier.backend, planes.tier.machines) == (
        "CUSTOM/complex_model_m_v100",
        "multi-gpu",
        ("cpu:n1-standard-16 + gpu:V100 x4",),  # one machine: its host VM and 4 GPUs
    )
    assert planes.param("lr2").grid_points()[:2] == [800, 801]  # INTEGER: every value is a grid point


def test_shipped_planesnet_spaces_target_the_cnn_rung() -> None:
    native = load_space(SPACES / "planesnet_cnn.yaml")
    assert native.experiment == ExperimentRef(ladder="planesnet", rung="cnn", scale="standard")
    assert native.grid_size() == 24 and native.pruner.name == "median"
    fs = native.param("filter_sizes")  # list choices: Optuna sees labels, the config gets the tuples
    assert fs.choices == ("4,3,2", "5,4,3") and (fs.to_config("4,3,2"), fs.to_config("5,4,3")) == ((4, 3, 2), (5, 4, 3))
    resolved = native.resolve()  # needs the ladder file only, no data
    assert (resolved.base.data.name, resolved.base.model.name) == ("planesnet", "cnn")
    assert (resolved.objective.final_key, resolved.direction) == ("final_test_loss", "minimize")
    cmle = load_space(SPACES / "planesnet_hptune.yaml")
    assert cmle.resolve(ExperimentRef.parse("planesnet:cnn", "t")).base.data.name == "planesnet"


def test_cmle_parameter_names_drop_the_hp_prefix() -> None:
    assert cmle_param_name("hp-lr2") == "lr2"
    assert cmle_param_name("hp-filter-sizes") == "filter_sizes"
    assert cmle_param_name("dropout") == "dropout"


# --- search spaces: broken files -------------------------------------------------------------------

NATIVE_OK = _native("t", "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.01, 0.05]}\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NATIVE_OK + "bogus: 1\n", "unknown field 'bogus'"),
        (NATIVE_OK.replace("params:", "colour: red\nparams:"), "t.yaml: unknown field 'colour'"),
        (
            _native("t", "lr0: {type: float, low: abc, high: 0.1}\n"),
            "t.yaml: params.lr0.low: expected a number, but got 'abc'",
        ),
        (_native("t", "lr0: {type: float, low: 0.1, hgih: 0.2}\n"), "params.lr0: unknown field 'hgih'"),
        (_native("t", "lr9: {type: float, low: 0.1, high: 0.2}\n"), "params.lr9: unknown config key 'lr9'"),
        (_native("t", "dense: {type: float, low: 0.5, high: 20}\n"), "params.dense: key 'dense' expects an int"),
        (_native("t", "dense: {type: number, low: 1, high: 20}\n"), "params.dense.type: expected one of int"),
        (_native("t", "lr0: {type: float, low: 0.1, high: 0.01}\n"), "params.lr0: low must be <= high"),
        (_native("t", "lr0: {type: float, low: 0.0, high: 0.1, log: true}\n"), "params.lr0.log: a log scale"),
        (
            _native("t", "lr0: {type: float, low: 0.01, high: 0.1, grid: [0.5]}\n"),
            "params.lr0.grid: point 0.5 is outside",
        ),
        (_native("t", "optimizer: {type: categorical, choices: [adam, rmsprop]}\n"), "choices[1]: key 'optimizer'"),
        (_native("t", "backend: {type: categorical, choices: [cpu]}\n"), "'backend' cannot be tuned"),
        (
            NATIVE_OK.replace("metric: accuracy}", "metric: accuracy, direction: down}"),
            "t.yaml: objective.direction: expected maximize or minimize, but got 'down'",
        ),
        (NATIVE_OK.replace("metric: accuracy}", "metric: ''}"), "t.yaml: objective.metric: expected an objective"),
        (NATIVE_OK.replace("{max_trials: 4}", "{max_trials: four}"), "budget.max_trials: expected an integer"),
        (NATIVE_OK.replace("params:", "pruner: sometimes\nparams:"), "t.yaml: pruner: unknown pruner 'sometimes'"),
        (
            NATIVE_OK.replace("params:", "sampler_options: {tpe: {n_startup: 3}}\nparams:"),
            "sampler_options.tpe: unknown tpe sampler option 'n_startup'",
        ),
        (NATIVE_OK.replace("params:", "sampler: bayes\nparams:"), "t.yaml: sampler: unknown sampler 'bayes'"),
        ("name: [unclosed", "t.yaml: not valid YAML"),
    ],
)
def test_broken_native_space_names_file_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_space(text, "t.yaml")
    assert message in str(err.value)
    assert "t.yaml" in str(err.value)


VALID_OBJECTIVES = (
    "loss, final_test_loss, accuracy, final_test_accuracy, precision, final_test_precision, "
    "recall, final_test_recall, best_test_accuracy"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            NATIVE_OK.replace("metric: accuracy}", "metric: IOU}"),
            f"t.yaml: objective.metric: 'IOU' is not an objective of task 'classification'; valid: {VALID_OBJECTIVES}",
        ),
        (
            NATIVE_OK.replace("metric: accuracy}", "metric: accuracy, direction: minimize}"),
            "t.yaml: objective.metric: direction 'minimize' contradicts objective 'accuracy', "
            "which task classification maximizes",
        ),
        (
            NATIVE_OK.replace("metric: accuracy}", "metric: loss, direction: maximize}"),
            "t.yaml: objective.metric: direction 'maximize' contradicts objective 'loss', "
            "which task classification minimizes",
        ),
    ],
)
def test_objective_is_checked_against_the_task_when_resolved(text: str, message: str) -> None:
    space = parse_space(text, "t.yaml")  # the file alone does not say which task it tunes
    with pytest.raises(ConfigError) as err:
        space.resolve()
    assert str(err.value) == message


def test_grid_needs_grid_points_for_floats() -> None:
    space = parse_space(_native("t", "lr0: {type: float, low: 0.001, high: 0.1, log: true}\n"), "t.yaml")
    with pytest.raises(ConfigError) as err:
        SamplerSpec.for_space("grid", 0, space)
    assert "t.yaml: params.lr0: float parameter 'lr0' has no grid points" in str(err.value)
    assert SamplerSpec.for_space("random", 0, space).name == "random"  # other samplers do not need them


def test_config_value_checked_against_the_rung_when_resolved() -> None:
    space = parse_space(_native("t", "dropout: {type: float, low: 0.0, high: 1.0}\n"), "t.yaml")
    with pytest.raises(ConfigError) as err:
        space.resolve()
    assert "t.yaml: params.dropout" in str(err.value) and "dropout must be in [0, 1)" in str(err.value)


CMLE_OK = """\
trainingInput:
  scaleTier: BASIC
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 4
    algorithm: GRID_SEARCH
    params:
      - parameterName: hp-lr0
        type: DISCRETE
        discreteValues: [0.01, 0.05]
      - parameterName: hp-filter-sizes
        type: CATEGORICAL
        categoricalValues: ['S', 'M']
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("scaleTier: BASIC", "scaleTier: BASIC_MEGA", "trainingInput.scaleTier: unsupported scale tier 'BASIC_MEGA'"),
        (
            "scaleTier: BASIC",
            "scaleTier: CUSTOM\n  masterType: huge_tpu_pod",
            "trainingInput.masterType: unsupported machine type 'huge_tpu_pod'",
        ),
        ("scaleTier: BASIC", "scaleTier: CUSTOM", "trainingInput.masterType: scaleTier CUSTOM needs a masterType"),
        ("scaleTier: BASIC", "scaleTier: BASIC\n  workerCount: 3", "only scaleTier CUSTOM takes workerCount"),
        ("algorithm: GRID_SEARCH", "algorithm: HILL_CLIMB", "hyperparameters.algorithm: expected one of GRID_SEARCH"),
        ("goal: MAXIMIZE", "goal: BEST", "hyperparameters.goal: expected MAXIMIZE or MINIMIZE"),
        ("maxTrials: 4", "maxTrials: 4\n    maxTrails: 5", "hyperparameters: unknown field 'maxTrails'"),
        ("maxTrials: 4", "maxTrials: many", "hyperparameters.maxTrials: expected an integer"),
        ("hp-lr0", "hp-lr9", "params[0].parameterName ('hp-lr9'): unknown config key 'lr9'"),
        ("type: DISCRETE", "type: FLOAT", "params[0] (hp-lr0).type: expected one of INTEGER"),
        (
            "type: DISCRETE\n        discreteValues: [0.01, 0.05]",
            "type: DOUBLE\n        minValue: 0.01\n        maxValue: 0.1",
            "params[0] (hp-lr0): a DOUBLE parameter ('lr0') cannot be searched with GRID_SEARCH",
        ),
        (
            "type: DISCRETE\n        discreteValues: [0.01, 0.05]",
            "type: DOUBLE\n        minValue: 0.01\n        maxValue: 0.1\n        scaleType: UNIT_SQRT_SCALE",
            "params[0] (hp-lr0).scaleType: expected one of UNIT_LINEAR_SCALE",
        ),
        ("categoricalValues: ['S', 'M']", "categoricalValues: ['S', 'XL']", "'XL' is not a value of config key"),
        ("discreteValues: [0.01, 0.05]", "discreteValues: [0.05, 0.01]", "must be distinct and increasing"),
    ],
)
def test_broken_cmle_config_names_file_and_field(old: str, new: str, message: str) -> None:
    assert old in CMLE_OK
    text = CMLE_OK.replace(old, new)
    with pytest.raises(ConfigError) as err:
        parse_space(text, "job-hptune.yaml")
    assert "job-hptune.yaml" in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "goal: MAXIMIZE",
            "goal: MINIMIZE",
            "direction 'minimize' contradicts objective 'accuracy', which task classification maximizes",
        ),
        (
            "hyperparameterMetricTag: accuracy",
            "hyperparameterMetricTag: IOU",
            f"'IOU' is not an objective of task 'classification'; valid: {VALID_OBJECTIVES}",
        ),
        (
            "hyperparameterMetricTag: accuracy",
            "hyperparameterMetricTag: f1",
            f"'f1' is not an objective of task 'classification'; valid: {VALID_OBJECTIVES}",
        ),
    ],
)
def test_cmle_objective_is_checked_against_the_task_when_resolved(old: str, new: str, message: str) -> None:
    assert old in CMLE_OK
    space = parse_space(CMLE_OK.replace(old, new), "job-hptune.yaml")
    with pytest.raises(ConfigError) as err:
        space.resolve(ExperimentRef.parse("mnist:cnn-batchnorm", "t"))  # a classification task
    assert str(err.value) == f"job-hptune.yaml: trainingInput.hyperparameters.hyperparameterMetricTag: {message}"


def test_tuning_a_key_the_experiments_model_does_not_use_is_refused_when_resolved() -> None:
    space = parse_space(CMLE_OK, "job-hptune.yaml")  # tunes filter_sizes, a CNN key
    assert space.resolve(ExperimentRef.parse("mnist:cnn", "t")).keys["filter_sizes"] == "model.filter_sizes"
    with pytest.raises(ConfigError) as err:
        space.resolve(ExperimentRef.parse("mnist:softmax", "t"))
    assert str(err.value) == (
        "job-hptune.yaml: trainingInput.hyperparameters.params[1] (hp-filter-sizes) "
        "(tuning mnist:softmax@standard: mlp model): key 'filter_sizes' is not used by model 'mlp'; "
        "it is a parameter of model cnn"
    )


@pytest.mark.parametrize(
    ("tier", "backend", "machines"),
    [
        ("scaleTier: BASIC", "cpu", ("cpu:n1-standard-4",)),
        ("scaleTier: BASIC_GPU", "gpu", ("cpu:n1-standard-8 + gpu:K80 x1",)),
        ("scaleTier: BASIC_TPU", "tpu", ("cpu:n1-standard-4", "tpu:v2-8")),  # the TPU, not the master VM
        ("scaleTier: PREMIUM_1", "cpu", ("cpu:n1-highcpu-16",) * 20 + ("cpu:n1-highmem-8",) * 11),
        ("scaleTier: CUSTOM\n  masterType: cloud_tpu", "tpu", ("tpu:v2-8",)),
        # the reference's config.yaml: a masterType and no scaleTier is the single-P100 CUSTOM job it describes
        ("masterType: standard_p100", "gpu", ("cpu:n1-standard-8 + gpu:P100 x1",)),
        (
            "scaleTier: CUSTOM\n  masterType: standard\n  workerType: cloud_tpu\n  workerCount: 1",
            "cpu",  # trials run on the master
            ("cpu:n1-standard-4", "tpu:v2-8"),
        ),
        (
            "scaleTier: CUSTOM\n  masterType: n1-standard-8\n"
            "  masterConfig: {acceleratorConfig: {type: NVIDIA_TESLA_T4, count: 2}}",
            "multi-gpu",
            ("cpu:n1-standard-8 + gpu:T4 x2",),
        ),
        (  # acceleratorConfig replaces the machine type's own GPUs, keeps its host VM
            "scaleTier: CUSTOM\n  masterType: complex_model_m_gpu\n"
            "  masterConfig: {acceleratorConfig: {type: NVIDIA_TESLA_V100}}",
            "gpu",
            ("cpu:n1-standard-16 + gpu:V100 x1",),
        ),
    ],
)
def test_cmle_tiers_and_machine_types_map_to_price_table_rows(
    tier: str, backend: str, machines: tuple[str, ...]
) -> None:
    from harness.hardware import load_prices, price_per_hour

    space = parse_space(CMLE_OK.replace("scaleTier: BASIC", tier), "job.yaml")
    assert space.tier is not None and (space.tier.backend, space.tier.machines) == (backend, machines)
    prices = load_prices()
    assert all(price_per_hour(m, prices) is not None for m in machines)  # every part is a row


def test_cmle_integer_on_a_float_key_and_log_scale_need_positive_bounds() -> None:
    text = CMLE_OK.replace(
        "type: DISCRETE\n        discreteValues: [0.01, 0.05]",
        "type: INTEGER\n        minValue: 0\n        maxValue: 10\n        scaleType: UNIT_LOG_SCALE",
    ).replace("algorithm: GRID_SEARCH", "algorithm: RANDOM_SEARCH")
    with pytest.raises(ConfigError) as err:
        parse_space(text.replace("hp-lr0", "hp-lr2"), "job.yaml")
    assert "scaleType: UNIT_LOG_SCALE needs minValue > 0" in str(err.value)


def test_cmle_settings_that_cannot_be_honoured_are_warnings_not_silence() -> None:
    text = CMLE_OK.replace(
        "scaleTier: BASIC",
        "scaleTier: STANDARD_1\n  runtimeVersion: '1.8'\n  region: us-central1",
    ).replace("maxTrials: 4", "maxTrials: 4\n    resumePreviousJobId: job7")
    space = parse_space(text, "job.yaml")
    notes = " | ".join(space.notes)
    assert "trainingInput.runtimeVersion is ignored" in notes and "trainingInput.region is ignored" in notes
    assert "resumePreviousJobId is ignored" in notes
    assert "STANDARD_1: harness trains each trial on one machine" in notes
    assert space.tier is not None and len(space.tier.machines) == 8
    assert space.sampler == "grid" and space.grid_size() == 4


def test_cmle_reverse_log_scale_crowds_values_near_the_top() -> None:
    text = (
        CMLE_OK.replace(
            "type: DISCRETE\n        discreteValues: [0.01, 0.05]",
            "type: DOUBLE\n        minValue: 0.001\n        maxValue: 0.999\n        scaleType: UNIT_REVERSE_LOG_SCALE",
        )
        .replace("hp-lr0", "hp-bnexp")
        .replace("algorithm: GRID_SEARCH", "algorithm: RANDOM_SEARCH")
    )
    p = parse_space(text, "job.yaml").param("bnexp")
    assert p.optuna_name == "bnexp__reverse_log"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = [p.suggest(study.ask()) for _ in range(400)]
    assert all(0.001 <= v <= 0.999 for v in values)
    assert sum(v > 0.5 for v in values) > 0.8 * len(values)  # log-uniform distance from the top: ~90% here


def test_metric_names_map_to_harness_metrics() -> None:
    objectives = get_task("classification").objectives()
    assert (
        objectives["accuracy"].final_key == "final_test_accuracy" and objectives["accuracy"].step_key == "test_accuracy"
    )
    assert objectives["loss"].final_key == "final_test_loss" and objectives["loss"].direction == "minimize"
    assert objectives["loss"].reference_scale == 100.0  # the reference trainers' loss is the mean x 100
    space = parse_space(CMLE_OK.replace("accuracy", "ACCURACY"), "job.yaml")
    assert space.objective.name == "ACCURACY"
    assert space.resolve(ExperimentRef.parse("mnist:cnn", "t")).objective.final_key == "final_test_accuracy"


def test_storage_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_storage_url(f"sqlite:///{tmp_path}/mlflow.db") == f"journal:{tmp_path}/optuna.journal"
    (tmp_path / "optuna.db").touch()  # the default before the journal: its studies stay where they are
    assert default_storage_url(f"sqlite:///{tmp_path}/mlflow.db") == f"sqlite:///{tmp_path}/optuna.db"
    (tmp_path / "optuna.journal").touch()
    assert default_storage_url(f"sqlite:///{tmp_path}/mlflow.db") == f"journal:{tmp_path}/optuna.journal"
    monkeypatch.chdir(tmp_path)
    for given in ("journal:studies.journal", "studies.journal", f"journal:///{tmp_path}/studies.journal"):
        assert normalise_url(given) == f"journal:{tmp_path}/studies.journal", given
        assert storage_kind(given) == "journal" and redact(given) == given
    assert storage_kind("sqlite:///optuna.db") == "sqlite"
    assert normalise_url("postgresql://u:secret@127.0.0.1/harness").startswith("postgresql+psycopg2://u:secret@")
    assert "secret" not in redact("postgresql://u:secret@127.0.0.1/harness")
    with pytest.raises(UserError, match=r"neither a journal file .* nor a SQLAlchemy URL"):
        redact("not a url")
    with pytest.raises(UserError, match="names no journal file"):
        normalise_url("journal:")


def test_corrupt_journal_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.journal"
    bad.write_text('{"op_code": 0\nnot json either\n', encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(f"journal:{bad}: cannot open it")):
        open_storage(f"journal:{bad}")


def _running_trial(storage: HeartbeatJournalStorage, name: str) -> tuple[optuna.Study, int]:
    study = optuna.create_study(study_name=name, storage=storage)
    return study, study.ask()._trial_id


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_journal_heartbeats_fail_a_silent_trial_and_retry_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failed: list[int] = []
    storage = HeartbeatJournalStorage(tmp_path / "s.journal", 1, 5, on_stale=lambda s, t: failed.append(t.number))
    study, trial_id = _running_trial(storage, "hb")
    storage.record_heartbeat(trial_id)
    assert storage.get_trial(trial_id).system_attrs[HEARTBEAT_ATTR] == pytest.approx(time.time(), abs=5)
    assert storage._get_stale_trial_ids(study._study_id) == []

    later = time.time() + 6  # past the grace period, no heartbeat since
    monkeypatch.setattr(time, "time", lambda: later)
    assert storage._get_stale_trial_ids(study._study_id) == [trial_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    assert storage.get_trial(trial_id).state == optuna.trial.TrialState.FAIL and failed == [0]
    storage.record_heartbeat(trial_id)  # a finished trial takes none, and says nothing

    # another process on the same file sees the same: heartbeats are journal lines, not process state
    other = HeartbeatJournalStorage(tmp_path / "s.journal", 1, 5)
    assert other.get_trial(trial_id).state == optuna.trial.TrialState.FAIL


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_journal_retry_is_not_stale_from_its_predecessors_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = HeartbeatJournalStorage(tmp_path / "s.journal", 1, 5)
    study, trial_id = _running_trial(storage, "retry")
    old = storage.get_trial(trial_id)
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params={},
            distributions={},
            system_attrs={HEARTBEAT_ATTR: time.time() - 3600},  # copied from a long-dead trial
        )
    )
    retry = study.ask()  # WAITING -> RUNNING now
    assert retry.number == old.number + 1
    assert retry._trial_id not in storage._get_stale_trial_ids(study._study_id)


def test_reused_tpe_sampler_proposes_what_a_new_one_would() -> None:
    """``SamplerSpec.for_trial`` reseeds one TPE sampler per worker; a new sampler per trial is the reference."""
    spec = SamplerSpec("tpe", seed=3, options={"n_startup_trials": 4})
    space = load_space(SPACES / "mnist_cnn.yaml")

    def run(reuse: bool) -> list[dict[str, Any]]:
        study = optuna.create_study(direction="maximize")
        sampler = None
        for number in range(12):
            sampler = spec.for_trial(space, number, sampler) if reuse else spec.build(space, number)
            study.sampler = sampler
            trial = study.ask()
            values = {p.name: p.suggest(trial) for p in space.params}
            study.tell(trial, sum(float(v) for v in values.values() if isinstance(v, int | float)))
        return [t.params for t in study.trials]

    reused = run(reuse=True)
    assert reused == run(reuse=False)
    first = spec.for_trial(space, 0)
    assert spec.for_trial(space, 1, first) is first  # kept, not rebuilt
    assert len({json.dumps(p, sort_keys=True) for p in reused}) == 12  # and they do differ from trial to trial


def test_pruning_sink_reports_each_evaluation_and_prunes() -> None:
    reported: list[tuple[float, int]] = []
    trial = SimpleNamespace(report=lambda v, s: reported.append((v, s)), should_prune=lambda: len(reported) >= 2)
    sink = PruningSink(trial, get_task("classification").objectives()["best_test_accuracy"])
    sink.log_metrics(10, {"test_accuracy": 0.5, "test_loss": 1.0})
    with pytest.raises(optuna.TrialPruned, match="step 20"):
        sink.log_metrics(20, {"test_accuracy": 0.4})
    assert reported == [(0.5, 10), (0.5, 20)]  # best-so-far for best_test_accuracy


# --- end to end, in one tracking store -------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> Iterator[SimpleNamespace]:
    """One working directory and tracking store for the end-to-end tests of this module."""
    root = tmp_path_factory.mktemp("studies")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        mp.setenv("HARNESS_DATA_DIR", str(tiny_data_dir))
        yield SimpleNamespace(root=root, client=MlflowClient(f"sqlite:///{root / 'mlflow.db'}"))


def run_cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()


def study_runs(store: SimpleNamespace, space: str, study: str) -> tuple[Any, list[Any]]:
    exp = store.client.get_experiment_by_name(f"study/{space}")
    runs = store.client.search_runs([exp.experiment_id], f"tags.`harness.study` = '{study}'")
    parents = [r for r in runs if r.data.tags.get("harness.kind") == "study"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["optuna.trial_number"]))


def trials(store: SimpleNamespace, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(f"journal:{store.root / 'optuna.journal'}")).trials


@pytest.mark.timeout(120)  # the fast tier's one study end to end (its first trial may pay for importing TensorFlow)
def test_a_two_trial_study_of_two_steps_lands_in_optuna_mlflow_and_its_report(store: SimpleNamespace) -> None:
    two_steps = {"iterations": 2, "eval_every": 2, "steps_per_execution": 1}
    space = _write(
        store.root,
        "fast.yaml",
        _native(
            "fast",
            "lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.005, 0.05]}\n",
            budget="{max_trials: 2}",
            fixed=two_steps,
        ),
    )
    rc, out = run_cli("study", str(space), "--sampler", "grid")
    assert rc == 0, out
    done = trials(store, "fast-grid")
    assert sorted(t.params["lr0"] for t in done) == [0.005, 0.05] and {t.state.name for t in done} == {"COMPLETE"}
    parent, children = study_runs(store, "fast", "fast-grid")
    assert parent.info.status == "FINISHED" and [c.info.status for c in children] == ["FINISHED"] * 2
    assert [c.data.metrics["objective"] for c in children] == [t.value for t in sorted(done, key=lambda t: t.number)]
    assert all(c.data.params["run.iterations"] == "2" for c in children)
    md = (store.root / "results" / "study_fast-grid.md").read_text()
    assert "harness report study fast-grid" in md and md.count("| COMPLETE |") == 2


@pytest.mark.slow
def test_grid_study_covers_every_point_once_and_reports(store: SimpleNamespace) -> None:
    space = _write(
        store.root,
        "grid.yaml",
        _native(
            "grid",
            """\
            lr0: {type: float, low: 0.001, high: 0.1, log: true, grid: [0.005, 0.05]}
            batch_size: {type: categorical, choices: [25, 50]}
            """,
        ),
    )
    rc, out = run_cli("study", str(space), "--sampler", "grid")
    assert rc == 0, out
    done = trials(store, "grid-grid")
    assert len(done) == 4 and {t.state.name for t in done} == {"COMPLETE"}
    assert sorted((t.params["lr0"], t.params["batch_size"]) for t in done) == [
        (0.005, 25),
        (0.005, 50),
        (0.05, 25),
        (0.05, 50),
    ]
    parent, children = study_runs(store, "grid", "grid-grid")
    assert parent.info.status == "FINISHED" and [c.info.status for c in children] == ["FINISHED"] * 4
    assert parent.data.params["sampler"] == "grid" and parent.data.params["sampler.seed"] == "0"
    assert parent.data.tags["optuna.storage_kind"] == "journal" and parent.data.tags["optuna.version"]
    assert parent.data.metrics["trials_complete"] == 4
    child = children[0]
    assert child.data.tags["optuna.state"] == "COMPLETE" and "objective" in child.data.metrics
    assert "test_accuracy" in child.data.metrics and child.data.params["run.iterations"] == "20"
    for c, t in zip(children, sorted(done, key=lambda t: t.number), strict=True):  # dotted params, as rungs log
        assert (c.data.params["optim.lr0"], c.data.params["run.batch_size"]) == (
            str(t.params["lr0"]),
            str(t.params["batch_size"]),
        )
        assert c.data.tags["harness.task"] == "classification"
    assert parent.data.tags["harness.param_keys"] == "optim.lr0,run.batch_size"  # the params' dotted keys, in order
    assert parent.data.tags["harness.task"] == "classification"
    assert parent.data.tags["harness.objective_reference_scale"] == "1.0"  # accuracy: no rescaling
    # every complete trial run holds what a ladder rung's run holds
    for c in children:
        top = {a.path for a in store.client.list_artifacts(c.info.run_id)}
        assert {
            "config.yaml",
            "metrics.jsonl",
            "model_summary.txt",
            "learning_curve.png",
            "tensorboard",
            "model.keras",
        } <= top, top
        models = store.client.search_logged_models([c.info.experiment_id], f"source_run_id = '{c.info.run_id}'")
        # named after the study and trial (the Models view), with the trial's final metrics
        assert [m.name for m in models] == [f"grid-grid-{c.info.run_name}"]
        assert models[0].metrics and {m.key for m in models[0].metrics} <= set(c.data.metrics)
    artifacts = {a.path for a in store.client.list_artifacts(parent.info.run_id, "optuna")}
    assert {"optuna/optimization_history.png", "optuna/parallel_coordinate.png", "optuna/trials.csv"} <= artifacts
    assert "optuna/param_importances.png" in artifacts
    assert {a.path for a in store.client.list_artifacts(parent.info.run_id, "search_space")} >= {
        "search_space/grid.yaml",
        "search_space/resolved.yaml",
    }
    md = (store.root / "results" / "study_grid-grid.md").read_text()
    # the command as run, its paths relative to the folder it ran in (issue 26: no machine's layout in reports)
    assert "harness report study grid-grid" in md and f"harness study {space.name} --sampler grid" in md
    # detect-scan (and anything else that takes a model run) accepts the study's best trial
    from harness.detect import resolve_model_run
    from harness.tracking import Tracker

    best_run = resolve_model_run(Tracker(f"sqlite:///{store.root / 'mlflow.db'}"), "study:grid-grid")
    assert store.client.get_run(best_run).data.metrics["objective"] == max(t.value for t in done)
    assert "model.keras" in {a.path for a in store.client.list_artifacts(best_run)}
    assert "Best: trial" in md and md.count("| COMPLETE |") == 4

    rc, out = run_cli("report", "study", "grid-grid", "--out", "again")
    assert rc == 0 and (store.root / "again" / "study_grid-grid.csv").is_file()
    rc, out = run_cli("report", "study", "nope")
    assert rc == 2 and "no study 'nope'" in out


@pytest.mark.slow
def test_tpe_and_cmle_random_study_run_and_resume_counting_old_trials(store: SimpleNamespace) -> None:
    space = _write(
        store.root,
        "tpe.yaml",
        _native(
            "tpe",
            "lr0: {type: float, low: 0.001, high: 0.1, log: true}\n",
            extra="sampler_options: {tpe: {n_startup_trials: 2}}",
        ),
    )
    rc, out = run_cli("study", str(space), "--trials", "3", "--seed", "7", "--no-report")
    assert rc == 0, out
    assert [t.state.name for t in trials(store, "tpe-tpe")] == ["COMPLETE"] * 3
    # off a terminal: one study line per finished trial, and each trial's steps as a ladder rung shows them
    progress = re.findall(r"^trials (\d)/3: #\d COMPLETE [\d.]+  best [\d.]+ \(#\d\)  \d+ s", out, re.MULTILINE)
    assert progress == ["1", "2", "3"], out
    assert "    trial-002: step 20/20  accuracy " in out
    parent, _ = study_runs(store, "tpe", "tpe-tpe")
    assert parent.data.params["sampler.n_startup_trials"] == "2" and parent.data.params["sampler.seed"] == "7"
    assert parent.data.params["sampler.class"] == "optuna.samplers.TPESampler"

    cmle = _write(
        store.root,
        "cmle-hptune.yaml",
        CMLE_OK.replace("algorithm: GRID_SEARCH", "algorithm: RANDOM_SEARCH").replace("maxTrials: 4", "maxTrials: 2"),
    )
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    # filter_sizes is a CNN key: the CNN rung, at the smoke scale and the tiny data
    common = ["study", str(cmle), "--experiment", "mnist:cnn", "--scale", "smoke", *sets, "--no-report"]
    rc, out = run_cli(*common)
    assert rc == 0, out
    first = trials(store, "cmle-hptune-random")
    assert len(first) == 2 and {t.params["filter_sizes"] for t in first} <= {"S", "M"}
    rc, out = run_cli(*common, "--trials", "3")  # resume: the same study, one more trial
    assert rc == 0, out
    assert "(resumed)" in out and "2/3 trials so far" in out
    assert re.findall(r"^trials \d/3", out, re.MULTILINE) == ["trials 3/3"]  # counting on from the old trials
    again = trials(store, "cmle-hptune-random")
    assert len(again) == 3 and [t.params for t in again[:2]] == [t.params for t in first]
    parent, children = study_runs(store, "cmle-hptune", "cmle-hptune-random")
    assert parent.data.tags["harness.resumed"] == "1" and len(children) == 3
    assert parent.data.tags["cmle.tier"] == "BASIC" and parent.data.tags["harness.max_trials"] == "3"
    assert {c.data.params["model.filter_sizes"] for c in children} <= {"[4, 3, 2]", "[5, 4, 3]"}
    assert {c.data.params["model.name"] for c in children} == {"cnn"}
    for c in children:  # the label the space file uses, next to what it resolved to
        label, resolved = c.data.params["tuned.filter_sizes"], c.data.params["model.filter_sizes"]
        assert (label, resolved) in {("S", "[4, 3, 2]"), ("M", "[5, 4, 3]")}

    rc, out = run_cli(*common, "--seed", "1")
    assert rc == 2 and "runs sampler random seed 0" in out  # a resumed study keeps its sampler
    rc, out = run_cli("study", str(space), "--trials", "3", "--seed", "7", "--set", "lr1=0.001")
    assert rc == 2 and "exists with a different search space" in out


@pytest.mark.slow
def test_pruned_trials_are_killed_child_runs(store: SimpleNamespace) -> None:
    space = _write(
        store.root,
        "prune.yaml",
        _native(
            "prune",
            # the grid sampler's seed 0 order: 0.05 first, then the two that learn nothing
            "lr0: {type: float, low: 1.0e-8, high: 0.1, log: true, grid: [1.0e-8, 2.0e-8, 0.05]}\n",
            extra="pruner: {name: median, n_startup_trials: 1}",
            budget="{max_trials: 3}",
            fixed={"iterations": 30},
        ),
    )
    rc, out = run_cli("study", str(space), "--sampler", "grid", "--no-report")
    assert rc == 0, out
    states = {t.params["lr0"]: t.state.name for t in trials(store, "prune-grid")}
    assert "PRUNED" in states.values(), states
    _, children = study_runs(store, "prune", "prune-grid")
    pruned = [c for c in children if c.data.tags["optuna.state"] == "PRUNED"]
    assert pruned and {c.info.status for c in pruned} == {"KILLED"}
    assert all(float(c.data.params["optim.lr0"]) < 1e-6 for c in pruned)


@pytest.mark.slow
def test_nan_trial_fails_alone_and_max_failed_stops_the_study(store: SimpleNamespace) -> None:
    relu = {"layers": [16], "optimizer": "sgd", "loss_reduction": "mean"}  # lr0=1e10 on a ReLU layer: NaN
    space = _write(
        store.root,
        "nan.yaml",
        _native(
            "nan",
            "lr0: {type: float, low: 0.001, high: 1.0e+11, log: true, grid: [1.0e+10, 0.01]}\n",
            budget="{max_trials: 2, max_failed: 2}",
            fixed=relu,
        ),
    )
    rc, out = run_cli("study", str(space), "--sampler", "grid", "--no-report")
    assert rc == 0, out
    assert "RunFailed: training loss is nan" in out
    states = {t.params["lr0"]: t.state.name for t in trials(store, "nan-grid")}
    assert states == {1e10: "FAIL", 0.01: "COMPLETE"}
    _, children = study_runs(store, "nan", "nan-grid")
    status = {c.data.params["optim.lr0"]: c.info.status for c in children}
    assert status == {"10000000000.0": "FAILED", "0.01": "FINISHED"}

    stop = _write(
        store.root,
        "stop.yaml",
        _native(
            "stop",
            "lr0: {type: float, low: 0.001, high: 1.0e+11, log: true, grid: [1.0e+10, 1.0e+11, 0.01]}\n",
            budget="{max_trials: 3, max_failed: 1}",
            fixed=relu,
        ),
    )
    rc, out = run_cli("study", str(stop), "--sampler", "grid", "--no-report")
    assert rc == 1 and "reached max_failed (maxFailedTrials) = 1" in out
    done = trials(store, "stop-grid")
    assert len(done) < 3 and sum(t.state.name == "FAIL" for t in done) == 1
    parent, _ = study_runs(store, "stop", "stop-grid")
    assert parent.info.status == "FAILED"


@pytest.mark.slow
def test_compare_samplers_at_tiny_scale_writes_table_and_curves(store: SimpleNamespace) -> None:
    space = _write(
        store.root,
        "cmp.yaml",
        _native("cmp", "lr0: {type: float, low: 1.0e-6, high: 0.1, log: true, grid: [1.0e-6, 0.05]}\n"),
    )
    rc, out = run_cli("compare-samplers", str(space), "--samplers", "grid,random", "--repeats", "2")
    assert rc == 0, out
    assert "--- study 1/4 (grid, repeat 0): cmp-cmp-grid-r0\n" in out
    assert re.search(r"^--- study 4/4 \(random, repeat 1\): cmp-cmp-random-r1  \d+ s, about \d+ s left$", out, re.M)
    assert len(re.findall(r"^trials 2/2: ", out, re.MULTILINE)) == 4  # each study's display counts its own trials
    for sampler in ("grid", "random"):
        for r in range(2):
            assert len(trials(store, f"cmp-cmp-{sampler}-r{r}")) == 2  # the grid's size: the default budget
    md = (store.root / "results" / "compare_cmp.md").read_text()
    assert f"harness compare-samplers {space.name} --samplers grid,random --repeats 2" in md  # relative to cwd
    assert "| grid " in md and "| random " in md and "At equal budget, random " in md
    assert "## Pairwise tests" in md and "| grid vs random |" in md  # 2 repeats: tested, never significant
    assert "Best on " not in md and "every pair is within noise" in md
    assert (store.root / "results" / "compare_cmp_curves.png").stat().st_size > 1000
    csv = (store.root / "results" / "compare_cmp.csv").read_text()
    assert "best_mean" in csv and "best_ci_low" in csv and "p_holm" in csv
    rc, out = run_cli("compare-samplers", str(space), "--samplers", "grid", "--budget", "5")
    assert rc == 2 and "more than the grid's 2 points" in out


@pytest.mark.slow
def test_compare_samplers_across_backends_reports_sampler_by_backend(store: SimpleNamespace) -> None:
    space = _write(
        store.root,
        "hw.yaml",
        _native("hw", "lr0: {type: float, low: 1.0e-6, high: 0.1, log: true, grid: [1.0e-6, 0.05]}\n"),
    )
    # two backend names this CPU machine runs (auto resolves to the CPU): the same comparison on each
    rc, out = run_cli("compare-samplers", str(space), "--samplers", "grid", "--repeats", "1", "--backends", "cpu,auto")
    assert rc == 0, out
    assert "--- study 2/2 (grid, repeat 0, auto): hw-cmp-grid-r0-auto" in out
    for backend in ("cpu", "auto"):
        assert len(trials(store, f"hw-cmp-grid-r0-{backend}")) == 2
        _, children = study_runs(store, "hw", f"hw-cmp-grid-r0-{backend}")
        assert {c.data.params["run.backend"] for c in children} == {backend}
    md = (store.root / "results" / "compare_hw_on_cpu-auto.md").read_text()
    assert "| sampler   | backend   |" in md and "| grid      | cpu       |" in md and "| grid      | auto      |" in md
    assert "$ to target (KM median)" in md and "on each backend: cpu, auto" in md
    # one repeat per backend: nothing can be tested, so no backend is named faster or cheaper
    assert "On cpu: " in md and "grid: no backend significantly beats the others on time to target" in md
    for bad, message in (("warp", "backend must be one of"), ("multiworker:2", "studies cannot run on")):
        rc, out = run_cli("compare-samplers", str(space), "--samplers", "grid", "--backends", bad)
        assert rc == 2 and message in out, out


def test_bad_study_commands_are_refused(store: SimpleNamespace) -> None:
    rc, out = run_cli("study", str(SPACES / "mnist_cnn.yaml"), "--parallel", "3")
    assert rc == 2 and "--parallel 3 is more than the search space allows" in out
    rc, out = run_cli("study", str(SPACES / "mnist_cnn.yaml"), "--experiment", "mnist")
    assert rc == 2 and "expected LADDER:RUNG" in out
    rc, out = run_cli("study", str(SPACES / "planesnet_cnn.yaml"), "--sampler", "gp")
    assert rc == 2 and "gp sampler needs the 'torch' package" in out
    rc, out = run_cli("worker", "ghost", "--storage", f"sqlite:///{store.root / 'optuna.db'}")
    assert rc == 2 and "no study 'ghost'" in out
    rc, out = run_cli("study", str(store.root / "missing.yaml"))
    assert rc == 2 and "cannot read it" in out


def test_study_watch_shows_the_trials_the_budget_counts_as_workers_finish_them() -> None:
    """The coordinating process of --parallel K / 0 reads the study as workers elsewhere finish trials."""
    from harness.studies._trials import requeue
    from harness.studies._watch import StudyWatch

    study = optuna.create_study(direction="minimize")
    study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))  # before: a resumed study
    out = io.StringIO()
    with StudyWatch(study, "study w", 4, maximize=False, out=out, every_s=3600) as watch:
        study.tell(study.ask(), 0.2)
        watch.poll()  # within every_s of the last look: the storage is not read
        assert out.getvalue() == ""
        failed = study.ask()
        study.tell(failed, state=optuna.trial.TrialState.FAIL)
        requeue(study, study.trials[failed.number])  # a lost worker's trial, queued again: not counted twice
        watch.poll(force=True)
        study.tell(study.ask(), 0.3)  # the queued trial, run again
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[:2] for line in lines] == [
        ["trials 2/4: #1 COMPLETE 0.2000", "best 0.2000 (#1)"],
        ["trials 3/4: #3 COMPLETE 0.3000", "best 0.2000 (#1)"],
    ], lines
    assert "s left" in lines[0]


@pytest.mark.slow
def test_study_overhead_bench_section_quick() -> None:
    from harness.bench._study_overhead import measure_study_overhead, render_section

    result = measure_study_overhead(True, lambda s: None, counts=(5,), stores=("local",))
    assert [r["trials"] for r in result["rows"]] == [5] and [x["completed"] for x in result["rows"][0]["runs"]] == [5]
    assert result["rows"][0]["ms_per_trial"] > 0 and result["libraries"][0]["mlflow_ms_per_trial"] > 0
    text = "\n".join(render_section(result))
    assert "## (d) Study overhead" in text and "| local | 5 |" in text and "checked in standard mode only" in text


@pytest.mark.slow
def test_trial_of_a_worker_lost_before_its_first_heartbeat_is_failed_and_retried(store: SimpleNamespace) -> None:
    import time

    from harness.studies import StudyRequest, fail_orphans, open_study, plan_study, tally

    space = _write(store.root, "orphan.yaml", _native("orphan", "lr0: {type: float, grid: [0.01, 0.02]}\n"))
    request = StudyRequest(space_file=str(space), sampler="grid", heartbeat_interval=1, grace_period=2)
    ctx, _ = open_study(plan_study(request), lambda line: None)
    with pytest.warns(UserWarning, match="Heartbeat"):
        ctx.study.ask()  # a worker that died right after creating its trial: no heartbeat, never claimed
        beating = ctx.study.ask()  # a live worker, slow to claim its trial (its MLflow run waits on a lock)
    ctx.storage.record_heartbeat(beating._trial_id)
    assert not fail_orphans(ctx, ctx.study.get_trials())
    time.sleep(2.5)
    ctx.storage.record_heartbeat(beating._trial_id)
    assert fail_orphans(ctx, ctx.study.get_trials())
    after = ctx.study.get_trials()
    assert [t.state.name for t in after] == ["FAIL", "RUNNING", "WAITING"]  # the beating trial is left alone
    after = [after[0], after[2]]
    assert after[1].system_attrs["failed_trial"] == 0
    assert after[1].system_attrs["grid_id"] == after[0].system_attrs["grid_id"]  # the same grid point
    assert tally(after).used == 1  # the retry replaces the lost trial in the budget
    store.client.set_terminated(ctx.settings.parent_run_id)


def test_pruners_and_sampler_config() -> None:
    from harness.config import config_from
    from harness.studies._samplers import build_pruner, check_pruner, pruner_config

    base = config_from({"iterations": 1500, "eval_every": 250})
    hyperband = build_pruner(check_pruner("hyperband", None, "t"), base)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    cfg = pruner_config(check_pruner("hyperband", {"reduction_factor": 2}, "t"), base)
    assert cfg["options"]["min_resource"] == 250 and cfg["options"]["max_resource"] == 1500
    assert cfg["options"]["reduction_factor"] == 2
    assert isinstance(
        build_pruner(check_pruner("median", {"n_warmup_steps": 500}, "t"), base), optuna.pruners.MedianPruner
    )
    assert isinstance(build_pruner(check_pruner("none", None, "t"), base), optuna.pruners.NopPruner)
    space = load_space(SPACES / "mnist_cnn.yaml")
    tpe = SamplerSpec.for_space("tpe", 3, space).config()
    assert tpe["seed"] == 3 and tpe["options"]["n_startup_trials"] == 4 and "n_ei_candidates" in tpe["options"]
    # per-trial seeds: a study proposes the same trials whichever worker runs them
    a, b = (SamplerSpec("random", 3).build(space, 5) for _ in range(2))
    assert a._rng.rng.randint(10**9) == b._rng.rng.randint(10**9)


def test_workers_are_pinned_one_gpu_each(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.studies import gpu_ids

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert gpu_ids() == ["0", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert gpu_ids() == []


@pytest.mark.slow
def test_a_worker_lost_after_its_trial_finished_keeps_the_result(tmp_path: Path) -> None:
    """Killed between the MLflow run's end and Optuna's tell: the stale trial is FAIL, and its finished
    result is kept as a COMPLETE trial that supersedes it (no retry, nothing trained twice)."""
    import optuna

    from harness.studies._context import StaleTrials
    from harness.studies._trials import tally
    from harness.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracker.experiment_id("study/lost")
    with tracker.run(exp, "trial-000") as run:
        run.log_metrics(10, {"objective": 0.97})
        run.set_tags({"optuna.state": "COMPLETE"})
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(direction="maximize", storage=storage)
    trial = study.ask({"lr0": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)})
    trial.set_user_attr("harness", {"trial": trial.number, "mlflow_run_id": run.run_id})
    storage.set_trial_state_values(study.trials[0]._trial_id, optuna.trial.TrialState.FAIL)  # as Optuna's sweep does
    handler = StaleTrials()
    handler.tracker, seen = tracker, []
    handler.progress = seen.append
    handler(study, study.trials[0])
    states = [(t.number, t.state.name, t.value) for t in study.trials]
    assert states == [(0, "FAIL", None), (1, "COMPLETE", 0.97)]
    assert study.trials[1].params == study.trials[0].params and tally(study.trials).used == 1
    assert tracker.client.get_run(run.run_id).info.status == "FINISHED" and "its result is kept" in seen[0]


def test_study_keeps_a_digest_and_workers_read_the_space_from_the_parent_run(store: SimpleNamespace) -> None:
    from harness.errors import UserError
    from harness.studies import StudyRequest, open_study, plan_study
    from harness.studies._context import attach

    text = _native("small-attrs", "lr0: {type: float, grid: [0.01, 0.02]}\n" + "# a long comment\n" * 200)
    space = _write(store.root, "small-attrs.yaml", text)
    request = StudyRequest(space_file=str(space), sampler="grid")
    ctx, _ = open_study(plan_study(request), lambda line: None)
    attrs = ctx.study.user_attrs["harness"]
    assert "a long comment" not in json.dumps(attrs) and len(json.dumps(attrs)) < 2000  # the file stays in MLflow
    assert attrs["space_artifact"] == "search_space/small-attrs.yaml" and len(attrs["space_sha256"]) == 64
    url = f"journal:{store.root / 'optuna.journal'}"
    worker = attach(ctx.name, url, progress=lambda line: None)  # as `harness worker` joins
    assert worker.resolved.fingerprint() == ctx.resolved.fingerprint()
    # a space file changed in the store after the study started is refused, not silently used
    changed = space.read_text().replace("0.02", "0.03")
    store.client.log_text(ctx.parent.run_id, changed, "search_space/small-attrs.yaml")
    with pytest.raises(UserError, match=r"search space .search_space/small-attrs.yaml. .* has changed"):
        attach(ctx.name, url, progress=lambda line: None)
    store.client.set_terminated(ctx.settings.parent_run_id)


def test_integer_parameters_log_and_print_as_integers() -> None:
    from harness.report._study import short_value
    from harness.studies._space import ParamSpec

    lr2 = ParamSpec("lr2", "int", "test", low=800, high=30000, scale="log")
    assert lr2.shown({"lr2": 16440}) == 16440 and isinstance(lr2.shown({"lr2": 16440}), int)
    mirrored = ParamSpec("lr2", "int", "test", low=800, high=30000, scale="reverse_log")
    assert mirrored.shown({"lr2__reverse_log": 800}) == 30000  # the value trained, not Optuna's mirror
    size = ParamSpec("size", "categorical", "test", choices=("S", "M"), values={"S": (4, 3, 2), "M": (5, 4, 3)})
    assert size.shown({"size": "M"}) == "M"
    # a float config field holding a whole number (lr2 = 16440.0 in MLflow) reads as one
    assert [short_value(v) for v in ("16440.0", 16440.0, "0.011781448719376511", 1e-5, "S", (4, 3, 2))] == [
        "16440",
        "16440",
        "0.01178",
        "1e-05",
        "S",
        "4,3,2",
    ]
