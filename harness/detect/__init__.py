"""Classifier-as-detector: sliding windows at several scales, NMS, drawn boxes."""

from harness.detect._boxes import ImageBoxes, find_boxes, run_config, write_boxes
from harness.detect._runs import MODEL_ARTIFACT, load_run_model, resolve_model_run
from harness.detect._scan import (
    Box,
    ScanResult,
    ScanSettings,
    draw,
    read_image,
    scan,
    write_outputs,
    write_summary,
)

__all__ = [
    "MODEL_ARTIFACT",
    "Box",
    "ImageBoxes",
    "ScanResult",
    "ScanSettings",
    "draw",
    "find_boxes",
    "load_run_model",
    "read_image",
    "resolve_model_run",
    "run_config",
    "scan",
    "write_boxes",
    "write_outputs",
    "write_summary",
]
