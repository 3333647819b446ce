"""Which framework Keras runs on (TensorFlow, JAX or PyTorch), and starting it once, quietly, after a
command's input has been checked.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, and cannot switch afterwards. A command
whose runs all use one framework starts this process on it (``start``); a run whose framework differs
from the process's trains in a child process (``executor``), which starts on the run's framework.
Importing a framework takes seconds: a command answers a bad argument or config before paying for it.
TensorFlow is imported whenever it is installed, whatever the framework: the data pipelines are tf.data.

JAX compiles every program of a run anew (Keras builds a fresh train step per model), so a ladder's seeds
and rungs of one architecture, or a study's trials, compile the same programs again. ``start`` turns on
JAX's persistent compilation cache (keyed by the compiled program, the JAX version and the device), shared
by a command's child processes through the environment: ``HARNESS_JAX_CACHE`` names its folder (default
``~/.cache/harness/jax``) or ``off``; a user's own ``JAX_COMPILATION_CACHE_DIR`` is left as it is.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path

FRAMEWORKS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
ENV = "KERAS_BACKEND"
# what to install for each (jax[cpu] on a CPU; see jax's install guide for CUDA)
INSTALL = {"tensorflow": "tensorflow", "jax": "jax[cpu]", "torch": "torch"}
JAX_CACHE_ENV = "HARNESS_JAX_CACHE"  # the folder of JAX's persistent compilation cache, or "off"
JAX_CACHE_MAX_BYTES = 2**30  # JAX evicts the least recently used programs past this


def installed(framework: str) -> bool:
    """Whether ``framework``'s package can be imported here (without importing it)."""
    if framework in sys.modules:  # imported, or blocked (None: how tests hide TensorFlow)
        return sys.modules[framework] is not None
    return importlib.util.find_spec(framework) is not None


def default() -> str:
    """TensorFlow where it is installed, else the first of JAX and PyTorch that is (Keras' own default,
    TensorFlow, cannot even import without it)."""
    return next((f for f in FRAMEWORKS if installed(f)), DEFAULT)


def current() -> str:
    """The framework Keras runs on in this process: the one it was imported with, else the one it will be
    imported with (``KERAS_BACKEND``, else :func:`default`)."""
    if "keras" in sys.modules:
        return str(sys.modules["keras"].backend.backend())
    return os.environ.get(ENV) or default()


def start(verbose: bool = False, frameworks: Iterable[str] = ()) -> None:
    """Start Keras on the one framework that all of a command's runs use (``frameworks``; ``current()``
    where they differ or none is given), then import TensorFlow and look for GPUs, with file
    descriptor 2 on /dev/null unless ``verbose``: TensorFlow's C++ writes its start-up lines ("oneDNN custom
    operations", "failed call to cuInit") there before any log level applies. Does nothing once Keras is
    imported. An import error still raises, with its message, once stderr is back."""
    wanted = set(frameworks)
    jax_cache(os.environ)  # before JAX is imported (it reads these once); children inherit them
    if "keras" not in sys.modules:
        os.environ[ENV] = wanted.pop() if len(wanted) == 1 else current()
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return
    with contextlib.nullcontext() if verbose else _fd2_on_devnull():
        if installed("tensorflow"):
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        import keras  # noqa: F401 (Keras fixes its backend here, once)


def jax_cache(environ: MutableMapping[str, str]) -> None:
    """Point JAX's persistent compilation cache at ``HARNESS_JAX_CACHE`` (default ``~/.cache/harness/jax``)
    in ``environ``, caching every program however fast it compiled (a smoke run's hundreds of small ones
    add up), at most 1 GiB where the ``filelock`` package is installed (else unbounded: JAX needs it to evict);
    nothing where it is ``off``, the user set ``JAX_COMPILATION_CACHE_DIR``, or JAX is not installed."""
    choice = environ.get(JAX_CACHE_ENV, "")
    if choice == "off" or "JAX_COMPILATION_CACHE_DIR" in environ or not installed("jax"):
        return  # off, the user's own, or no JAX here (no folder made for nothing)
    home = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(choice or Path(home) / "harness" / "jax")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a folder this user cannot write: JAX would fail the run at its first compile; compile uncached
    environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if importlib.util.find_spec("filelock") is not None:  # JAX refuses a size limit without it (it locks to evict)
        environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(JAX_CACHE_MAX_BYTES))


@contextlib.contextmanager
def _fd2_on_devnull() -> Iterator[None]:
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
