"""Detection: the talk's YOLO grid on 256x256 aerial tiles, scored by IoU (and AP on whole images).

The reference (tensorflow-planespotting, see ``../shared/reference/planespotting.md``) is followed
for the head's targets (naive and "swarm" assignment), the loss with weights ``lw1..lw3`` and the
IoU metric; its flag names are this task's keys so its Cloud ML Engine files carry over.

What a batch's ``y`` holds: the YOLO targets ``[g, g, cell_n, 3]`` and the tile's ground-truth
boxes ``[50, 4]``, flattened and concatenated into one float vector per tile (Keras passes one
``y`` to the loss and every metric; the IoU needs the boxes, the loss the targets).
:class:`Packing` is the one place that knows the layout.

Ours, not the reference's (said in the ladder and the report): AP@0.5, precision and recall on the
held-out *whole* images (overlapping tiles, boxes scored by P(plane), non-max suppression across
tile borders), computed with pycocotools after training; and ``iou_all``, the IoU averaged over
every tile (the reference's ``iou`` drops tiles whose IoU is exactly 1 and averages per batch).

Undefined, not 0 (nor the reference's 1 for "nothing to find, nothing found"): both IoUs where no
evaluated tile holds a box, true or detected (or no tile was evaluated); AP@0.5 and recall without
true boxes; precision without a detection (``Task.undefined_when``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness import _framework
from harness.config import Config, TaskParams, check, check_range
from harness.errors import ConfigError
from harness.tasks._base import Column, Direction, Task, register_task

if TYPE_CHECKING:
    import keras

    from harness.data import AerialParams, ArrayDataset, DetectionDataset

MAX_ROIS = 50  # ground-truth boxes per tile (settings.py:23)
MAX_DETECTIONS = 60  # detected boxes per tile before the reference's IoU gives up (settings.py:22)
TILE = 256
PLANE_W = 1e-4  # a target slot holds a plane iff its w > this (model.py:228)


@dataclasses.dataclass(frozen=True)
class DetectionParams(TaskParams):
    """The YOLO head's grid and the loss weights (the reference's ``--hp-*`` names)."""

    name: str = "detection"
    grid_nn: int = 16  # grid cells per side; divides the core's 16x16 output
    cell_n: int = 2  # boxes per cell
    cell_swarm: bool = True  # the reference's "swarm" assignment (cell_n 2 only); else naive by size
    cell_grow: float = 1.3  # predicted centres reach cell_grow half-cells from the cell centre
    lw1: float = 1.0  # weight of the plane / no-plane cross-entropy
    lw2: float = 3.0  # weight of the position error
    lw3: float = 30.0  # weight of the size error

    def check(self) -> None:
        check(self.grid_nn, self.grid_nn in (1, 2, 4, 8, 16), "grid_nn", "a divisor of 16 (1, 2, 4, 8 or 16)")
        check(self.cell_n, self.cell_n >= 1, "cell_n", ">= 1")
        check_range(self.cell_n, "cell_n", 1, 64, " boxes per cell")
        check(self.cell_grow, self.cell_grow >= 1.0, "cell_grow", ">= 1.0")
        for key in ("lw1", "lw2", "lw3"):
            value = getattr(self, key)
            check(value, value >= 0, key, ">= 0")
        check(self.lw1 + self.lw2 + self.lw3, self.lw1 + self.lw2 + self.lw3 > 0, "lw1 + lw2 + lw3", "> 0")
        if self.cell_swarm and self.cell_n != 2:
            raise ConfigError(
                "cell_swarm=True needs cell_n=2 (the reference's swarm assignment fills pairs of boxes), "
                f"but got cell_n={self.cell_n}; set cell_swarm: false for the naive assignment"
            )


@dataclasses.dataclass(frozen=True)
class Packing:
    """Layout of ``y``: flattened targets ``[g, g, n, 3]`` then flattened boxes ``[50, 4]``."""

    grid_nn: int
    cell_n: int

    @property
    def target_size(self) -> int:
        return self.grid_nn * self.grid_nn * self.cell_n * 3

    @property
    def size(self) -> int:
        return self.target_size + MAX_ROIS * 4

    def pack(self, targets: np.ndarray, rois: np.ndarray) -> np.ndarray:
        return np.concatenate([targets.reshape(-1), rois.reshape(-1)]).astype(np.float32)

    def unpack(self, y: Any) -> tuple[Any, Any]:
        """``y [B, size]`` -> targets ``[B, g, g, n, 3]``, boxes ``[B, 50, 4]``."""
        from keras import ops

        g, n = self.grid_nn, self.cell_n
        targets = ops.reshape(y[:, : self.target_size], (-1, g, g, n, 3))
        rois = ops.reshape(y[:, self.target_size :], (-1, MAX_ROIS, 4))
        return targets, rois


def packing(cfg: Config) -> Packing:
    return Packing(cfg.task.grid_nn, cfg.task.cell_n)  # type: ignore[attr-defined]


# --- loss terms and metrics (keras.ops: any framework; imported lazily) -------------------------


def loss_terms(targets: Any, pred: Any) -> tuple[Any, Any, Any]:
    """Per tile: plane cross-entropy, position error, size error, each a mean over the tile's slots.

    As model.py:259-261: squared errors only where the target is a plane, the size term doubled,
    the 2-class softmax cross-entropy over every slot (empty ones pushed to "no plane").
    """
    from keras import ops

    plane = ops.cast(targets[..., 2] > PLANE_W, "float32")  # [B, g, g, n]
    pos = plane * (ops.square(pred[..., 0] - targets[..., 0]) + ops.square(pred[..., 1] - targets[..., 1]))
    size = plane * ops.square(pred[..., 2] - targets[..., 2]) * 2.0
    xent = ops.sparse_categorical_crossentropy(ops.cast(plane, "int32"), pred[..., 3:5], from_logits=True)
    axes = (1, 2, 3)
    return ops.mean(xent, axis=axes), ops.mean(pos, axis=axes), ops.mean(size, axis=axes)


def _loss_class() -> type:
    import keras

    class YoloLoss(keras.losses.Loss):
        """``(lw1 * L_obj + lw2 * L_pos + lw3 * L_size) / (lw1 + lw2 + lw3)`` (model.py:264-268)."""

        def __init__(self, pack: Packing, weights: tuple[float, float, float], **kw: Any) -> None:
            super().__init__(name="yolo_loss", **kw)
            self.pack = pack
            self.weights = weights

        def call(self, y_true: Any, y_pred: Any) -> Any:
            targets, _ = self.pack.unpack(y_true)
            obj, pos, size = loss_terms(targets, y_pred)
            w1, w2, w3 = self.weights
            return (w1 * obj + w2 * pos + w3 * size) / (w1 + w2 + w3)

    return YoloLoss


def detected_boxes(pred: Any, grid_nn: int) -> tuple[Any, Any]:
    """Decoded boxes ``[B, S, 4]`` (tile units, x1y1x2y2; zero where not detected) and P(plane) ``[B, S]``.

    Detected = P(plane) > P(no plane), i.e. the argmax of the 2-class softmax (model.py:203-205).
    """
    from keras import ops

    g = grid_nn
    cell = 1.0 / g
    centres = (ops.arange(g, dtype="float32") + 0.5) * cell  # [g]
    cx = centres[None, None, :, None] + pred[..., 0] * cell / 2  # x varies along the last grid axis
    cy = centres[None, :, None, None] + pred[..., 1] * cell / 2
    half = pred[..., 2] / 2
    boxes = ops.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)
    probs = ops.softmax(pred[..., 3:5], axis=-1)[..., 1]
    detected = pred[..., 4] > pred[..., 3]
    boxes = ops.where(detected[..., None], boxes, ops.zeros_like(boxes))
    slots = g * g * int(pred.shape[3])  # static: the grid and the boxes per cell
    return ops.reshape(boxes, (-1, slots, 4)), ops.reshape(probs, (-1, slots))


def _union_mask(boxes: Any) -> Any:
    """Pixels of a 256x256 tile covered by any box ``[B, K, 4]`` (x1 <= j < x2, y1 <= i < y2) -> ``[B, 256, 256]``.

    Boxes are scaled by 256 and rounded as the reference does (utils_box.py:464-591); a box of
    zero side covers nothing. The union is a product of row and column masks summed over boxes.
    """
    from keras import ops

    px = ops.round(boxes * TILE)
    pix = ops.arange(TILE, dtype="float32")
    rows = ops.cast((pix[None, None, :] >= px[..., 1:2]) & (pix[None, None, :] < px[..., 3:4]), "float32")
    cols = ops.cast((pix[None, None, :] >= px[..., 0:1]) & (pix[None, None, :] < px[..., 2:3]), "float32")
    return ops.einsum("bki,bkj->bij", rows, cols) > 0.5


def tile_ious(pred: Any, rois: Any, grid_nn: int) -> tuple[Any, Any]:
    """Per tile: the pixel IoU of the union of detected boxes and the union of true boxes, and the
    number of detections. An empty union scores 1 (utils_box.py:464-546)."""
    from keras import ops

    boxes, _ = detected_boxes(pred, grid_nn)
    det = _union_mask(boxes)
    gt = _union_mask(rois)
    inter = ops.sum(ops.cast(det & gt, "float32"), axis=(1, 2))
    union = ops.sum(ops.cast(det | gt, "float32"), axis=(1, 2))
    iou = ops.where(union > 0, inter / ops.maximum(union, 1.0), ops.ones_like(union))
    count = ops.sum(ops.cast((boxes[..., 2] - boxes[..., 0]) > 0, "int32"), axis=1)
    return iou, count


def reference_batch_iou(iou: Any, count: Any) -> Any:
    """The reference's per-batch value (utils_box.py:547-590): the mean over tiles whose IoU is not
    exactly 1, 1 if none is left, and 0 if any tile has more than 60 detections."""
    from keras import ops

    keep = ops.not_equal(iou, 1.0)
    n = ops.sum(ops.cast(keep, "float32"))
    mean = ops.where(n > 0, ops.sum(ops.where(keep, iou, 0.0)) / ops.maximum(n, 1.0), 1.0)
    return ops.where(ops.any(count > MAX_DETECTIONS), 0.0, mean)


def _metric_classes() -> dict[str, type]:
    import keras
    from keras import ops

    class Mean(keras.metrics.Metric):
        """A running mean of per-batch (or per-tile) values computed from ``y`` and the prediction."""

        def __init__(self, pack: Packing, name: str) -> None:
            super().__init__(name=name)
            self.pack = pack
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def values(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
            raise NotImplementedError

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            y_pred = ops.cast(y_pred, "float32")
            total, count = self.values(ops.cast(y_true, "float32"), y_pred)
            self.total.assign_add(total)
            self.count.assign_add(count)

        def result(self) -> Any:
            return ops.divide_no_nan(self.total, self.count)

    class IoUMean(Mean):
        """A mean of IoUs, NaN (undefined) until some evaluated tile holds a box, true or detected: with
        none, every tile scores the reference's 1 for "nothing to find, nothing found" (or nothing was
        evaluated), which says nothing about the model."""

        def __init__(self, pack: Packing, name: str) -> None:
            super().__init__(pack, name)
            self.boxed = self.add_variable(shape=(), initializer="zeros", name="boxed")

        def tile_values(self, iou: Any, count: Any) -> tuple[Any, Any]:
            raise NotImplementedError

        def values(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
            _, rois = self.pack.unpack(y_true)
            iou, count = tile_ious(y_pred, rois, self.pack.grid_nn)
            true_boxes = ops.any((rois[..., 2] - rois[..., 0]) > 0, axis=1)
            self.boxed.assign_add(ops.sum(ops.cast(true_boxes | (count > 0), "float32")))
            return self.tile_values(iou, count)

        def result(self) -> Any:
            return ops.where(self.boxed > 0, super().result(), float("nan"))

    class ReferenceIoU(IoUMean):
        """The talk's ``IOU``: the mean over evaluation batches of the reference's batch value."""

        def tile_values(self, iou: Any, count: Any) -> tuple[Any, Any]:
            return reference_batch_iou(iou, count), 1.0

    class AllTilesIoU(IoUMean):
        """The same pixel IoU averaged over every tile (none dropped, no per-batch weighting)."""

        def tile_values(self, iou: Any, count: Any) -> tuple[Any, Any]:
            return ops.sum(iou), ops.cast(ops.size(iou), "float32")

    class Term(Mean):
        """One weighted loss term, as the reference's eval metrics (model.py:279-283)."""

        def __init__(self, pack: Packing, name: str, index: int, weight: float) -> None:
            super().__init__(pack, name)
            self.index = index
            self.weight = weight

        def values(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
            targets, _ = self.pack.unpack(y_true)
            term = loss_terms(targets, y_pred)[self.index]
            return ops.sum(term) * self.weight, ops.cast(ops.size(term), "float32")

    return {"iou": ReferenceIoU, "iou_all": AllTilesIoU, "term": Term}


# --- the task ---------------------------------------------------------------------------------


@register_task
class Detection(Task):
    """YOLO-style detection of square boxes on 256x256 tiles (one class: plane)."""

    name: ClassVar[str] = "detection"
    params: ClassVar[type[TaskParams]] = DetectionParams
    metric_names: ClassVar[tuple[str, ...]] = (
        "loss",
        "iou",
        "iou_all",
        "plane_cross_entropy_error",
        "position_error",
        "size_error",
    )
    directions: ClassVar[Mapping[str, Direction]] = {
        "loss": "minimize",
        "iou": "maximize",
        "iou_all": "maximize",
        "plane_cross_entropy_error": "minimize",
        "position_error": "minimize",
        "size_error": "minimize",
    }
    primary: ClassVar[str] = "iou"
    examples: ClassVar[str] = "tiles"
    percent: ClassVar[frozenset[str]] = frozenset({"iou", "iou_all", "ap50", "precision50", "recall50"})
    # as the reference: IoU in EVAL only (model.py:244); the loss terms are logged in training too (289-295)
    eval_only: ClassVar[frozenset[str]] = frozenset({"iou", "iou_all"})
    undefined_when: ClassVar[Mapping[str, str]] = {
        "iou": "no box in the {split} tiles, true or detected",
        "iou_all": "no box in the {split} tiles, true or detected",
        "ap50": "no true box in the evaluation images",
        "recall50": "no true box in the evaluation images",
        "precision50": "no detection with P(plane) >= 0.5",
    }

    def outputs(self, data: ArrayDataset, cfg: Config) -> Any:
        from harness.models import YoloHead

        p: DetectionParams = cfg.task  # type: ignore[assignment]
        return YoloHead(grid_nn=p.grid_nn, cell_n=p.cell_n, cell_grow=p.cell_grow)

    def served_output(self, outputs: Any, data: ArrayDataset) -> tuple[Any, str]:
        return outputs, (
            "the YOLO head, float32 [batch, grid, grid, boxes per cell, 5]: per box x, y (the centre, in "
            "half-cells from the cell centre, within +-cell_grow), w (the square's side as a fraction of "
            "the tile), then the logits of no-plane and plane (P(plane) is their softmax)"
        )

    def loss(self, cfg: Config) -> keras.losses.Loss:
        p: DetectionParams = cfg.task  # type: ignore[assignment]
        loss: keras.losses.Loss = _loss_class()(packing(cfg), (p.lw1, p.lw2, p.lw3))
        return loss

    def metrics(self, cfg: Config, data: ArrayDataset) -> list[keras.metrics.Metric]:
        p: DetectionParams = cfg.task  # type: ignore[assignment]
        classes = _metric_classes()
        pack = packing(cfg)
        total = p.lw1 + p.lw2 + p.lw3
        return [
            classes["iou"](pack, "iou"),
            classes["iou_all"](pack, "iou_all"),
            classes["term"](pack, "plane_cross_entropy_error", 0, p.lw1 / total),
            classes["term"](pack, "position_error", 1, p.lw2 / total),
            classes["term"](pack, "size_error", 2, p.lw3 / total),
        ]

    # --- pipelines -------------------------------------------------------------------------

    def _targets(self, cfg: Config, cell_grow: float) -> Any:
        """numpy: a tile's boxes ``[50, 4]`` -> its packed ``y``."""
        from harness.tasks._yolo_boxes import Grid, yolo_targets

        p: DetectionParams = cfg.task  # type: ignore[assignment]
        grid = Grid(p.grid_nn, p.cell_n, cell_grow)
        pack = packing(cfg)

        def fn(rois: np.ndarray) -> np.ndarray:
            return pack.pack(yolo_targets(rois, grid, p.cell_swarm), rois)

        return fn

    def train_dataset(self, data: ArrayDataset, cfg: Config) -> Any:
        """Tiles cut, augmented and assigned in tf.data where TensorFlow is installed, else the same stream in
        numpy batched by a PyDataset (the shuffle buffer's order differs: a generator of its own)."""
        to_y = self._targets(cfg, cfg.task.cell_grow)  # type: ignore[attr-defined]
        images, params = _aerial(data, cfg)
        if not _framework.installed("tensorflow"):
            from harness.data import stream_batches, tile_stream

            tiles = tile_stream(images.train_images, params, params.augment, cfg.run.seed)
            return stream_batches(((tile, to_y(rois)) for tile, rois in tiles), cfg.run.batch_size)
        import tensorflow as tf

        from harness.data import tile_dataset

        size = packing(cfg).size

        def targets(tile: Any, rois: Any) -> tuple[Any, Any]:
            y = tf.numpy_function(to_y, [rois], tf.float32, stateful=False)
            y.set_shape([size])
            return tf.cast(tile, tf.float32) / 255.0, y

        tiles = tile_dataset(images.train_images, params, params.augment, cfg.run.seed)
        return (
            tiles.map(targets, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(cfg.run.batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    def eval_dataset(self, data: ArrayDataset, cfg: Config) -> Any:
        """The fixed evaluation tiles, in order; targets with cell_grow 1 as the reference (main.py:65)."""
        to_y = self._targets(cfg, 1.0)
        ys = np.stack([to_y(r) for r in data.y_test]) if len(data.y_test) else np.zeros((0, packing(cfg).size))
        xs = data.x_test
        b = cfg.run.eval_batch_size
        if not _framework.installed("tensorflow"):
            from harness.data import array_batches

            return array_batches(xs, ys.astype(np.float32), b)
        import tensorflow as tf

        def batches() -> Any:  # a generator: the tiles may be larger than a graph constant may hold
            for i in range(0, len(xs), b):
                yield xs[i : i + b], ys[i : i + b].astype(np.float32)

        spec = (
            tf.TensorSpec([None, *xs.shape[1:]], tf.uint8),
            tf.TensorSpec([None, ys.shape[1]], tf.float32),
        )
        ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(xs) // b)))  # Keras knows when a pass ends
        return ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y)).prefetch(2)

    # --- after training: whole images ------------------------------------------------------

    finds_boxes: ClassVar[bool] = True

    def image_boxes(self, model: keras.Model, image: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
        """Every box with P(plane) >= 0.05 on the whole image, NMS across tile borders (:func:`detect_image`)."""
        return detect_image(model, image, cfg.task.grid_nn, cfg.run.eval_batch_size)  # type: ignore[attr-defined]

    def evaluate(self, model: keras.Model, data: ArrayDataset, cfg: Config) -> dict[str, float]:
        """AP@0.5, precision and recall at IoU 0.5 on the held-out whole images (ours)."""
        from harness.tasks._yolo_boxes import coco_ap50

        started = time.perf_counter()
        dataset, params = _aerial(data, cfg)
        images = dataset.eval_images
        limit = params.eval_images
        n = len(images.images) if limit is None else min(limit, len(images.images))
        if n == 0:
            return {}
        detections = [
            detect_image(model, images.images[i], cfg.task.grid_nn, cfg.run.eval_batch_size)  # type: ignore[attr-defined]
            for i in range(n)
        ]
        scores = coco_ap50(list(images.boxes[:n]), detections)
        return {
            "final_test_ap50": float(scores["ap50"]),
            "final_test_precision50": float(scores["precision50"]),
            "final_test_recall50": float(scores["recall50"]),
            "final_eval_images": float(n),
            "time_image_eval_s": time.perf_counter() - started,
        }

    # --- reports ---------------------------------------------------------------------------

    def report_columns(self) -> tuple[Column, ...]:
        return (
            Column("IoU %", "final_test_iou", percent=True),
            Column("best IoU %", "best_test_iou", percent=True),
            Column("IoU all tiles %", "final_test_iou_all", percent=True),
            Column("AP@0.5 %", "final_test_ap50", percent=True, optional=True),
            Column("precision@0.5 %", "final_test_precision50", percent=True, optional=True),
            Column("recall@0.5 %", "final_test_recall50", percent=True, optional=True),
        )

    def curve_metrics(self) -> tuple[str, ...]:
        return ("iou", "iou_all", "loss")

    def style_panel(self, ax: Any, metric: str, history: Any) -> None:
        titles = {"iou": "IoU (reference)", "iou_all": "IoU (every tile)", "loss": "weighted loss"}
        ax.set_title(titles.get(metric, metric))


def _aerial(data: ArrayDataset, cfg: Config) -> tuple[DetectionDataset, AerialParams]:
    """The whole-image dataset and its section; any other dataset cannot feed this task."""
    from harness.data import AerialParams, DetectionDataset

    if not isinstance(data, DetectionDataset) or not isinstance(cfg.data, AerialParams):
        raise ConfigError(f"task 'detection' needs an aerial image dataset, but got dataset {cfg.data.name!r}")
    return data, cfg.data


def detect_image(
    model: keras.Model, image: np.ndarray, grid_nn: int, batch_size: int = 32, min_score: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (image pixels, x1y1x2y2) and P(plane) scores on one whole image: overlapping 256x256
    tiles, every slot with P(plane) >= ``min_score`` (the scores rank detections for AP), and
    non-max suppression across tile borders (ours: the reference drew every tile's boxes)."""
    from keras import ops

    from harness.tasks._yolo_boxes import cut_tiles, merge_detections, tile_origins

    origins = tile_origins(image.shape[0], image.shape[1], TILE)
    tiles = cut_tiles(image, origins)
    boxes_out, scores_out = [], []
    for i in range(0, len(tiles), batch_size):
        x = tiles[i : i + batch_size].astype(np.float32) / np.float32(255.0)
        pred = ops.cast(model(x, training=False), "float32")
        boxes, probs = _all_boxes(pred, grid_nn)
        boxes_out.append(ops.convert_to_numpy(boxes))
        scores_out.append(ops.convert_to_numpy(probs))
    boxes_all = np.concatenate(boxes_out)
    scores_all = np.where(np.concatenate(scores_out) >= min_score, np.concatenate(scores_out), 0.0)
    return merge_detections(boxes_all, scores_all, origins, score_threshold=min_score)


def _all_boxes(pred: Any, grid_nn: int) -> tuple[Any, Any]:
    """Every slot's decoded box ``[B, S, 4]`` and P(plane) ``[B, S]`` (no detection cut)."""
    from keras import ops

    forced = ops.concatenate([pred[..., :3], ops.zeros_like(pred[..., 3:4]), ops.ones_like(pred[..., 4:5])], axis=-1)
    boxes, _ = detected_boxes(forced, grid_nn)
    _, probs = detected_boxes(pred, grid_nn)
    return boxes, probs
