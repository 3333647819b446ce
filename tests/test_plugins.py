"""Plug-ins a user installs: found through their entry point, with no edit to harness.

The package in ``tests/plugin_demo`` (a task, a dataset and a model) is installed with
pip into a fresh virtual environment, and harness runs there as a user would run it:
``python -m harness`` in new processes, a ladder of the plug-in's own ladder file, a
study with ``--parallel 2`` (worker processes that must find the plug-in themselves) and
the reports. The environment reaches this one's packages (harness, TensorFlow, MLflow)
through a ``.pth`` file, so nothing heavy is installed twice: ``--system-site-packages``
would only reach the system interpreter's, where harness is not installed.

The unit tests at the end check the registry itself: the "did you mean" answer, the
scoped context, and a broken plug-in reported in one line.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import registry
from harness.errors import ConfigError

PLUGIN_SOURCE = Path(__file__).with_name("plugin_demo")
TASK, DATASET, MODEL = "regression-demo", "linear-demo", "linear-demo"
LADDER, SPACE, STUDY, TRIALS = "seam-demo", "seam-demo", "seam-demo-random", 4


def _printed(python: Path, code: str, cwd: Path | None = None) -> str:
    """What ``code`` prints when ``python`` runs it."""
    return subprocess.run(
        [str(python), "-c", code], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.removesuffix("\n")


def _venv(root: Path) -> tuple[Path, Path]:
    """A new virtual environment that sees this interpreter's site-packages: its python and its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = Path(_printed(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    # addsitedir also runs those folders' .pth files (harness's editable install is one)
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in outer)
    (purelib / "outer_site_packages.pth").write_text(lines, encoding="utf-8")
    return python, purelib


def _harness(python: Path, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "HARNESS_DATA_DIR", "PYTHONPATH")}
    env["HARNESS_OFFLINE"] = "1"
    return subprocess.run(
        [str(python), "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The demo plug-in pip-installed (not editable) into a fresh environment, and a working folder."""
    root = tmp_path_factory.mktemp("plugins")
    python, site_dir = _venv(root / "venv")
    # pip of this environment installs into the new one; no index, no build isolation: nothing is downloaded
    # a copy: building in place would leave an .egg-info in tests/ that test_seam's import path then finds
    source = shutil.copytree(PLUGIN_SOURCE, root / "source", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    subprocess.run([*pip, "--no-deps", "--no-index", "--no-build-isolation", str(source)], check=True)
    work = root / "work"
    work.mkdir()
    # the installed copy's ladder file, not the source tree's: what a user of the plug-in has
    ladder_file = _printed(python, "import harness_plugin_demo as d; print(d.LADDER_FILE)", work)
    assert str(root) in ladder_file and "source" not in ladder_file, ladder_file
    space_file = work / "space.yaml"
    space = _printed(python, f"import harness_plugin_demo as d; print(d.space_yaml(trials={TRIALS}), end='')", work)
    space_file.write_text(space, encoding="utf-8")
    return SimpleNamespace(python=python, site_dir=site_dir, work=work, ladder_file=ladder_file, space_file=space_file)


@pytest.mark.slow
def test_an_installed_plugin_runs_ladder_parallel_study_and_reports(installed: SimpleNamespace) -> None:
    from mlflow.tracking import MlflowClient

    py, work = installed.python, installed.work
    # the ladder writes its own report (the plug-in's columns); the study's is rebuilt by `report study`
    ladder = _harness(py, work, "ladder", installed.ladder_file, "--scale", "smoke", "--out", "reports")
    assert ladder.returncode == 0, ladder.stdout + ladder.stderr
    study = _harness(py, work, "study", str(installed.space_file), "--parallel", "2", "--no-report")
    assert study.returncode == 0, study.stdout + study.stderr
    study_report = _harness(py, work, "report", "study", STUDY, "--out", "reports")
    assert study_report.returncode == 0, study_report.stdout + study_report.stderr

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    rungs = client.search_runs(
        [client.get_experiment_by_name(f"ladder/{LADDER}").experiment_id], "tags.harness.rung != ''"
    )
    assert sorted(r.data.tags["harness.rung"] for r in rungs) == ["narrow", "wide"]
    for run in rungs:
        assert run.info.status == "FINISHED"
        assert (run.data.params["task.name"], run.data.params["data.name"], run.data.params["model.name"]) == (
            TASK,
            DATASET,
            MODEL,
        )
        assert "final_test_r2" in run.data.metrics

    runs = client.search_runs([client.get_experiment_by_name(f"study/{SPACE}").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("harness.kind") == "study")
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == TRIALS and {r.info.status for r in trials} == {"FINISHED"}, [
        (r.info.run_name, r.info.status) for r in trials
    ]
    # the trials ran in the worker processes (not the one that planned the study): each found the plug-in itself
    assert parent.data.tags["harness.pid"] not in {r.data.tags["harness.pid"] for r in trials}
    assert all(r.data.params["task.name"] == TASK and "final_test_r2" in r.data.metrics for r in trials)

    assert "final R²" in (work / "reports" / f"{LADDER}_ladder_smoke.md").read_text(encoding="utf-8")
    assert "final_test_r2 (maximize)" in (work / "reports" / f"study_{STUDY}.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_plugin_that_fails_to_load_is_one_line_naming_it(installed: SimpleNamespace, tmp_path: Path) -> None:
    """A plug-in whose import raises: exit 2, the entry point and its distribution named, no traceback."""
    broken = installed.site_dir / "harness_broken_demo"
    dist = installed.site_dir / "harness_broken_demo-0.1.dist-info"
    broken.mkdir()
    dist.mkdir()
    try:
        (broken / "__init__.py").write_text("raise RuntimeError('the model zoo is not installed')\n")
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-broken-demo\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text("[harness.plugins]\nbroken = harness_broken_demo\n")
        out = _harness(installed.python, tmp_path, "ladder", installed.ladder_file, "--scale", "smoke")
    finally:
        for folder in (broken, dist):
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert "plug-in 'broken' (harness_broken_demo, from harness-broken-demo 0.1) failed to load" in out.stderr
    assert "RuntimeError: the model zoo is not installed" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()


# --------------------------------------------------------------------------------------------- the registry


def test_unknown_name_says_the_closest_and_every_valid_one() -> None:
    reg: registry.Registry[int] = registry.Registry("widget")
    reg.add("sprocket", 1)
    reg.add("gear", 2)
    hint = r"did you mean 'sprocket'\?"
    with pytest.raises(ConfigError, match=rf"^where: unknown widget 'sprocet'; {hint} valid widgets: gear, sprocket$"):
        reg.get("sprocet", "where")
    with pytest.raises(ConfigError, match=r"^unknown widget 'zzz'; valid widgets: gear, sprocket$"):
        reg.get("zzz")
    with pytest.raises(ValueError, match="widget 'gear' is registered twice"):
        reg.add("gear", 3)
    assert reg.get("gear") == 2 and "gear" in reg and "zzz" not in reg and reg.values() == [2, 1]


def test_scoped_restores_every_registry() -> None:
    """A model registered inside ``scoped()`` is known to the config there, and nowhere after it."""
    import harness.data
    import harness.tasks  # noqa: F401 (the built-in task and datasets, which the default config names)
    from harness.config import config_from
    from harness.models import list_models, register_model

    before = list_models()
    for _ in range(2):  # the second time shows the name was freed: no "registered twice"
        with registry.scoped():
            register_model("scoped-demo")(lambda p, shape, outputs: None)
            assert "scoped-demo" in list_models()
            assert config_from({"model": "scoped-demo"}).model.name == "scoped-demo"
        assert list_models() == before
        with pytest.raises(ConfigError, match="unknown model 'scoped-demo'"):
            config_from({"model": "scoped-demo"})
