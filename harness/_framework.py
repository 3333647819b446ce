"""Which framework Keras runs on (TensorFlow, JAX or PyTorch), and starting it once, quietly, after a
command's input has been checked.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, and cannot switch afterwards. A command
whose runs all use one framework starts this process on it (``start``); a run whose framework differs
from the process's trains in a child process (``executor``), which starts on the run's framework.
Importing a framework takes seconds: a command answers a bad argument or config before paying for it.
TensorFlow is imported whenever it is installed, whatever the framework: the data pipelines are tf.data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator

FRAMEWORKS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
ENV = "KERAS_BACKEND"
# what to install for each (jax[cpu] on a CPU; see jax's install guide for CUDA)
INSTALL = {"tensorflow": "tensorflow", "jax": "jax[cpu]", "torch": "torch"}


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
    if "keras" not in sys.modules:
        os.environ[ENV] = wanted.pop() if len(wanted) == 1 else current()
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return
    with contextlib.nullcontext() if verbose else _fd2_on_devnull():
        if installed("tensorflow"):
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        import keras  # noqa: F401 (Keras fixes its backend here, once)


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
