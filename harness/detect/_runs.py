"""Load a trained model from the MLflow store by run id, and log scan results back to it."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.executor import MODEL_ARTIFACT
from harness.report import find_study_run, write_file
from harness.tracking import RUNG_TAG, VARIANT_TAG, RungRecord, StudyBest, Tracker, kind_of, quote, tag_filter


def resolve_model_run(tracker: Tracker, spec: str) -> str:
    """A run id as is; ``study:NAME``: the best trial of a study; or ``LADDER/RUNG[:VARIANT]``:
    the latest FINISHED run of that rung.

    E.g. ``study:planesnet-cnn-tpe``, ``planesnet/tuned:split=random`` or ``planesnet/dense``.
    """
    if re.fullmatch(r"[0-9a-f]{32}", spec):
        return spec
    if spec.startswith("study:"):
        return _best_trial_run(tracker, spec.removeprefix("study:"))
    ladder, slash, rest = spec.partition("/")
    rung, _, variant = rest.partition(":")
    if not slash or not ladder or not rung:
        raise UserError(f"model run must be a run id, study:NAME or LADDER/RUNG[:VARIANT], but got {spec!r}")
    exp = tracker.client.get_experiment_by_name(f"ladder/{ladder}")
    if exp is None:
        raise UserError(f"no runs of ladder {ladder!r} in {tracker.display_uri}")
    filters = [tag_filter(RUNG_TAG, rung), "attributes.status = 'FINISHED'"]
    if variant:
        filters.append(tag_filter(VARIANT_TAG, variant))
    runs = tracker.client.search_runs(
        [exp.experiment_id], " and ".join(filters), order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        raise UserError(f"no finished run of rung {rung!r}{f' ({variant})' if variant else ''} in ladder {ladder!r}")
    return str(runs[0].info.run_id)


def _best_trial_run(tracker: Tracker, name: str) -> str:
    """The MLflow run of the best COMPLETE trial of study ``name`` (as its parent run records it)."""
    parent = find_study_run(tracker, name)
    record = StudyBest.from_tags(parent.data.tags, f"study {name!r}")
    if record is None:
        raise UserError(f"study {name!r} has no best trial yet (no trial completed, or the study has not finished)")
    best = str(record.trial)
    runs = tracker.client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.`optuna.trial_number` = '{quote(best)}' "
        "and attributes.status = 'FINISHED'",
        max_results=1,
    )
    if not runs:
        raise UserError(f"study {name!r}: no finished MLflow run for its best trial {best}")
    return str(runs[0].info.run_id)


def model_origin(run: Any) -> tuple[str, str, str, str]:
    """(ladder, rung, variant, seed) of a model's run for a summary; "?" (variant "–") where it is not a
    ladder's rung run (a study's trial, a run given by id)."""
    if kind_of(run.data.tags) != RungRecord.KIND:
        return "?", "?", "–", "?"
    rung = RungRecord.from_tags(run.data.tags, f"run {run.info.run_id}")
    return rung.ladder, rung.rung, rung.variant or "–", str(rung.seed)


def load_run_model(tracker: Tracker, run_id: str) -> Any:
    """The ``model.keras`` artifact of ``run_id``, loaded for inference."""
    import keras

    try:
        run = tracker.client.get_run(run_id)
    except Exception as exc:  # MlflowException RESOURCE_DOES_NOT_EXIST
        raise UserError(f"no run {run_id!r} in {tracker.display_uri} ({type(exc).__name__})") from None
    names = [a.path for a in tracker.client.list_artifacts(run_id)]
    if MODEL_ARTIFACT not in names:
        raise UserError(
            f"run {run_id} ({run.data.tags.get('mlflow.runName', '?')}) has no {MODEL_ARTIFACT} artifact "
            f"(it has: {', '.join(names) or 'nothing'}); use a rung run of `harness ladder` "
            "or a trial of `harness study`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(run_id, MODEL_ARTIFACT, tmp)
        try:
            return keras.models.load_model(path, compile=False)  # inference only: no optimizer, no metrics
        except ValueError as exc:
            if "safe_mode=False" not in str(exc):
                raise
            # Keras' safe mode (on by default, and kept on here) refused Python code stored in the file
            what = "a Lambda layer" if "`Lambda` layer" in str(exc) else "a Python lambda"
            raise UserError(
                f"run {run_id}: Keras' safe mode refused to load its {MODEL_ARTIFACT}: it holds {what}, whose "
                "Python code would run on loading (arbitrary code from the store); harness loads only models "
                "without stored code (retrain it without one)"
            ) from None


def run_scores(run: Any, task_name: str | None) -> str:
    """The run's final scores as its task's report columns name them (``final acc 99.12%, ...``), each
    "undefined (why)" where the run recorded why; "–" for a run of no registered task."""
    from harness.tasks import UNDEFINED_TAG, get_task, list_tasks

    if task_name not in list_tasks():
        return "–"
    tags, metrics = run.data.tags, run.data.metrics
    shown = []
    for column in get_task(str(task_name)).report_columns():
        key, why = column.metric, tags.get(UNDEFINED_TAG + column.metric)
        if key in metrics:
            value = f"{100 * metrics[key]:.2f}%" if column.percent else f"{metrics[key]:.4f}"
        elif why is not None:
            value = f"undefined ({why})"
        elif column.optional:
            continue  # a value this run does not have (AP on no whole images, precision on 10 classes)
        else:
            value = "–"
        shown.append(f"{column.header.removesuffix(' %')} {value}")
    return ", ".join(shown) or "–"


PICTURE_SUFFIX = ".jpg"  # annotated photos: JPEG is a fifth of PNG's size, and the boxes stay sharp at this quality


def write_picture(image: Any, path: Path) -> Path:
    """A drawn detection (a PIL image) as a JPEG at ``path``, replaced whole as every report file is."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return write_file(path, buffer.getvalue())
