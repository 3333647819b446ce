"""Logging a trained model so that any client opens it, harness installed or not.

Two forms in every run:

- ``model.keras``: the trained network as it trained, *uncompiled* (no optimizer,
  schedule or metrics), so stock ``keras.models.load_model`` opens it in a process
  that never imports harness; it takes what training fed it (images: float32
  pixels / 255; a table: each category as its index in the run's ``vocabularies.json``)
  and gives what training scored (a classifier: logits). Harness's
  own ``detect-*`` commands load it;
- an MLflow model: an MLflow 3 LoggedModel of the run, named after the run
  (``mnist-08-cnn-batchnorm-s0``, ``mnist-cnn-tpe-trial-003``), carrying the run's
  config as params and its final metrics, so the UI's Models view compares them.
  It is the *served* form, as the task's ``served_flavour`` says: ``keras``, a model of
  tensors (images) logged in the Keras flavour, which takes raw ``uint8`` pixels, scaled
  inside the model, and answers what the task serves (a classifier: class probabilities);
  its signature gives the input's shape and dtype, its metadata the range and what the
  output means. ``rows``, a model of named columns (a table's raw rows, whose example is a
  DataFrame), is a pyfunc from code (``_frame_model.py``) that checks each row, looks its categories
  up in the vocabularies training used (stripped, by the same code), then feeds each DataFrame column
  to the input of that name.
  ``mlflow.pyfunc.load_model("runs:/<run id>/<model name>")`` or
  ``models:/<model id>`` (the run's ``harness.model_uri`` tag) serves it.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness._secrets import redact_text
from harness.tracking import RunHandle

MODEL_ARTIFACT = "model.keras"
MODEL_URI_TAG = "harness.model_uri"  # models:/<id> of the run's MLflow model
_NOT_IN_NAMES = re.compile(r"""[/:.%"'\s]+""")  # MLflow refuses / : . % " ' in a LoggedModel's name


def model_name(group: str, name: str) -> str:
    """The LoggedModel's name: the ladder (or study) and the run's name, ``mnist-08-cnn-batchnorm-s0``.

    A study's group is ``studies/<study>``: its last part names it. Characters MLflow refuses in a
    model's name (a variant's ``lr0=0.01``) become ``-``."""
    parts = [group.rpartition("/")[2], name]
    return _NOT_IN_NAMES.sub("-", "-".join(p for p in parts if p)).strip("-") or "model"


def export_model(model: Any) -> Any:
    """The same layers and weights as an uncompiled functional model (nothing harness-specific left)."""
    import keras

    # one output as a tensor, not a list of one: called inside the served model, a list would reach
    # the next layer (Keras' Softmax takes no list)
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return keras.Model(model.inputs, outputs, name=model.name)


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("tensorflow", "keras"):
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # tensorflow-cpu or a nightly: let MLflow say nothing rather than lie
            continue
    return out


def served_keras_model(model: Any, task: Any, data: Any, example: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """The Keras model an MLflow model serves, and its metadata (what it takes and gives, in words).

    Raw ``uint8`` pixels in, scaled to 0-1 by a ``Rescaling`` layer in the model (stock Keras
    layers only: it opens without harness); out: ``task.served_output`` (a classifier's softmax)."""
    import keras

    net = export_model(model)
    shape = [-1, *(int(d) for d in example.shape[1:])]
    if example.dtype == np.uint8:
        inputs = keras.Input(shape=example.shape[1:], dtype="uint8", name="pixels")
        # float32 whatever the global precision policy: the net casts to its own compute dtype
        x = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="pixels_to_0_1")(inputs)
        described = {
            "dtype": "uint8",
            "shape": shape,
            "range": [0, 255],
            "meaning": "raw pixels [batch, height, width, channels], as the dataset stores them; the model "
            "divides them by 255 itself (do not scale them)",
        }
    else:
        inputs = keras.Input(shape=example.shape[1:], dtype=str(example.dtype), name="x")
        x = inputs
        described = {"dtype": str(example.dtype), "shape": shape, "meaning": "as the dataset holds them"}
    outputs, meaning = task.served_output(net(x), data)
    served = keras.Model(inputs, outputs, name=f"{net.name}_served")
    out_shape = [-1, *(int(d) for d in served.outputs[0].shape[1:])]
    return served, {
        "input": described,
        "output": {"dtype": str(served.outputs[0].dtype), "shape": out_shape, "meaning": meaning},
    }


def _tensor_signature(served: Any, example: np.ndarray) -> Any:
    """Input and output tensor specs from the model's own shapes (no predict call: it would retrace)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    outputs = served.outputs[0]
    return ModelSignature(
        inputs=Schema([TensorSpec(example.dtype, (-1, *example.shape[1:]))]),
        outputs=Schema([TensorSpec(np.dtype(str(outputs.dtype)), (-1, *outputs.shape[1:]))]),
    )


def _save_frame_model(
    keras_path: Path,
    vocabularies: Path,
    categorical: Collection[str],
    local: Path,
    meta: Any,
    model: Any,
    example: Any,
    meaning: str,
) -> None:
    """A pyfunc from code around ``model.keras``: DataFrames of raw rows in, one column per output out.

    It ships ``vocabularies.json`` and the module that looks categories up in them (the one training
    used). Its signature states the outputs only: an input schema would make MLflow drop unknown columns
    and coerce types before ``_frame_model`` sees them, and the model refuses those itself, each
    with the column named. The metadata lists the columns it takes."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from harness.models import VOCABULARY_CODE

    outputs = model.outputs[0].shape[-1]
    names = ["probability"] if outputs == 1 else [f"output_{i}" for i in range(outputs)]
    columns = {
        t.name: "string: a category (spaces around it are ignored)" if t.name in categorical else "number"
        for t in model.inputs
    }
    meta.metadata = {
        "input": {
            "columns": columns,
            "meaning": "one raw row per prediction (a DataFrame, JSON or CSV); every column required, no other "
            "column, no missing value",
        },
        "output": {"columns": names, "meaning": meaning},
    }
    mlflow.pyfunc.save_model(
        str(local),
        python_model=str(Path(__file__).with_name("_frame_model.py")),
        artifacts={"keras_model": str(keras_path), "vocabularies": str(vocabularies)},
        code_paths=[str(VOCABULARY_CODE)],
        mlflow_model=meta,
        signature=ModelSignature(outputs=Schema([ColSpec("float", n) for n in names])),
        input_example=example,  # two raw rows: the request a user copies from the UI
        pip_requirements=[*_requirements(), "pandas"],
    )


@contextlib.contextmanager
def pending_model(run: RunHandle, experiment_id: str, name: str, params: Mapping[str, Any]) -> Iterator[str]:
    """A new LoggedModel of ``run`` (its id), PENDING until :func:`log_model` makes it READY;
    FAILED if the block raises. ``params``: the run's config as dotted keys (redacted as the run's)."""
    from mlflow.entities import LoggedModelStatus

    client = run.client
    logged = client.create_logged_model(
        experiment_id,
        name=name,
        source_run_id=run.run_id,
        params={str(k): redact_text(str(v)) for k, v in params.items()},
    )
    try:
        yield logged.model_id
    except BaseException:
        with contextlib.suppress(Exception):  # the store itself may be what failed: its error is the one to see
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise


def log_model(run: RunHandle, model_id: str, model: Any, task: Any, data: Any, step: int) -> None:
    """``model.keras`` and the MLflow model into the pending LoggedModel ``model_id``, then READY."""
    import mlflow.keras
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    client = run.client
    logged = client.get_logged_model(model_id)
    example = task.example_input(data)
    exported = export_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_ARTIFACT
        exported.save(path)
        run.log_artifact(path)
        meta = Model(artifact_path=logged.artifact_location, run_id=run.run_id, model_id=model_id, model_uuid=model_id)
        local = Path(tmp) / "mlflow_model"
        if task.served_flavour == "keras":
            served, described = served_keras_model(model, task, data, example)
            mlflow.keras.save_model(
                served,
                str(local),
                mlflow_model=meta,
                signature=_tensor_signature(served, example),
                pip_requirements=_requirements(),
                metadata=described,
            )
        elif task.served_flavour == "rows":  # named columns: a DataFrame of raw rows
            from harness.models import VOCABULARIES_FILE

            _, meaning = task.served_output(exported.outputs[0], data)
            words = dict(task.input_vocabularies(data))
            vocabularies = Path(tmp) / VOCABULARIES_FILE  # beside model.keras too: its categorical inputs' meaning
            vocabularies.write_text(json.dumps(words, indent=1))
            run.log_artifact(vocabularies)
            _save_frame_model(path, vocabularies, words.keys(), local, meta, exported, example, meaning)
        else:
            raise ValueError(
                f"task {task.name!r}: served_flavour must be 'keras' or 'rows', but got {task.served_flavour!r}"
            )
        client.log_model_artifacts(model_id, str(local))
    client.log_outputs(run.run_id, [LoggedModelOutput(model_id, step)])
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    run.set_tags({MODEL_URI_TAG: f"models:/{model_id}"})
