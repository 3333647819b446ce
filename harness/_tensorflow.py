"""TensorFlow started once, quietly, by a command that trains, after its input has been checked.

Importing TensorFlow takes seconds: a command answers a bad argument or config before paying for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def start(verbose: bool = False) -> None:
    """Import TensorFlow and look for GPUs, with file descriptor 2 on /dev/null unless ``verbose``:
    TensorFlow's C++ writes its start-up lines ("oneDNN custom operations", "failed call to cuInit")
    there before any log level applies. Does nothing once TensorFlow is imported. An import error
    still raises, with its message, once stderr is back."""
    if "tensorflow" in sys.modules:
        return
    with contextlib.nullcontext() if verbose else _fd2_on_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


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
