"""Help, the ladder list and every error that needs no data answer before TensorFlow or MLflow is imported.

Each command runs in a fresh interpreter (an earlier test in this process may have imported both),
which reports the exit code and which of the heavy packages it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPACE = str(ROOT / "search_spaces" / "mnist_cnn.yaml")
HEAVY = ("tensorflow", "keras", "mlflow")

CHILD = f"""
import json, sys
from harness.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # argparse: --help, a bad choice
    code = exc.code
print(json.dumps({{"code": code, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""

# (argv, exit code, a piece of the last stderr line; for exit 0, of stdout)
CASES = [
    (["--help"], 0, "usage: harness"),
    (["ladders"], 0, "mnist"),
    (["ladder", "mnsit"], 2, "error: unknown ladder 'mnsit' (did you mean 'mnist'?)"),
    (["ladder", "mnist", "--rungs", "9"], 2, "error: --rungs: '9' is outside the rungs of mnist (1..8)"),
    (["ladder", "mnist", "--set", "optim.lrr=3"], 2, "unknown key 'optim.lrr' (did you mean optim.lr2?)"),
    (["ladder", "mnist", "--set", "optim.lr0=abc"], 2, "key 'optim.lr0' expects a number, but got 'abc'"),
    (["ladder", "mnist", "--vary", "lr0=1,x"], 2, "'lr0' expects a number"),
    (["study", SPACE, "--set", "optim.lrr=3"], 2, "unknown key 'optim.lrr'"),
    (["study", "missing.yaml"], 2, "error: search space missing.yaml: cannot read it"),
    (["study", SPACE, "--sampler", "foo"], 2, "argument --sampler: invalid choice: 'foo'"),
    (["study", SPACE, "--trials", "0"], 2, "error: --trials must be >= 1, but got 0"),
    (["study", SPACE, "--storage", "postgresql://host:port/db"], 2, "error: --storage: "),
    (["compare-samplers", SPACE, "--samplers", "foo"], 2, "error: --samplers expects a comma list of"),
    (["record-landscape", SPACE, "--set", "optim.lrr=3"], 2, "unknown key 'optim.lrr'"),
    (["record-landscape", SPACE, "--points", "3"], 2, "error: --points must be between 8"),
    (["worker", "some-study"], 2, "error: worker needs the study's storage"),
    (["bench", "--only", "z"], 2, "error: --only expects a comma list of sections"),
    (["bench", "hardware", "--only", "a"], 2, "error: --only selects sections of the default benchmark"),
]


@pytest.mark.parametrize(("argv", "code", "says"), CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_answers_without_tensorflow_or_mlflow(tmp_path: Path, argv: list[str], code: int, says: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "MLFLOW_", "TF_CONFIG"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"  # never the user's store
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    *printed, last = done.stdout.strip().splitlines()
    report = json.loads(last)
    assert report["code"] == code, done.stderr
    assert report["loaded"] == [], f"{argv} imported {report['loaded']} before answering"
    if code == 0:
        assert says in "\n".join(printed)
        assert done.stderr == ""
        return
    assert "Traceback" not in done.stderr
    assert says in done.stderr.strip().splitlines()[-1]
    if done.stderr.startswith("error: "):  # the harness's own answer: one line, no TensorFlow noise before it
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing was created for a refused command
