"""The shared detection recipe layer: data, training step, serving and report of every detector.

Not a registered recipe: ``ssd``, ``yolo_v1``, ``centernet`` (and any later detector) build their
:class:`~tfmodels.registry.Recipe` with :func:`detection_recipe`, supplying only a config
subclass with presets and a model builder that returns a :class:`Detector`. Specs: issue 12
("Detection data", "Serving", "Pictures"), DESIGN.md "Vision tasks: shared conventions".

Data (:func:`datasets`): :func:`pipelines.detection.sources.load` (``embedded`` digit scenes,
``tfds:voc/2007``, ``coco:<folder>``, ``voc:<folder>``), each image letterboxed to the model's
``image_size`` (aspect kept, centred, padded with 0: :func:`pipelines.detection.augment.resize`).
Elements are ``(image, gt)``: ``image`` float32 ``[S, S, 3]`` in 0..255, ``gt`` a dict of
``boxes`` float32 ``[max_boxes, 4]`` corner boxes ``[xmin, ymin, xmax, ymax]`` in model-input
pixels (0 on padding), ``classes`` int32 ``[max_boxes]`` (-1 on padding) and ``num_boxes`` int32.
Training batches get seeded box-aware augmentation (:func:`train_transform`); validation, test
and serving never do.

Run assets: ``class_names.json`` (the data source's classes when the run was made); the number
of classes and the served ``detection_class_names`` come from it.

Model (:class:`Detector`): a ``keras.Model`` subclass wrapping the recipe's functional network
(``images [B, S, S, 3] -> raw head outputs``) and a :class:`BoxCoder` with the recipe's three
functions: ``encode(gt) -> targets``, ``loss(targets, outputs) -> {part: scalar}``,
``decode(outputs) -> (boxes, class_scores)``. ``train_step`` / ``test_step`` encode the ground
truth in the graph, so the data pipeline is the same for every detector; ``test_step`` also
decodes, runs multiclass NMS and updates a
:class:`~tfmodels.metrics.mean_average_precision.MeanAveragePrecision`, so validation logs
``val_map`` (COCO mAP@[.5:.95], agreeing with pycocotools): the presets monitor it (mode max).

Serving (:func:`serving`): ``serving_default`` takes ``image_bytes`` string ``[B]`` (PNG, JPEG,
GIF or BMP, any size, grey or colour, sizes may differ within a batch); each image is decoded and
letterboxed in the graph exactly as :func:`datasets` letterboxes, then network, decode, NMS and the
map back to the original image's pixels (boxes clipped to the image) all run in the graph with
core ops. ``predict_pixels`` takes float32 pixels ``[B, S, S, 3]`` in 0..255 at the model size
(no letterbox; boxes in those pixels). Both return

=========================  ==================  ================================================
``detection_boxes``        float32 [B, K, 4]   ``[xmin, ymin, xmax, ymax]`` in pixels of the
                                               input image (x right, y down, pixel corners);
                                               0 on padding
``detection_scores``       float32 [B, K]      class confidence, descending; 0 on padding
``detection_classes``      int32 [B, K]        class index into the run's class names; -1 on padding
``detection_class_names``  string [B, K]       the class's name; ``""`` on padding
``num_detections``         int32 [B]           real rows of each image (the rest is padding)
=========================  ==================  ================================================

with ``K = max_detections``; detections score above ``score_threshold`` (both from the config).
An empty string or bytes that are no image fail the request with ``InvalidArgumentError``
naming the problem; a 1x1 image is a valid image (letterboxed like any other).

Report (:func:`report`): pycocotools mAP@[.5:.95], mAP@0.5, mAP@0.75 and per-class AP on the
test split (model-input pixels, the same frame for ground truth and detections), and
``detections.png``: test scenes with predicted boxes, labels and scores beside the ground truth.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import digits, images, semi_supervised
from pipelines import sources as data_sources
from pipelines.detection import augment, sources, tfds_detection
from pipelines.detection.masks import paste_masks
from pipelines.detection.nms import multiclass_non_max_suppression
from pipelines.sources import DataSourceError
from pipelines.splits import Splits
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.metrics.coco_eval import coco_evaluate
from tfmodels.metrics.mean_average_precision import MeanAveragePrecision
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset

GT_KEYS = ("boxes", "classes", "num_boxes")
SUBSET_ASSET = "labelled_subset.json"
DETECTION_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


@dataclasses.dataclass
class DetectionConfig(TrainConfig):
    """Settings every detector shares; each recipe subclasses it with its own fields and presets.

    Args:
        image_size: side of the square model input; images are letterboxed to it.
        max_boxes: ground-truth box rows per element (digit scenes hold at most 5).
        num_scenes: digit scenes in the train / validation / test splits (``embedded``).
        flip: mirror half of the training images (off by default: a mirrored digit is no digit).
        scale_range: zoom range ``(low, high)`` of the training scale jitter and crop;
            ``(1.0, 1.0)`` turns it off.
        score_threshold: detections scoring at or below it are dropped (evaluation and serving).
        iou_threshold: NMS overlap above which the lower-scored box of a class is dropped.
        max_detections: detections per image after NMS (the served ``K``).
        labelled_fraction: train on a seeded fraction of the training scenes only (1: all); the
            subset is saved as ``assets/labelled_subset.json`` (:func:`labelled_subset`): the
            supervised baseline of the semi-supervised detectors, on their labelled part.
    """

    image_size: int = 128
    max_boxes: int = 16
    num_scenes: tuple[int, ...] = (4000, 500, 500)
    flip: bool = False
    scale_range: tuple[float, ...] = (0.75, 1.33)
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    labelled_fraction: float = 1.0
    monitor: str = "val_map"

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"tiny": {}, "default": {}, "paper": {}}

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.num_scenes) != 3 or min(self.num_scenes) < 1:
            raise ConfigError(f"num_scenes needs three positive counts (train, validation, test), got {self.num_scenes}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"scale_range needs (low, high) with 0 < low <= high, got {self.scale_range}")
        if min(self.image_size, self.max_boxes, self.max_detections) < 1:
            raise ConfigError("image_size, max_boxes and max_detections must be >= 1")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ConfigError(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")


class BoxCoder(keras.layers.Layer, abc.ABC):
    """A detector's three recipe functions: targets from ground truth, the loss, and box decoding.

    A subclass is registered serializable (``@keras.saving.register_keras_serializable``) and
    holds no trainable weights; its constructor arguments (anchors' sizes, strides, loss
    weights) come back through ``get_config``. All three methods are graph code (core ops, no
    Python side effects) on batches; ``decode`` also runs in the served graph.

    Attributes:
        loss_parts: the names of the parts :meth:`loss` returns, in a fixed order (the
            :class:`Detector` makes one logged mean per part when it is built).
    """

    loss_parts: tuple[str, ...] = ()

    @abc.abstractmethod
    def encode(self, gt: Mapping[str, tf.Tensor]) -> Any:
        """Training targets of a batch of ground truth.

        Args:
            gt: ``boxes`` float32 ``[B, G, 4]`` corner boxes in model-input pixels, ``classes``
                int32 ``[B, G]`` (-1 on padding), ``num_boxes`` int32 ``[B]``.

        Returns:
            Any nest of tensors :meth:`loss` understands.
        """

    @abc.abstractmethod
    def loss(self, targets: Any, outputs: Any) -> dict[str, tf.Tensor]:
        """The loss of a batch, by named part (float32 scalars); the training loss is their sum.

        Args:
            targets: what :meth:`encode` returned.
            outputs: the network's outputs, already cast to float32.

        Returns:
            ``{part name: scalar}`` with the keys of :attr:`loss_parts`, e.g.
            ``{"class_loss": ..., "box_loss": ...}``; each part is logged under its name.
        """

    @abc.abstractmethod
    def decode(self, outputs: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """Candidate boxes and per-class scores of a batch, before NMS.

        Args:
            outputs: the network's outputs, float32.

        Returns:
            ``(boxes, class_scores)``: ``boxes`` float32 ``[B, N, 4]`` (shared by all classes) or
            ``[B, N, C, 4]`` (one per class) corner boxes in model-input pixels; ``class_scores``
            float32 ``[B, N, C]`` in [0, 1] over the C object classes (no background column).
        """


def _float32(outputs: Any) -> Any:
    """Network outputs in float32: losses, softmax and decoding stay float32 under mixed precision."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), outputs)


@keras.saving.register_keras_serializable(package="tfmodels")
class Detector(keras.Model):
    """A detection network with its coder: trains on ``(image, gt)`` batches, detects on images.

    ``call(images)`` returns the network's raw outputs; :meth:`detect` adds decode and NMS.
    ``train_step`` encodes ``gt`` with the coder, computes the coder's loss parts on float32
    outputs (plus any layer regularisation losses) and applies gradients (loss scaling under
    mixed precision); ``test_step`` logs the same parts and updates ``map``
    (:class:`~tfmodels.metrics.mean_average_precision.MeanAveragePrecision` on the detections of
    :meth:`detect`, in model-input pixels). Compile it without a loss (:func:`compile_args`).

    Args:
        network: functional ``keras.Model``, ``images [B, S, S, 3] float32 0..255 -> outputs``.
        coder: the recipe's :class:`BoxCoder`.
        num_classes: object classes C.
        score_threshold, iou_threshold, max_detections: NMS settings (:class:`DetectionConfig`).
        map_capacity: detections the validation mAP stores per evaluation (images x K suffice).
        name: the model name.

    Example:
        >>> detector = Detector(network, coder, num_classes=10)   # doctest: +SKIP
        >>> detector.detect(images)["detection_boxes"].shape      # doctest: +SKIP
        TensorShape([8, 100, 4])
    """

    has_masks = False  # a subclass whose detect() adds box-relative ``detection_masks`` sets it

    def __init__(
        self,
        network: keras.Model,
        coder: BoxCoder,
        num_classes: int,
        score_threshold: float = 0.05,
        iou_threshold: float = 0.5,
        max_detections: int = 100,
        map_capacity: int = 100_000,
        name: str = "detector",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.network = network
        self.coder = coder
        self.num_classes = int(num_classes)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.map_capacity = int(map_capacity)
        self.loss_trackers = {
            part: keras.metrics.Mean(name=part) for part in ("loss", *coder.loss_parts)
        }
        self.map_metric = MeanAveragePrecision(
            self.num_classes, max_detections=self.max_detections, capacity=self.map_capacity, name="map"
        )
        self.built = True  # the functional network is built; nothing here has weights of its own

    @property
    def metrics(self):
        return [*self.loss_trackers.values(), self.map_metric]

    def call(self, images, training=False):
        return self.network(images, training=training)

    def detect(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Detections of float32 images ``[B, S, S, 3]`` (0..255) in inference mode.

        Returns:
            ``detection_boxes`` ``[B, K, 4]`` (model-input pixels), ``detection_scores`` ``[B, K]``,
            ``detection_classes`` int32 ``[B, K]`` (-1 on padding), ``num_detections`` int32
            ``[B]``: multiclass NMS of the coder's decoded boxes.
        """
        return self._detections(self(images, training=False))

    def _detections(self, outputs) -> dict[str, tf.Tensor]:
        """Multiclass NMS of the coder's decoding of network outputs."""
        boxes, class_scores = self.coder.decode(_float32(outputs))
        return multiclass_non_max_suppression(
            boxes, class_scores, self.max_detections,
            iou_threshold=self.iou_threshold, score_threshold=self.score_threshold,
        )

    def detection_loss(self, images, gt, training: bool) -> tuple[tf.Tensor, dict[str, tf.Tensor], Any]:
        """``(total, parts, outputs)``: a batch's loss, its parts, and the network's outputs.

        ``test_step`` decodes ``outputs`` for the validation mAP, so one forward pass serves both.
        """
        outputs = self(images, training=training)
        return (*self._total_loss(self.coder.loss(self.coder.encode(gt), _float32(outputs))), outputs)

    def _total_loss(self, parts: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The sum of the coder's parts plus layer regularisation (weight decay written into the network)."""
        total = tf.add_n([parts[part] for part in self.coder.loss_parts])
        if self.losses:
            total += tf.add_n([tf.cast(extra, tf.float32) for extra in self.losses])
        return total, parts

    def _log(self, total, parts) -> dict[str, tf.Tensor]:
        for name, value in {"loss": total, **parts}.items():
            self.loss_trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.loss_trackers.items()}

    def train_step(self, data):
        images, gt = data
        with tf.GradientTape() as tape:
            total, parts, _ = self.detection_loss(images, gt, training=True)
        self.optimizer_step(tape, total)
        return self._log(total, parts)

    def optimizer_step(self, tape: tf.GradientTape, total: tf.Tensor) -> None:
        """Applies the gradients of ``total`` (recorded on ``tape``) to every trainable variable."""
        # Gradients are summed over replicas: each replica's loss is its share of the mean.
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tape:
            scaled = self.optimizer.scale_loss(total / replicas)
        weights = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))

    def test_step(self, data):
        images, gt = data
        total, parts, outputs = self.detection_loss(images, gt, training=False)
        logs = self._log(total, parts)
        self.map_metric.update_state(gt, self._detections(outputs))
        return {**logs, "map": self.map_metric.result()}

    def get_config(self):
        return {
            "network": keras.saving.serialize_keras_object(self.network),
            "coder": keras.saving.serialize_keras_object(self.coder),
            "num_classes": self.num_classes,
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "max_detections": self.max_detections,
            "map_capacity": self.map_capacity,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("network", "coder"):
            config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
        return cls(**config)


def _source_class_names(spec: str) -> list[str]:
    """The classes of data source ``spec``, read without loading its images."""
    kind, argument = data_sources.parse(spec, sources.SOURCES)
    if kind == "embedded":
        return list(digits.CLASS_NAMES)
    if kind == "tfds":
        return tfds_detection.class_names(argument)
    return list(sources.READERS[kind](argument, None)[1])


def class_names(cfg: DetectionConfig) -> list[str]:
    """The run's classes (``assets/class_names.json``), derived from the data source by a new run."""
    return json_asset(cfg, "class_names.json", lambda: _source_class_names(cfg.data))


def _image_and_gt(element: dict) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    return element["image"], {key: element[key] for key in (*GT_KEYS, "masks") if key in element}


def datasets(cfg: DetectionConfig, masks: bool = False) -> Splits:
    """Train / validation / test ``(image, gt)`` elements letterboxed to ``cfg.image_size`` (module docstring).

    With ``masks`` (digit scenes only), ``gt`` also holds the instance ``masks`` uint8
    ``[max_boxes, S, S]``, letterboxed and augmented with the image. With ``labelled_fraction``
    below 1 the training split holds the run's labelled subset only (:func:`labelled_subset`).
    """
    splits = all_scenes(cfg, masks)
    if cfg.labelled_fraction == 1.0:
        return splits
    subset = labelled_subset(cfg, splits.train)
    sizes = {**splits.info.get("sizes", {}), "train": len(subset["labelled"]), "unlabelled": len(subset["unlabelled"])}
    train = semi_supervised.select_examples(splits.train, subset["labelled"])
    return Splits(train, splits.validation, splits.test, {**splits.info, "sizes": sizes})


def all_scenes(cfg: DetectionConfig, masks: bool = False) -> Splits:
    """:func:`datasets` with every training scene, whatever ``labelled_fraction`` says."""
    names = class_names(cfg)
    splits = sources.load(
        cfg.data, seed=cfg.data_seed, max_boxes=cfg.max_boxes, num_scenes=tuple(cfg.num_scenes), class_names=names,
        masks=masks,
    )
    size = (cfg.image_size, cfg.image_size)

    def prepare(element):
        resized, _, _ = augment.resize({key: element[key] for key in augment.ELEMENT_KEYS if key in element}, size)
        return _image_and_gt(resized)

    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    prepared = (split.map(prepare, **parallel) for split in (splits.train, splits.validation, splits.test))
    return Splits(*prepared, {**splits.info, "image_size": cfg.image_size})


def labelled_subset(cfg: DetectionConfig, train: tf.data.Dataset) -> dict:
    """The run's labelled training scenes (``assets/labelled_subset.json``; ``labelled_fraction``).

    ``{"labelled": [...], "unlabelled": [...], "scenes": n, "fraction", "seed"}``: indices into the
    training split, seeded by ``data_seed`` (:func:`pipelines.semi_supervised.split_fraction`), so
    a supervised run and a semi-supervised run with the same fraction and seed share the subset.

    Raises:
        DataSourceError: the training split no longer has the saved number of scenes.
    """

    def count() -> int:
        known = int(train.cardinality())
        return known if known >= 0 else int(train.reduce(0, lambda n, *_: n + 1))

    def derive():
        scenes = count()
        labelled, unlabelled = semi_supervised.split_fraction(scenes, cfg.labelled_fraction, cfg.data_seed)
        return {"labelled": labelled.tolist(), "unlabelled": unlabelled.tolist(), "scenes": scenes,
                "fraction": cfg.labelled_fraction, "seed": cfg.data_seed}

    subset = json_asset(cfg, SUBSET_ASSET, derive)
    if int(train.cardinality()) >= 0 and int(train.cardinality()) != subset["scenes"]:
        raise DataSourceError(
            f"the training split has {int(train.cardinality())} scenes, the run's labelled subset was drawn from "
            f"{subset['scenes']}: the data source changed since the run began"
        )
    return subset


def train_transform(cfg: DetectionConfig) -> Callable | None:
    """``fn(images, gt) -> (images, gt)`` on training batches: seeded flip and scale-jitter crop.

    Built on :func:`pipelines.detection.augment.batch_transform` (keyed by the run seed and the
    batch, so a resumed run draws what an uninterrupted one did); ``None`` when ``flip`` is off
    and ``scale_range`` is ``(1, 1)``.
    """
    jitter = tuple(cfg.scale_range) != (1.0, 1.0)
    if not (cfg.flip or jitter):
        return None
    size = (cfg.image_size, cfg.image_size)
    transform = augment.batch_transform(cfg.seed, size, flip=cfg.flip, scale_range=tuple(cfg.scale_range) if jitter else None)

    def apply(images, gt):
        return _image_and_gt(transform({"image": images, **gt}))

    return apply


def compile_args(cfg: DetectionConfig) -> dict:
    """``{}``: a :class:`Detector` computes its loss and metrics in its own steps."""
    return {}


def _named(detections: dict[str, tf.Tensor], names: list[str]) -> dict[str, tf.Tensor]:
    """Adds ``detection_class_names`` (``""`` on padding) to NMS outputs."""
    table = tf.constant([*names, ""])  # class -1 (padding) gathers the last entry
    classes = detections["detection_classes"]
    return {**detections, "detection_class_names": tf.gather(table, tf.where(classes >= 0, classes, len(names)))}


def _to_original(detections: dict[str, tf.Tensor], scale, offset, image_hw) -> dict[str, tf.Tensor]:
    """Boxes mapped from the letterboxed input back to each original image, clipped to it."""
    boxes = augment.boxes_to_original(detections["detection_boxes"], scale, offset)
    height, width = image_hw[:, 0, None, None], image_hw[:, 1, None, None]
    boxes = tf.clip_by_value(boxes, 0.0, tf.concat([width, height, width, height], axis=-1))  # [B, 1, 4] bounds
    real = tf.sequence_mask(detections["num_detections"], tf.shape(boxes)[1])[..., None]
    return {**detections, "detection_boxes": tf.where(real, boxes, 0.0)}


OUTPUTS = {
    "detection_boxes": "float32 [B, K, 4]: [xmin, ymin, xmax, ymax] in pixels of the input image; 0 on padding",
    "detection_scores": "float32 [B, K]: class confidence, descending; 0 on padding",
    "detection_classes": "int32 [B, K]: class index into the run's class names; -1 on padding",
    "detection_class_names": "string [B, K]: the class's name; empty on padding",
    "num_detections": "int32 [B]: real detections per image",
}
MASK_OUTPUT = {
    "detection_masks": "float32 [B, K, H, W]: each detection's mask probability per pixel of the input image "
    "(H, W: the largest image of the batch; a smaller image's pixels start at the top left); 0 outside the box "
    "and on padding; threshold at 0.5 for a binary mask",
}


def _pasted(detections: dict[str, tf.Tensor], height, width) -> dict[str, tf.Tensor]:
    """Box-relative ``detection_masks`` (if any) pasted into a ``height × width`` frame of the boxes' pixels."""
    if "detection_masks" not in detections:
        return detections
    masks = paste_masks(detections["detection_masks"], detections["detection_boxes"], height, width)
    return {**detections, "detection_masks": masks}


def serving(cfg: DetectionConfig, model: Detector) -> Serving:
    """``serving_default`` (image bytes) and ``predict_pixels`` (module docstring's table)."""
    names, size = class_names(cfg), cfg.image_size
    outputs = {**OUTPUTS, **(MASK_OUTPUT if model.has_masks else {})}

    def from_pixels(pixels):
        return _named(_pasted(model.detect(pixels), size, size), names)

    def from_bytes(image_bytes):
        pixels, scale, offset, image_hw = augment.decode_letterboxed(image_bytes, size)
        detections = _to_original(model.detect(pixels), scale, offset, image_hw)
        largest = tf.cast(tf.reduce_max(image_hw, axis=0), tf.int32)
        return _named(_pasted(detections, largest[0], largest[1]), names)

    return Serving(
        {
            "serving_default": Endpoint(from_bytes, {"image_bytes": tf.TensorSpec([None], tf.string)}, outputs),
            "predict_pixels": Endpoint(from_pixels, {"pixels": tf.TensorSpec([None, size, size, 3], tf.float32)}, outputs),
        }
    )


def _numpy(detections: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
    return {key: np.asarray(value) for key, value in detections.items()}


def serving_examples(cfg: DetectionConfig, model: Detector, test, count: int = 4) -> dict[str, ServingExample]:
    """Test scenes as PNG bytes and as pixels, with the evaluation path's detections.

    The expected answers are :meth:`Detector.detect` on the test pipeline's pixels (rounded to
    8 bits, as a PNG holds them), with names looked up in NumPy; test images are already at the
    model size, so serving's letterbox and map back are the identity on them.
    """
    pixels = next(iter(test.map(lambda image, *_: image).batch(count))).numpy()
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.float32)  # what an 8-bit image file holds
    size = cfg.image_size
    expected = _numpy(_pasted(model.detect(tf.constant(pixels)), size, size))
    names = np.array([name.encode() for name in class_names(cfg)] + [b""], dtype=object)
    expected["detection_class_names"] = names[np.where(expected["detection_classes"] >= 0, expected["detection_classes"], -1)]
    encoded = np.array([images.encode_png(p).numpy() for p in pixels], dtype=object)
    return {
        "serving_default": ServingExample({"image_bytes": encoded}, expected),
        "predict_pixels": ServingExample({"pixels": pixels}, expected),
    }


def detect_split(model: Detector, split: tf.data.Dataset, batch_size: int = 32) -> tuple[dict, dict, np.ndarray]:
    """``(gt, detections, images)`` of a whole unbatched ``(image, gt)`` split, as NumPy arrays."""
    detect = tf.function(model.detect)
    parts: dict[str, list] = {}
    for pixels, gt in split.batch(batch_size):
        for key, value in {**_numpy(gt), **_numpy(detect(pixels)), "image": pixels.numpy()}.items():
            parts.setdefault(key, []).append(value)
    joined = {key: np.concatenate(values) for key, values in parts.items()}
    return {k: joined[k] for k in GT_KEYS}, {k: joined[k] for k in DETECTION_KEYS}, joined["image"]


def draw_detections(
    pixels: np.ndarray, gt: Mapping[str, np.ndarray], detections: Mapping[str, np.ndarray], names: list[str],
    path: Path, count: int = 6, min_score: float = 0.3, titles: tuple[str, str] = ("ground truth", "detections"),
) -> None:
    """``detections.png``: ``count`` scenes, ground truth (top row) above the detections (bottom row).

    Only detections scoring at least ``min_score`` are drawn, so a picture stays readable; the
    mAP counts them all. ``titles`` name the two rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = min(count, len(pixels))
    fig, axes = plt.subplots(2, count, figsize=(2.4 * count, 5.0), squeeze=False)
    for i in range(count):
        real = np.arange(gt["classes"].shape[1]) < gt["num_boxes"][i]
        kept = (np.arange(detections["detection_classes"].shape[1]) < detections["num_detections"][i]) & (
            detections["detection_scores"][i] >= min_score
        )
        rows = (
            (titles[0], gt["boxes"][i][real], gt["classes"][i][real], None, "lime"),
            (titles[1], detections["detection_boxes"][i][kept], detections["detection_classes"][i][kept],
             detections["detection_scores"][i][kept], "red"),
        )
        for ax, (title, boxes, classes, scores, colour) in zip(axes[:, i], rows):
            ax.imshow(np.clip(pixels[i], 0, 255).astype(np.uint8))
            for k, (x0, y0, x1, y1) in enumerate(boxes):
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.2))
                label = names[classes[k]] if scores is None else f"{names[classes[k]]} {scores[k]:.2f}"
                ax.text(x0, y0, label, color="black", fontsize=7, va="bottom", bbox=dict(facecolor=colour, pad=0.5, lw=0))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(cfg: DetectionConfig, model: Detector, splits: Splits, run_dir: Path) -> dict:
    """pycocotools mAP on the test split and ``detections.png`` in ``run_dir``.

    Returns:
        ``{"coco_map": mAP@[.5:.95], "coco_map_50": ..., "coco_map_75": ...,
        "per_class_ap": {name: AP@[.5:.95]}, "test_images": n, "picture": "detections.png"}``.
    """
    names = class_names(cfg)
    gt, detections, pixels = detect_split(model, splits.test, cfg.batch_size or 32)
    metrics = coco_evaluate(gt, detections, names)
    draw_detections(pixels, gt, detections, names, Path(run_dir) / "detections.png")
    return {
        "coco_map": metrics.map,
        "coco_map_50": metrics.map_50,
        "coco_map_75": metrics.map_75,
        "per_class_ap": metrics.per_class,
        "test_images": int(len(pixels)),
        "picture": "detections.png",
    }


def detector_settings(cfg: DetectionConfig) -> dict[str, Any]:
    """The :class:`Detector` keyword arguments that come from the config and the run's classes:
    ``num_classes``, ``score_threshold``, ``iou_threshold``, ``max_detections``, ``map_capacity``."""
    validation_images = cfg.num_scenes[1] if cfg.data == "embedded" else 10_000
    return {
        "num_classes": len(class_names(cfg)),
        "score_threshold": cfg.score_threshold,
        "iou_threshold": cfg.iou_threshold,
        "max_detections": cfg.max_detections,
        "map_capacity": max(1, validation_images) * cfg.max_detections,
    }


def detection_recipe(
    name: str,
    description: str,
    config: type[DetectionConfig],
    model: Callable[[DetectionConfig], Detector],
    datasets: Callable[[DetectionConfig], Splits] = datasets,
    report: Callable[..., dict] = report,
    train_transform: Callable[[DetectionConfig], Callable | None] = train_transform,
) -> Recipe:
    """Registers a detector's :class:`~tfmodels.registry.Recipe` with this module's shared parts.

    Args:
        name: the MODEL name.
        description: one line for ``tfmodels list``.
        config: the recipe's :class:`DetectionConfig` subclass with its presets.
        model: ``cfg -> Detector``; use :func:`detector_settings` for the arguments that come
            from the config and the run's classes.
        datasets: the splits, when the recipe's data differ from :func:`datasets`'.
        report: the report, when the recipe adds to :func:`report`'s.
        train_transform: the training batches' augmentation, when the recipe's elements differ.
    """
    return register(
        Recipe(
            name=name,
            description=description,
            config=config,
            datasets=datasets,
            model=model,
            compile_args=compile_args,
            serving=serving,
            serving_examples=serving_examples,
            report=report,
            train_transform=train_transform,
        )
    )
