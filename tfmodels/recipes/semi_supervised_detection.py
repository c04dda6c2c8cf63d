"""What ``stac`` and ``soft_teacher`` share: labelled and unlabelled scenes, the teacher run, the recipe.

Spec: notes-001.md §33-34 and issue 17 ("a split of ... 10% of the digit scenes; the rest is
unlabelled, with its labels dropped before the model sees it; seeded; the labelled subset is
saved with the run"). Both detectors are ``faster_rcnn`` (:mod:`tfmodels.recipes.faster_rcnn`,
the same network, coder and presets) trained on:

* **labelled scenes**: the seeded ``labelled_fraction`` of the training split
  (:func:`tfmodels.recipes.detection.labelled_subset`, ``assets/labelled_subset.json``). A
  ``faster_rcnn`` run with the same ``--set labelled_fraction=0.1`` trains on exactly these scenes:
  the supervised baseline, and the **teacher run** both methods start from (``teacher=<run>``);
* **unlabelled scenes**: all other training scenes, images only (their boxes are dropped here).

Training elements (the trainer batches B of them; :func:`training_elements`)::

    ({"labelled": uint8 [S, S, 3], "unlabelled": uint8 [μ, S, S, 3]},
     {"boxes", "classes", "num_boxes"} of the labelled scene [+ STAC's "pseudo_*" of the μ scenes])

One epoch is one pass over the unlabelled scenes in groups of μ; the labelled scenes cycle.
Labelled images get the ``faster_rcnn`` training augmentation (scale jitter; :func:`train_transform`);
the unlabelled images' strong views are made in the train step
(:mod:`pipelines.detection.strong_augment`). Validation, test, serving and the report are the
shared detection layer's (:mod:`tfmodels.recipes.detection`) on the fully labelled validation and
test scenes, so a table of ``faster_rcnn`` runs at 10% and 100% labels and these two methods
shares one test set.

Both start from the teacher run's weights (student and, for Soft Teacher, the EMA teacher): the
papers start from ImageNet weights and (STAC) retrain from them; at this scale and budget the
burn-in on the labelled scenes is the teacher run itself (documented deviation).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import semi_supervised
from pipelines.splits import Splits
from tfmodels.config import ConfigError
from tfmodels.models.semi_supervised_classifier import unlabelled_images
from tfmodels.recipes import detection
from tfmodels.recipes.faster_rcnn import FasterRcnnConfig
from tfmodels.recipes.two_stage import TwoStageDetector
from tfmodels.registry import Recipe

LABELLED, UNLABELLED = "labelled", "unlabelled"


@dataclasses.dataclass
class SemiSupervisedDetectionConfig(FasterRcnnConfig):
    """``faster_rcnn``'s settings plus the semi-supervised ones (``batch_size`` is B, labelled scenes per step).

    Args:
        teacher: a finished ``faster_rcnn`` run trained on the same labelled subset (required).
        mu: μ, unlabelled scenes per labelled one in a batch.
        unlabelled_weight: λu, the unlabelled loss's weight.
        confidence: teacher detections scoring at least this are pseudo-boxes.
        strong_scale_range: zoom range of the strong view's scale jitter.
    """

    labelled_fraction: float = 0.1
    teacher: str = ""
    mu: int = 1
    unlabelled_weight: float = 2.0
    confidence: float = 0.9
    strong_scale_range: tuple[float, ...] = (0.5, 1.5)

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {**FasterRcnnConfig.PRESETS["tiny"], "labelled_fraction": 0.25, "epochs": 1},
        "default": {"epochs": 2, "batch_size": 8, "learning_rate": 3e-4},
        "paper": FasterRcnnConfig.PRESETS["paper"],
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.labelled_fraction >= 1.0:
            raise ConfigError("labelled_fraction must be below 1: the rest of the training scenes is the unlabelled part")
        if self.mu < 1 or self.unlabelled_weight < 0 or not 0.0 < self.confidence < 1.0:
            raise ConfigError("mu must be >= 1, unlabelled_weight >= 0 and confidence in (0, 1)")
        if len(self.strong_scale_range) != 2 or not 0 < self.strong_scale_range[0] <= self.strong_scale_range[1]:
            raise ConfigError(f"strong_scale_range needs (low, high) with 0 < low <= high, got {self.strong_scale_range}")


def teacher_run(cfg: SemiSupervisedDetectionConfig) -> TwoStageDetector:
    """The teacher run's detector, after checking it fits this run.

    Raises:
        ConfigError: ``teacher`` is empty or no finished ``faster_rcnn`` run, or it was trained on
            other labelled scenes or at another image size.
    """
    hint = ("train it with `tfmodels train faster_rcnn --set labelled_fraction=" f"{cfg.labelled_fraction:g}` "
            "(the same data and data_seed) and pass its run directory with --set teacher=<run>")
    if not cfg.teacher:
        raise ConfigError(f"this method starts from a supervised teacher run on the labelled scenes: {hint}")
    run = Path(cfg.teacher)
    if not (run / "model.keras").exists():
        raise ConfigError(f"teacher={cfg.teacher!r} is no finished run (no model.keras): {hint}")
    teacher = keras.saving.load_model(run / "model.keras", compile=False)
    if type(teacher) is not TwoStageDetector or not teacher.coder.rpn:
        raise ConfigError(f"teacher={cfg.teacher!r} holds a {type(teacher).__name__}, not a faster_rcnn detector")
    if teacher.coder.image_size != cfg.image_size:
        raise ConfigError(f"the teacher works at {teacher.coder.image_size}², this run at {cfg.image_size}²")
    subset_path = run / "assets" / detection.SUBSET_ASSET
    ours = detection.labelled_subset(cfg, detection.all_scenes(cfg).train)
    theirs = json.loads(subset_path.read_text()) if subset_path.exists() else None
    if theirs is None or theirs["labelled"] != ours["labelled"]:
        raise ConfigError(f"teacher={cfg.teacher!r} was not trained on this run's labelled scenes: {hint}")
    return teacher


def start_from_teacher(model: TwoStageDetector, teacher: TwoStageDetector) -> None:
    """Copies the teacher run's backbone, RPN and head weights into ``model``."""
    try:
        model.network.set_weights(teacher.network.get_weights())
        model.box_head.set_weights(teacher.box_head.get_weights())
    except ValueError as error:
        raise ConfigError(f"the teacher run's network differs from this run's settings: {error}") from None


def unlabelled_scenes(cfg: SemiSupervisedDetectionConfig) -> tuple[tf.data.Dataset, tf.data.Dataset, Splits]:
    """``(labelled (image, gt), unlabelled (image, gt), all splits)``: the training split cut by the
    run's labelled subset. The unlabelled part keeps its boxes for monitoring only: callers drop them."""
    splits = detection.all_scenes(cfg)
    subset = detection.labelled_subset(cfg, splits.train)
    return (semi_supervised.select_examples(splits.train, subset[LABELLED]),
            semi_supervised.select_examples(splits.train, subset[UNLABELLED]), splits)


def _pixels(image: tf.Tensor) -> tf.Tensor:
    """Letterboxed float pixels stored as uint8 (a quarter of the cache)."""
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def training_elements(cfg: SemiSupervisedDetectionConfig, pseudo: Mapping[str, np.ndarray] | None = None) -> Splits:
    """The run's splits with the training split replaced by the elements of the module docstring.

    Args:
        cfg: the run's config.
        pseudo: STAC's pseudo-boxes of the unlabelled scenes, in their order (``boxes``
            ``[U, G, 4]``, ``classes``, ``num_boxes``), added as ``pseudo_*`` targets.
    """
    labelled, unlabelled, splits = unlabelled_scenes(cfg)
    images = unlabelled.map(lambda image, gt: _pixels(image))
    if pseudo is not None:
        targets = tf.data.Dataset.from_tensor_slices({f"pseudo_{key}": np.asarray(pseudo[key]) for key in detection.GT_KEYS})
        groups = tf.data.Dataset.zip(images, targets).batch(cfg.mu, drop_remainder=True)
    else:
        groups = images.batch(cfg.mu, drop_remainder=True).map(lambda group: (group, {}))
    count = int(unlabelled.cardinality()) // cfg.mu
    if count < 1:
        raise ConfigError(f"{int(unlabelled.cardinality())} unlabelled scenes make no group of mu={cfg.mu}")
    paired = tf.data.Dataset.zip(groups, labelled.repeat()).map(
        lambda group, scene: ({LABELLED: _pixels(scene[0]), UNLABELLED: group[0]}, {**scene[1], **group[1]}),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).take(count)
    sizes = {**splits.info.get("sizes", {}), "train": count, LABELLED: int(labelled.cardinality()), UNLABELLED: int(unlabelled.cardinality())}
    return Splits(paired.apply(tf.data.experimental.assert_cardinality(count)), splits.validation, splits.test,
                  {**splits.info, "sizes": sizes, "mu": cfg.mu})


def train_transform(cfg: SemiSupervisedDetectionConfig) -> Callable:
    """``fn(x, y) -> (x, y)`` on training batches: the labelled scenes get ``faster_rcnn``'s
    augmentation with their boxes; the unlabelled ones pass (their views are made in the step)."""
    labelled_transform = detection.train_transform(cfg)

    def apply(x, y):
        gt = {key: y[key] for key in detection.GT_KEYS}
        pixels = tf.cast(x[LABELLED], tf.float32)
        if labelled_transform is not None:
            pixels, gt = labelled_transform(pixels, gt)
        return {**x, LABELLED: pixels}, {**y, **gt}

    return apply


def unlabelled_batch(x: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """``[B, μ, S, S, 3]`` uint8 → ``[B·μ, S, S, 3]`` float32 pixels."""
    return tf.cast(unlabelled_images(x[UNLABELLED]), tf.float32)


def pseudo_boxes_picture(cfg: SemiSupervisedDetectionConfig, label: Callable, path: Path, count: int = 6) -> str:
    """``pseudo_boxes.png``: the first ``count`` unlabelled scenes, their dropped true boxes (top row)
    above the pseudo-boxes ``label(pixels)`` gives them (bottom row, with scores).

    Args:
        cfg: the run's config.
        label: ``pixels [N, S, S, 3] -> {"boxes", "classes", "num_boxes", "scores"}`` (NumPy or tensors).
        path: the picture's file.
        count: scenes shown.
    """
    _, unlabelled, _ = unlabelled_scenes(cfg)
    pixels, truth = next(iter(unlabelled.batch(count)))
    pseudo = {key: np.asarray(value) for key, value in label(pixels).items()}
    shown = {"detection_boxes": pseudo["boxes"], "detection_scores": pseudo["scores"],
             "detection_classes": pseudo["classes"], "num_detections": pseudo["num_boxes"]}
    truth = {key: np.asarray(value) for key, value in truth.items()}
    detection.draw_detections(pixels.numpy(), truth, shown, detection.class_names(cfg), path, count, min_score=0.0,
                              titles=("true boxes (dropped)", "pseudo-boxes"))
    return path.name


def semi_supervised_detection_recipe(
    name: str, description: str, config: type[SemiSupervisedDetectionConfig], model, datasets, report_extra
) -> Recipe:
    """Registers a semi-supervised detector's recipe: the detection layer's serving and report,
    these elements and transform; ``report_extra(cfg, model, run_dir) -> dict`` adds the method's
    facts and its ``pseudo_boxes.png`` (:func:`pseudo_boxes_picture`)."""

    def report(cfg, trained, splits, run_dir):
        subset = detection.labelled_subset(cfg, detection.all_scenes(cfg).train)
        facts = {"method": name, LABELLED: len(subset[LABELLED]), UNLABELLED: len(subset[UNLABELLED]),
                 "labelled_subset": f"assets/{detection.SUBSET_ASSET}", "teacher": cfg.teacher}
        return {**detection.report(cfg, trained, splits, run_dir), **facts, **report_extra(cfg, trained, Path(run_dir))}

    return detection.detection_recipe(name, description, config, model, datasets, report, train_transform)
