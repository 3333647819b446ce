"""The prepared GPU run (issue 22), in three parts: ``python tests/device_run.py pack|run|report``, or
``rehearse`` for all three on this CPU (``nox -s device -- rehearse``).

- ``pack`` (here): the Python 3.12 manylinux wheels that the GPU machine lacks (it has JAX and PyTorch, no
  TensorFlow, no internet: /work/.library/device/KINDS.md lists what it holds) at the versions installed
  here, and the MNIST files, into ``.device/`` (git-ignored; the device tool carries it), checked to stay
  under the 64 MiB that may travel with the working tree (harness itself runs from the tree).
- ``run`` (there, from the repository root): installs the wheels into a target folder, then runs
  ``harness backends`` and each measurement under its own timeout, all logging to one SQLite store, which
  is copied at the end into ``--out`` (the device tool's ``$OUT``, which comes back: a few files only) with
  the study's journal and one log file. A step that fails is logged and the next one runs.
- ``report`` (back here): the committed reports, ``results/bench/gpu/``, generated from the store
  that came back (``harness report bench-hardware``, ``report ladder`` and ``report study``).

The device command (carry ``.device``; timeout_s 600), after ``python tests/device_run.py pack`` here:
    python3 tests/device_run.py run --out $OUT
then, with the files back under FILES_AT: ``python tests/device_run.py report --out FILES_AT``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # harness runs from the working tree there; its process supervisor is stdlib only
from harness.procs import Supervisor  # noqa: E402

PACK = ROOT / ".device"
LIMIT_BYTES = 64 * 2**20
STORE = Path(tempfile.gettempdir()) / "device-store"  # the runs' tracking store and study journal
# what harness imports that the GPU machine's image does not hold (KINDS.md's package list), by
# distribution name; each carried at the version installed here, so that it is what the tests ran with
CARRY = (
    "keras", "namex", "optree",
    "optuna", "alembic", "sqlalchemy", "mako", "colorlog",
    "mlflow-skinny", "mlflow-tracing", "cachetools", "databricks-sdk",
    "gitpython", "gitdb", "smmap", "importlib-metadata", "sqlparse", "python-dotenv",
    "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-proto", "opentelemetry-semantic-conventions",
    "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "fastapi", "starlette",
    "cryptography", "cffi", "pycparser",
)  # fmt: skip
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
DATA = ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz")
DATA += ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def pack(data_dir: Path) -> Path:
    """``.device/``: wheels/ and data/, under 64 MiB together with the rest of the working tree's files."""
    shutil.rmtree(PACK, ignore_errors=True)
    wheels = PACK / "wheels"
    wheels.mkdir(parents=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in CARRY]
    platform = [arg for p in PLATFORMS for arg in ("--platform", p)]
    download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version"]
    subprocess.run([*download, "3.12", "--implementation", "cp", *platform, "-d", str(wheels), *pins], check=True)
    for rel in DATA:
        target = PACK / "data" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / rel, target)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    tree = sum((ROOT / f).stat().st_size for f in tracked.decode().split("\0") if f and (ROOT / f).is_file())
    total = _size(PACK) + tree
    print(f"packed {PACK}: {_size(PACK) / 2**20:.1f} MiB (+ {tree / 2**20:.1f} MiB of tracked files) of 64 MiB")
    if total > LIMIT_BYTES:
        raise SystemExit(f"error: {total / 2**20:.1f} MiB would travel, over the device tool's 64 MiB")
    return PACK


# ``python -m harness`` that ends (its runs KILLED) when this script dies, kill -9 included (harness.lifeline)
WATCHED = """
import runpy
from harness import lifeline
lifeline.watch_supervisor(lambda supervisor: lifeline.interrupt_self())
runpy.run_module("harness", run_name="__main__")
"""


# what runs there, in order, each under its own timeout (s): 8 minutes at most, inside the device tool's 10
# minutes a command with the wheels' install (about half a minute)
def steps(backend: str, scale: str) -> list[tuple[str, list[str], float]]:
    on = ["--set", f"backend={backend}", "--scale", scale]
    jax = ["--set", "framework=jax", *on]
    # the frameworks installed there (PyTorch is in the GPU image; not in the rehearsal's)
    frameworks = ",".join(f for f in ("jax", "torch") if importlib.util.find_spec(f) is not None)
    # PlanesNet (45 MiB) and the Airbus scenes do not fit in the 64 MiB beside the wheels: MNIST and synthetic images
    bench = ["bench", "hardware", "--frameworks", frameworks, "--backends", backend]
    bench += ["--experiments", "mnist-speed,mnist-bn,resnet50", "--repeats", "3"]
    bench += ["--quick"] if scale == "smoke" else []
    # 24 measurements of 10-15 s each on a GPU (start-up and compilation dominate), then the study's 3 trials
    return [
        ("backends", ["backends"], 60),
        (f"bench hardware on {frameworks}", bench, 330),
        ("mnist-cnn study on jax", ["study", "search_spaces/mnist_cnn.yaml", "--trials", "3", *jax], 90),
    ]


def run(out: Path, backend: str, scale: str, site: Path) -> int:
    """Install the wheels into ``site``, then every step, logging to ``out/mlflow.db`` and ``out/device.log``."""
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "device.log").open("a", encoding="utf-8")
    wheels = sorted(str(w) for w in (PACK / "wheels").glob("*.whl"))
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    subprocess.run([*install, "--no-cache-dir", "--upgrade", "--target", str(site), *wheels], check=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    env.update(HARNESS_OFFLINE="1", HARNESS_DATA_DIR=str(PACK / "data"), PYTHONUNBUFFERED="1")
    # the store outside ``out``: only a few files come back, and the artifacts are hundreds (reports need none)
    store = STORE
    store.mkdir(parents=True, exist_ok=True)
    common = ["--tracking-uri", f"sqlite:///{store / 'mlflow.db'}"]
    failed = 0
    for label, args, limit in steps(backend, scale):
        argv = [sys.executable, "-c", WATCHED, *args, *(common if args[0] != "backends" else [])]
        if args[0] in ("ladder", "study"):
            argv += ["--no-report"]
        if args[0] == "bench":
            argv += ["--out", str(Path(tempfile.gettempdir()) / "device-bench")]  # the report is made back here
        if args[0] == "ladder":
            argv += ["--tensorboard-dir", str(Path(tempfile.gettempdir()) / "device-tb")]
        started = time.monotonic()
        print(f"== {label}: {shlex.join(argv[3:])}", file=log, flush=True)
        step_log = out / "step.log"
        # a session of its own, stopped as a group at its limit: a step's children (a study's workers, a framework's
        # measuring process) end with it, and the next step starts on an idle machine
        with Supervisor() as step:
            child = step.start(label, argv, env, log=step_log)
            while child.poll() is None and time.monotonic() - started < limit:
                time.sleep(0.5)
            code = child.poll()
            if code is None:
                step.stop()
                code = 124
        log.write(step_log.read_text(encoding="utf-8", errors="replace"))
        step_log.unlink()
        failed += code != 0
        line = f"== {label}: exit {code} after {time.monotonic() - started:.0f} s (limit {limit:.0f} s)"
        print(line, file=log, flush=True)
        print(line, flush=True)
    for name in ("mlflow.db", "optuna.journal"):  # what the reports are generated from
        if (store / name).exists():
            shutil.copyfile(store / name, out / name)
    return 1 if failed else 0


def report(store: Path, out: Path, scale: str) -> None:
    """The committed reports from the store that came back: the benchmark's (``hardware.md``) and the study's
    (its own name)."""
    uri = f"sqlite:///{store.resolve()}"
    bench = ["report", "bench-hardware", "--tracking-uri", uri, "--out", str(out)]
    subprocess.run([sys.executable, "-m", "harness", *bench], check=False)
    study = ["report", "study", "mnist-cnn-tpe", "--tracking-uri", uri, "--out", str(out)]
    subprocess.run([sys.executable, "-m", "harness", *study], check=False)


# the GPU machine's image as far as harness touches it (KINDS.md), without TensorFlow: what rehearse installs
GPU_IMAGE = (
    "jax[cpu]", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "pillow", "pyyaml", "rich", "tensorboard",
    "protobuf", "h5py", "ml-dtypes", "absl-py", "requests", "click", "cloudpickle", "anyio", "packaging", "tqdm",
    "typing-extensions", "tabulate", "zipp", "annotated-doc", "jinja2", "psutil", "werkzeug", "markdown",
)  # fmt: skip


def _runs(python: str) -> bool:
    try:  # a pyenv shim of a version not selected exits 127
        return subprocess.run([python, "-c", ""], capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def gpu_like_python(folder: Path) -> str:
    """A Python 3.12 virtual environment like the GPU machine's (JAX, no TensorFlow), made once in ``folder``."""
    python = folder / "bin" / "python"
    if not python.exists():
        candidates = [*map(str, sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))), "python3.12"]
        found = next((c for c in candidates if _runs(c)), None)
        if found is None:
            raise SystemExit("error: rehearse needs a python3.12 (on PATH or under ~/.pyenv), or --python PATH")
        subprocess.run([found, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *GPU_IMAGE], check=True)
    return str(python)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=("pack", "run", "report", "rehearse"))
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("HARNESS_DATA_DIR", "../shared/data")))
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "device-out")
    ap.add_argument("--site", type=Path, default=Path(tempfile.gettempdir()) / "device-site")
    ap.add_argument("--python", default="", help="rehearse: a Python 3.12 like the GPU machine's (default: made once)")
    ap.add_argument("--backend", default="gpu", help="run: where the runs train (rehearse: cpu)")
    ap.add_argument("--scale", default="standard", help="run, report: the ladders' scale (rehearse: smoke)")
    a = ap.parse_args()
    if a.part == "pack":
        pack(a.data_dir)
        return 0
    if a.part == "run":
        return run(a.out, a.backend, a.scale, a.site)
    if a.part == "report":
        report(a.out / "mlflow.db", ROOT / "results" / "bench" / "gpu", a.scale)
        return 0
    # rehearse: pack here, run with the GPU machine's Python (no TensorFlow) on the CPU at smoke scale, report
    python = a.python or gpu_like_python(Path(tempfile.gettempdir()) / "device-gpu-like")
    pack(a.data_dir)
    for folder in (a.out, a.site, STORE):
        shutil.rmtree(folder, ignore_errors=True)
    here = [python, str(Path(__file__).resolve()), "run", "--backend", "cpu", "--scale", "smoke"]
    here += ["--out", str(a.out), "--site", str(a.site)]
    code = subprocess.run(here, cwd=ROOT, check=False).returncode
    report(a.out / "mlflow.db", a.out / "reports", "smoke")
    return code


if __name__ == "__main__":
    sys.exit(main())
