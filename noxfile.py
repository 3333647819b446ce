"""Developer sessions: ``nox -s tests | unit | lint | typecheck | smoke | bench | soak | device | readme | screenshot``.

Data: sessions read ``$HARNESS_DATA_DIR``, defaulting to ``../shared/data``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
DATA = os.environ.get("HARNESS_DATA_DIR", str(Path(__file__).parent.parent / "shared" / "data"))


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test, the slow end-to-end and real-data ones included (what CI runs)."""
    _install(session)
    session.run("pytest", "-m", "", *session.posargs, env={"HARNESS_DATA_DIR": DATA})


@nox.session
def unit(session: nox.Session) -> None:
    """The fast suite only (the default of a bare `pytest`)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the import layers and no-cycle contracts (lint-imports)."""
    _install(session)
    session.run("ruff", "check", "harness", "tests", "noxfile.py")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session)
    session.run("mypy", "harness")


@nox.session
def smoke(session: nox.Session) -> None:
    """The whole MNIST ladder at smoke scale, end to end, in a throwaway directory."""
    _install(session)
    tmp = session.create_tmp()
    session.chdir(tmp)
    session.run("harness", "ladder", "mnist", "--scale", "smoke", "--data-dir", DATA)


@nox.session
def soak(session: nox.Session) -> None:
    """A 200-trial study on PostgreSQL whose 4 workers are killed at random; writes results/soak.md and soak.html."""
    _install(session)
    session.run("python", "tests/soak.py", "--data-dir", DATA, *session.posargs)


@nox.session
def device(session: nox.Session) -> None:
    """The prepared GPU run (tests/device_run.py): `-- pack`, `-- report`, or `-- rehearse` (all of it on this CPU)."""
    _install(session)
    session.run("python", "tests/device_run.py", *(session.posargs or ["rehearse"]), "--data-dir", DATA)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks side by side in one run; writes results/bench/bench.md and bench.json."""
    _install(session)
    session.run("harness", "bench", "--data-dir", DATA, "--out", "results/bench", *session.posargs)


@nox.session(python=False)
def readme(session: nox.Session) -> None:
    """The README's two commands word for word in a fresh clone beside ../shared (`-- main` or `-- test`: one).

    The main job trains the whole MNIST ladder (tens of minutes on 2 cores); CI runs the test command.
    """
    root = Path(__file__).resolve().parent
    which = session.posargs or ["main", "test"]
    clone = root.parent / "readme-check"  # beside the repository, so ../shared/data is where the README says
    shutil.rmtree(clone, ignore_errors=True)
    session.run("git", "clone", "-q", str(root), str(clone), external=True)
    for name in which:
        command = session.run("python3", "tests/readme_commands.py", name, silent=True, external=True)
        session.chdir(clone)
        session.log(f"README {name} command: {command.strip()}")
        session.run("bash", "-c", command.strip(), external=True)
        session.chdir(root)


@nox.session(python=False)
def screenshot(session: nox.Session) -> None:
    """The README's picture: results/mnist_ladder.html as headless chromium renders it."""
    root = Path(__file__).resolve().parent
    profile = session.create_tmp()
    session.run(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        f"--screenshot={root / 'results' / 'mnist_ladder_html.png'}",
        (root / "results" / "mnist_ladder.html").as_uri(),
        external=True,
    )
