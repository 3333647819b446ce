"""Categories as the integer indices a tabular model takes: the one rule training and serving share.

Keras on JAX or PyTorch has no string tensors, so the census models take each categorical column as an
index into its training vocabulary rather than as text (a ``StringLookup`` inside the model would tie
them to TensorFlow). Index ``i + 1`` stands for ``vocabulary[i]``; ``0`` for any value training never
saw (StringLookup's out-of-vocabulary index, so the models are the same networks as before). A value
is stripped of surrounding spaces before it is looked up: UCI's files write ``39, State-gov, ...``
and harness's readers strip every field, so a row gets one answer however it is spaced.

This module imports numpy only: the served model of raw rows (``executor/_frame_model.py``) ships it
as code beside itself (MLflow ``code_paths``) and runs the same function harness trained with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

OUT_OF_VOCABULARY = 0
VOCABULARIES_FILE = "vocabularies.json"  # input name -> its vocabulary, beside every tabular model
VOCABULARY_CODE = Path(__file__)  # this file, shipped with the served model


def encode(values: Iterable[str], vocabulary: Sequence[str]) -> np.ndarray:
    """Text values -> int32 indices ``[N]`` (stripped first; unseen -> :data:`OUT_OF_VOCABULARY`)."""
    index = {word: i for i, word in enumerate(vocabulary, start=1)}
    return np.fromiter((index.get(str(v).strip(), OUT_OF_VOCABULARY) for v in values), dtype=np.int32)
