"""Issue 26, studies: TensorBoard folders in trial order under one readable folder per study; scales that
change budgets, never a rung's identity (ladders and a study's --scale over a space's fixed values); a study
whose trials all tie says that its sampler had nothing to learn. One study (tied trials, resumed, then compared)
serves the TensorBoard and the tie checks; worker processes' layout: tests/test_studies_slow.py's Ctrl-C test."""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.errors import ConfigError
from harness.ladders import builtin_ladders, load_ladder
from harness.ladders._spec import parse_ladder
from harness.report._study import flat_objective
from harness.studies import load_space, parse_space

ROOT = Path(__file__).resolve().parents[1]
TINY = {"steps_per_execution": 10, "train_subset": 600, "test_subset": 200, "eval_batch_size": 200}


def _space(folder: Path, name: str, params: str, fixed: dict, extra: str = "", trials: int = 3) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            experiment: {{ladder: mnist, rung: softmax, scale: smoke}}
            fixed: {json.dumps(fixed)}
            objective: {{metric: accuracy}}
            budget: {{max_trials: {trials}}}
            {extra}
            params:
            """
        )
        + textwrap.indent(textwrap.dedent(params), "  "),
        encoding="utf-8",
    )
    return path


def run_cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue() + err.getvalue()


@pytest.fixture
def store(tmp_path: Path, tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HARNESS_OFFLINE", "1")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tiny_data_dir))
    yield SimpleNamespace(root=tmp_path, client=MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"))


def _event_folders(root: Path) -> list[str]:
    """Every folder holding TensorBoard event files, relative to ``root``, in the order TensorBoard sorts them."""
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("events.out.tfevents.*"))


def _trial_folders(tensorboard: Path, study: str) -> list[str]:
    """``<invocation>/trial-NNN`` of one study (its train and test writers folded into the trial)."""
    folders = _event_folders(tensorboard / "studies" / study)
    return list(dict.fromkeys(str(Path(f).parent) for f in folders))


@pytest.fixture(scope="module")
def flat_study(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> SimpleNamespace:
    """One study run for several checks: 3 random trials that all tie (a learning rate of ~1e-10 leaves the
    seeded initial weights as they are), reported; resumed to 4 trials; then compare-samplers on its space (one
    trial per study: the order of trials is the study's check)."""
    root = tmp_path_factory.mktemp("flat")
    fixed = {**TINY, "iterations": 10, "eval_every": 10}
    space = _space(root, "flat", "lr0: {type: float, low: 1.0e-10, high: 2.0e-10, grid: [1.0e-10, 2.0e-10]}\n", fixed)
    folders = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("HARNESS_OFFLINE", "1")
        mp.setenv("HARNESS_DATA_DIR", str(tiny_data_dir))
        commands = [
            ("study", str(space), "--sampler", "random", "--trials", "3"),
            ("study", str(space), "--sampler", "random", "--trials", "4", "--no-report"),  # resumed
            ("compare-samplers", str(space), "--samplers", "grid,random", "--repeats", "1", "--budget", "1"),
        ]
        outputs = []
        for command in commands:
            rc, out = run_cli(*command, "--out", "res")
            assert rc == 0, out
            outputs.append(out)
            folders.append(_trial_folders(root / "tensorboard", "flat-random"))
    return SimpleNamespace(
        root=root, client=MlflowClient(f"sqlite:///{root / 'mlflow.db'}"), outputs=outputs, folders=folders
    )


# --- 4. TensorBoard: one readable folder per study, trials in trial order ----------------------------------


def test_tensorboard_folder_splits_harness_groups_and_keeps_names_inside_the_root(tmp_path: Path) -> None:
    from harness.executor import Executor
    from harness.tracking import Tracker

    executor = Executor(Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}"), tensorboard_dir=tmp_path / "tb")
    assert executor.tensorboard_logdir("studies/mnist-cnn-tpe", "abcdef0123", "trial-003").relative_to(
        tmp_path / "tb"
    ).parts == ("studies", "mnist-cnn-tpe", "abcdef01", "trial-003")
    executor.invocation = "20260101-120000-0123abcd"
    folder = executor.tensorboard_logdir("studies/s", "abcdef0123", "trial-000")
    assert folder == tmp_path / "tb" / "studies" / "s" / "20260101-120000-0123abcd" / "trial-000"
    # a name read back from a store cannot lead out: '..' is spelled out, not followed
    assert executor.tensorboard_logdir("studies/..", "r", "..").resolve().is_relative_to(tmp_path / "tb")


@pytest.mark.slow
def test_study_and_compare_samplers_write_trials_in_order_under_one_readable_folder(
    flat_study: SimpleNamespace,
) -> None:
    tensorboard = flat_study.root / "tensorboard"
    first, resumed, _ = flat_study.folders
    (invocation,) = {Path(f).parent.name for f in first}
    assert first == [f"{invocation}/trial-{n:03d}" for n in range(3)]
    # the invocation is the study's parent run (its start and id), so a resumed study adds to the same folder
    exp = flat_study.client.get_experiment_by_name("study/flat")
    parents = flat_study.client.search_runs([exp.experiment_id], "tags.`harness.kind` = 'study'")
    (parent,) = [r for r in parents if r.info.run_name == "flat-random"]  # beside compare-samplers' studies
    assert invocation.endswith("-" + parent.info.run_id[:8])
    assert resumed == [f"{invocation}/trial-{n:03d}" for n in range(4)]
    assert [Path(f).name for f in _event_folders(tensorboard / "studies" / "flat-random")] == ["test", "train"] * 4
    for study in ("flat-cmp-grid-r0", "flat-cmp-random-r0"):  # compare-samplers: one folder per study
        folders = _trial_folders(tensorboard, study)
        assert [Path(f).name for f in folders] == ["trial-000"], folders
    assert all("%" not in f for f in _event_folders(tensorboard)), _event_folders(tensorboard)


# --- 5. Scales change budgets, never identities ---------------------------------------------------------------


def test_every_builtin_rung_is_the_same_model_at_every_scale() -> None:
    """What a rung sets (its layers, grid, model) holds at smoke, standard and full; only budgets change."""
    yolo = load_ladder("yolo")
    assert {rung.name: cfg.model.layers for rung, cfg in yolo.configs("smoke")}["layers17"] == 17
    for name in builtin_ladders():
        ladder = load_ladder(name)
        raw = yaml.safe_load(resources.files("harness.ladders").joinpath(f"{name}.yaml").read_text())
        set_by_rungs = {
            r.config.key_of(k) for r, spec in zip(ladder.rungs, raw["rungs"], strict=True) for k in spec["set"] or {}
        }
        for scale in ladder.scales:
            for rung, cfg in ladder.configs(scale):
                identity = set_by_rungs - cfg.budget_keys()
                ours, theirs = rung.config.params(), cfg.params()
                assert {k: theirs.get(k) for k in identity} == {k: ours.get(k) for k in identity}, (
                    name,
                    scale,
                    rung.name,
                )


LADDER = """\
name: tiny
base: {{iterations: 100, eval_every: 50}}
scales:
  smoke: {smoke}
  standard: {{}}
rungs:
  - name: softmax
    set: {{}}
  - name: dense
    set: {{layers: [20], iterations: 200}}
"""


def test_a_scale_that_sets_what_a_rung_is_is_refused_at_load_and_a_budget_is_not(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_ladder(LADDER.format(smoke="{layers: [5], iterations: 20, eval_every: 10}"), "tiny.yaml")
    message = str(err.value)
    assert message.startswith("tiny.yaml: scales.smoke.layers: a scale may change a rung's budget (")
    assert "rung 2 (dense) sets layers" in message and "remove layers from scales.smoke" in message
    assert "\n" not in message
    # a budget key a rung sets too (iterations): the scale's value wins, as a smoke scale must
    ladder = parse_ladder(LADDER.format(smoke="{iterations: 20, eval_every: 10, train_subset: 100}"), "tiny.yaml")
    smoke = {rung.name: cfg for rung, cfg in ladder.configs("smoke")}
    assert smoke["dense"].run.iterations == 20 and smoke["dense"].model.layers == (20,)
    assert smoke["dense"].data.train_subset == 100
    # on the command line: one line, exit 2, before any run
    path = tmp_path / "tiny.yaml"
    path.write_text(LADDER.format(smoke="{model: cnn}"), encoding="utf-8")
    rc, out = run_cli("ladder", str(path), "--scale", "smoke")
    assert rc == 2 and "scales.smoke.model: a scale may change a rung's budget" in out, out
    assert "Traceback" not in out and not (tmp_path / "mlflow.db").exists()


def test_study_scale_sets_the_budget_over_a_space_files_fixed_values() -> None:
    space = load_space(ROOT / "search_spaces" / "mnist_cnn.yaml")  # fixed: iterations 1500, eval_every 250
    as_written = space.resolve()
    assert (as_written.base.run.iterations, as_written.scale_notes) == (1500, ())
    smoke = space.resolve(scale="smoke")
    assert (smoke.base.run.iterations, smoke.base.run.eval_every, smoke.base.data.train_subset) == (20, 10, 2000)
    assert smoke.base.model.name == "cnn" and smoke.base.optim.lr2 == 2000  # the rung is still the rung
    (note,) = smoke.scale_notes
    assert "--scale smoke sets the budget over" in note and "iterations=1500 → 20, eval_every=250 → 10" in note
    assert smoke.fingerprint() != as_written.fingerprint()  # a different study: its trials train 20 steps


def test_a_space_file_may_keep_its_fixed_budget_at_every_scale_and_the_output_says_so(tmp_path: Path) -> None:
    text = (ROOT / "search_spaces" / "mnist_cnn.yaml").read_text(encoding="utf-8")
    kept = parse_space(text.replace("fixed:\n", "scale_overrides_fixed: false\nfixed:\n"), "keep.yaml")
    resolved = kept.resolve(scale="smoke")
    assert (resolved.base.run.iterations, resolved.base.data.train_subset) == (1500, 2000)  # subsets: not fixed
    (note,) = resolved.scale_notes
    assert note.startswith("keep.yaml says scale_overrides_fixed: false: its fixed iterations=1500, eval_every=250")
    assert "the scale alone would set iterations=20, eval_every=10" in note
    with pytest.raises(ConfigError, match=r"bad\.yaml: scale_overrides_fixed: expected true .* but got 'no'"):
        parse_space(text.replace("fixed:\n", "scale_overrides_fixed: 'no'\nfixed:\n"), "bad.yaml")


@pytest.mark.slow
def test_study_scale_smoke_trains_the_scales_steps_and_says_why(store: SimpleNamespace) -> None:
    fixed = {**TINY, "iterations": 40, "eval_every": 20}
    space = _space(store.root, "sc", "lr0: {type: float, grid: [0.01]}\n", fixed, trials=1)
    rc, out = run_cli("study", str(space), "--scale", "smoke", "--no-report")
    assert rc == 0, out
    assert "note: --scale smoke sets the budget over" in out and "iterations=40 → 20, eval_every=20 → 10" in out
    exp = store.client.get_experiment_by_name("study/sc")
    runs = store.client.search_runs([exp.experiment_id])
    (trial,) = [r for r in runs if r.data.tags.get("harness.kind") == "trial"]
    (parent,) = [r for r in runs if r.data.tags.get("harness.kind") == "study"]
    # the scale's budget, subsets included (the tiny data has 600 rows: all of them)
    assert trial.data.params["run.iterations"] == "20" and trial.data.params["data.train_subset"] == "2000"
    assert "train_subset=600 → 2000" in out
    assert "iterations=40 → 20" in parent.data.tags["harness.scale_notes"]


# --- 6. Constant objectives -----------------------------------------------------------------------------------


def test_flat_objective_names_the_scale_that_would_give_signal() -> None:
    text = flat_objective([0.0, 0.0, 0.0], "yolo:layers17@smoke", "final_test_iou")
    assert text.startswith("every one of the 3 complete trials scored final_test_iou = 0: the sampler had nothing")
    assert "run it at --scale standard" in text
    assert "--scale full" in flat_objective([0.5, 0.5], "mnist:cnn@standard", "final_test_accuracy")
    assert "--set iterations=N" in flat_objective([0.5, 0.5], "mnist:cnn@full", "final_test_accuracy")
    assert "--set iterations=N" in flat_objective([0.5, 0.5], "config", "final_test_accuracy")
    assert flat_objective([0.5], "config", "x") == ""  # one trial ranks nothing, and ties nothing either
    assert flat_objective([0.5, 0.51, 0.5], "config", "x") == ""
    assert flat_objective([float("nan"), 0.5], "config", "x") == ""


def test_study_watch_says_once_that_tied_trials_teach_the_sampler_nothing() -> None:
    from harness.studies._watch import FLAT_AFTER, StudyWatch

    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    watch = StudyWatch(study, "study y", 5, True, live=False, out=out, experiment="yolo:layers17@smoke")
    with watch:
        for i in range(FLAT_AFTER + 1):
            study.tell(study.ask(), 0.0)
            watch.poll(force=True)
            notes = [line for line in out.getvalue().splitlines() if line.startswith("note: ")]
            assert len(notes) == (1 if i + 1 >= FLAT_AFTER else 0), out.getvalue()
    assert "nothing to learn" in notes[0] and "--scale standard" in notes[0]
    other = io.StringIO()
    varied = optuna.create_study(direction="maximize")
    with StudyWatch(varied, "study v", 4, True, live=False, out=other) as watch:
        for value in (0.1, 0.2, 0.1):
            varied.tell(varied.ask(), value)
            watch.poll(force=True)
    assert "note:" not in other.getvalue()


@pytest.mark.slow
def test_a_study_whose_trials_all_tie_says_so_in_its_display_summary_and_report(flat_study: SimpleNamespace) -> None:
    """A learning rate of ~1e-9 leaves the seeded initial weights as they are: every trial scores the same."""
    out = flat_study.outputs[0]
    notes = [line for line in out.splitlines() if "the sampler had nothing to learn" in line]
    assert len(notes) == 2, out  # the display once 3 trials tied, the summary at the end
    assert all("run it at --scale standard" in n for n in notes)
    md = (flat_study.root / "res" / "study_flat-random.md").read_text(encoding="utf-8")
    assert "**Nothing to learn:** every one of the 3 complete trials scored final_test_accuracy" in md
    html = (flat_study.root / "res" / "study_flat-random.html").read_text(encoding="utf-8")
    assert "<strong>Nothing to learn:</strong>" in html
