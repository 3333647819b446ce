"""A trained run of a task that finds boxes (``Task.image_boxes``: the YOLO runs) on whole images:
boxes found (red) beside the true boxes (green).

The held-out images come from the run's own config (same dataset, same split), so they are
images the model never trained on; ``extras`` are unannotated images (no green boxes).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import harness.data
import harness.models  # noqa: F401  (these register the sections a run's config.yaml names)
from harness.config import Config, config_from_sections, load_mapping, read_config_text
from harness.detect._runs import PICTURE_SUFFIX, model_origin, run_scores, write_picture
from harness.errors import UserError
from harness.report import Document, Picture, Published, Section, Table, md_code, md_text, publish
from harness.tasks import get_task
from harness.tracking import Tracker

FOUND = (255, 40, 40)
TRUE = (40, 255, 90)


@dataclasses.dataclass(frozen=True)
class ImageBoxes:
    name: str
    image: np.ndarray  # uint8 [H, W, 3]
    truth: np.ndarray | None  # [m, 4] pixels x1y1x2y2; None: not annotated
    found: np.ndarray  # [d, 4] pixels
    scores: np.ndarray  # [d]


def run_config(tracker: Tracker, run_id: str) -> Config:
    """The ``Config`` a run trained with, rebuilt from its ``config.yaml`` artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = tracker.client.download_artifacts(run_id, "config.yaml", tmp)
        except Exception as exc:  # MlflowException: no such artifact
            raise UserError(f"run {run_id} has no config.yaml artifact ({type(exc).__name__})") from None
        sections = load_mapping(read_config_text(path, "artifact"), f"run {run_id} config.yaml", "config sections")
    return config_from_sections(sections, f"run {run_id} config.yaml")


def find_boxes(model: Any, image: np.ndarray, cfg: Config, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The boxes the run's task finds on ``image`` (:meth:`Task.image_boxes`) scoring ``threshold`` or more."""
    boxes, scores = get_task(cfg.task.name).image_boxes(model, image, cfg)
    keep = scores >= threshold
    return boxes[keep], scores[keep]


def draw(item: ImageBoxes, max_side: int) -> Any:
    """The image scaled to at most ``max_side`` px, true boxes in green under found boxes in red."""
    from PIL import Image, ImageDraw

    out = Image.fromarray(item.image)
    scale = min(1.0, max_side / max(out.size))
    if scale < 1.0:
        out = out.resize((round(out.width * scale), round(out.height * scale)), Image.Resampling.LANCZOS)
    pen = ImageDraw.Draw(out)
    for boxes, colour in ((item.truth, TRUE), (item.found, FOUND)):
        for b in boxes if boxes is not None else ():
            pen.rectangle([float(v) * scale for v in b], outline=colour, width=2)
    return out


def write_boxes(
    items: Sequence[ImageBoxes], out_dir: Path, run: Any, cfg: Config, threshold: float, command: str, max_side: int
) -> Published:
    """One JPEG and one JSON per image, and the summary report (``summary.md``, ``.html``, ``.csv``) showing them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ladder, rung, _, seed = model_origin(run)
    rows, pictures = [], []
    for item in items:
        stem = Path(item.name).stem
        write_picture(draw(item, max_side), out_dir / f"{stem}{PICTURE_SUFFIX}")
        (out_dir / f"{stem}.json").write_text(
            json.dumps(
                {
                    "image": item.name,
                    "model_run_id": run.info.run_id,
                    "threshold": threshold,
                    "found": [[*map(float, b), float(s)] for b, s in zip(item.found, item.scores, strict=True)],
                    "truth": None if item.truth is None else item.truth.tolist(),
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        kind = "held out" if item.truth is not None else "extra (no annotations)"
        n_true = None if item.truth is None else len(item.truth)
        rows.append((item.name, kind, n_true, len(item.found), f"{stem}{PICTURE_SUFFIX}"))
        counts = f"{len(item.found)} found" + ("" if n_true is None else f", {n_true} true")
        pictures.append(
            Picture(f"{stem}{PICTURE_SUFFIX}", md_text(item.name), f"{md_text(item.name)} ({kind}): {counts}")
        )
    table = Table(
        ["image", "kind", "true boxes", "found"],
        [[md_text(name), kind, "–" if n is None else str(n), str(found)] for name, kind, n, found, _ in rows],
        align="llrr",
    )
    doc = Document(  # run, ladder and rung names and the command are user text: md_text / md_code
        title=f"Detections — {md_text(run.data.tags.get('mlflow.runName', run.info.run_id))}",
        generated=f"Command: {md_code(command)}",
        lead=[
            f"Model: MLflow run {md_code(run.info.run_id)}, ladder {md_code(ladder)}, rung {md_code(rung)}, "
            f"seed {md_text(seed)}",
            f"Its scores ({md_text(cfg.task.name)}): {run_scores(run, cfg.task.name)}",
            f"Boxes drawn: score ≥ {threshold:g}, as the task finds them (red); true boxes (green, as trained)",
        ],
        sections=[Section("Images", table=table, pictures=pictures)],
    )
    csv = pd.DataFrame(rows, columns=["image", "kind", "true boxes", "found", "picture"])
    return publish(doc, out_dir, "summary", csv)
