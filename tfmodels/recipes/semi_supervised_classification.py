"""What the ``mean_teacher`` and ``fixmatch`` recipes share: data, labelled subset, network, serving, report.

Spec: notes-001.md §31-32 and issue 17. A run trains on a seeded labelled subset of the source's
training split (``labels_per_class`` per class; ``--set labels_per_class=10``) and the rest of it
as unlabelled images (:mod:`pipelines.semi_supervised`), with weak and strong views made on
training elements only (:mod:`pipelines.weak_strong_augment`). Validation and test are the
source's own labelled splits, the same as the fully supervised ``mnist_cnn`` run's with the same
``data_seed``, so the four rows of a results table share one test set.

The labelled subset (indices into the training split, their classes, the unlabelled indices) is
written to ``<run>/assets/labelled_subset.json`` during the data stage and read back from there by
every later stage and by a resumed run; a source that no longer has those classes at those
indices is refused.

Backbones: ``mnist_cnn`` (the notes' 8,490-parameter digit CNN, 28x28 grey, pixels normalised
inside with the MNIST statistics: ``DATA=embedded|sklearn:digits|tfds:mnist``) or ``resnet18``
(the zoo's ResNet-18 at ``image_size`` RGB: ``DATA=tfds:cifar10`` and other image sources of
:mod:`pipelines.image_classification`).

Serving: the exported network (teacher / EMA) behind the image classifiers' signatures
(:mod:`tfmodels.recipes.image_serving`): ``serving_default`` (``image_bytes``) and
``predict_pixels``, returning ``probabilities``, ``class_id`` and ``class_name``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import digits, image_classification, images, semi_supervised, weak_strong_augment
from pipelines.splits import Splits
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Serving
from tfmodels.models.mnist_cnn import build_mnist_cnn
from tfmodels.models.resnet import build_resnet18
from tfmodels.recipes.image_serving import image_classifier_examples, image_classifier_serving
from tfmodels.recipes.mnist import PIXEL_RESCALE
from tfmodels.registry import Recipe, register
from tfmodels.training.fit import replica_batches
from tfmodels.training.run_assets import json_asset

SUBSET_ASSET = "labelled_subset.json"


@dataclasses.dataclass
class SemiSupervisedConfig(TrainConfig):
    """Settings of a semi-supervised classification run (``batch_size`` is B, labelled images per step).

    Args:
        labels_per_class: labelled training images of each class (10: issue 17's table).
        mu: μ, unlabelled images per labelled one in a batch.
        num_unlabelled: use only this many unlabelled images (0: all the rest of the training split).
        backbone: ``mnist_cnn`` (digits) or ``resnet18`` (RGB sources at ``image_size``).
        image_size: input side of ``resnet18``.
        width: ``resnet18``'s base channels (64 in the paper).
        flip: weak views flip horizontally (off for digits).
        strong_per_image: RandAugment draws per strong image (paper default) or once per element's
            μ images (:func:`pipelines.weak_strong_augment.semi_supervised_views`).
        pictures: elements shown in ``views.png``.
    """

    labels_per_class: int = 10
    mu: int = 7
    num_unlabelled: int = 0
    backbone: str = "mnist_cnn"
    image_size: int = 32
    width: int = 64
    flip: bool = False
    strong_per_image: bool = True
    pictures: int = 8
    monitor: str = "val_accuracy"

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "backbone": ("mnist_cnn", "resnet18")}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.labels_per_class < 1 or self.mu < 1 or self.num_unlabelled < 0:
            raise ConfigError("labels_per_class and mu must be >= 1, num_unlabelled >= 0")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*digits.IMAGE_SIZE, 1) if self.backbone == "mnist_cnn" else (self.image_size, self.image_size, 3)


def class_names(cfg: SemiSupervisedConfig) -> list[str]:
    """The run's classes (``assets/class_names.json``)."""
    derive = (lambda: list(digits.CLASS_NAMES)) if cfg.backbone == "mnist_cnn" else (lambda: image_classification.class_names(cfg.data))
    return json_asset(cfg, "class_names.json", derive)


def source_splits(cfg: SemiSupervisedConfig) -> Splits:
    """The source's labelled train / validation / test splits at the backbone's input shape."""
    if cfg.backbone == "mnist_cnn":
        return digits.load(cfg.data, seed=cfg.data_seed)
    size = (cfg.image_size, cfg.image_size)
    return image_classification.load(cfg.data, size, seed=cfg.data_seed, run_class_names=class_names(cfg))


def labelled_subset(cfg: SemiSupervisedConfig, train_labels: np.ndarray | None = None) -> dict:
    """The run's labelled subset (``assets/labelled_subset.json``), derived from the training labels once."""

    def derive():
        labels = train_labels if train_labels is not None else semi_supervised.as_arrays(source_splits(cfg).train)[1]
        return semi_supervised.subset_record(labels, cfg.labels_per_class, len(class_names(cfg)), cfg.data_seed, cfg.num_unlabelled)

    return json_asset(cfg, SUBSET_ASSET, derive)


def datasets(cfg: SemiSupervisedConfig) -> Splits:
    splits = source_splits(cfg)
    pixels, labels = semi_supervised.as_arrays(splits.train)
    subset = labelled_subset(cfg, labels)
    return semi_supervised.semi_supervised_splits(splits, pixels, labels, subset, cfg.mu, cfg.data_seed)


def network(cfg: SemiSupervisedConfig) -> keras.Model:
    """The trained classifier: raw pixels in 0..255 → logits."""
    if cfg.backbone == "mnist_cnn":
        return build_mnist_cnn(rescale=PIXEL_RESCALE)
    return build_resnet18(len(class_names(cfg)), cfg.input_shape, width=cfg.width)


def steps_per_epoch(cfg: SemiSupervisedConfig) -> int:
    """Optimizer steps of one epoch, as the trainer will take them under the current strategy."""
    subset = labelled_subset(cfg)
    elements = max(math.ceil(len(subset["unlabelled"]) / cfg.mu), len(subset["labelled"]))
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return replica_batches(elements, cfg.batch_size * replicas or elements, replicas)[1] * cfg.repeats_per_epoch


def compile_args(cfg: SemiSupervisedConfig) -> dict:
    return {"loss": None, "metrics": []}  # the models' train_step / test_step own their losses and metrics


def serving(cfg: SemiSupervisedConfig, trained: keras.Model) -> Serving:
    shape = cfg.input_shape
    return image_classifier_serving(lambda pixels: trained(pixels, training=False), shape[:2], shape[2], class_names(cfg))


def serving_examples(cfg: SemiSupervisedConfig, trained: keras.Model, test: tf.data.Dataset):
    return image_classifier_examples(lambda pixels: trained(pixels, training=False), test, class_names(cfg))


def views_picture(cfg: SemiSupervisedConfig, train: tf.data.Dataset, strong: bool, path: Path) -> None:
    """``views.png``: per training element, the first unlabelled image, its teacher view and its student view."""
    views = weak_strong_augment.semi_supervised_views(strong=strong, flip=cfg.flip, per_image=cfg.strong_per_image)
    rows = [[], [], []]
    for position, (x, y) in enumerate(train.take(cfg.pictures)):
        seen, _ = views(tf.constant([cfg.seed, position], tf.int64), x, y)
        for row, image in zip(rows, (x["unlabelled"][0], seen["teacher_view"][0], seen["student_view"][0])):
            row.append(image.numpy())
    path.write_bytes(images.encode_png(images.image_grid([np.stack(row) for row in rows], scale=3)).numpy())


def report(cfg: SemiSupervisedConfig, splits: Splits, run_dir: Path, strong: bool) -> dict[str, Any]:
    """The run's data facts and ``views.png`` (rows: unlabelled image | teacher view | student view)."""
    views_picture(cfg, splits.train, strong, Path(run_dir) / "views.png")
    subset = labelled_subset(cfg)
    return {
        "labelled": len(subset["labelled"]),
        "unlabelled": len(subset["unlabelled"]),
        "labels_per_class": cfg.labels_per_class,
        "mu": cfg.mu,
        "labelled_subset": f"assets/{SUBSET_ASSET}",
        "picture": "views.png",
    }


def register_recipe(name: str, description: str, config: type[SemiSupervisedConfig], model, strong: bool, baseline: str) -> Recipe:
    """Registers a semi-supervised classification recipe around ``model(cfg)``.

    Args:
        name, description: the MODEL name and its ``tfmodels list`` line.
        config: the recipe's config class.
        model: ``cfg -> keras.Model`` (a :class:`~tfmodels.models.semi_supervised_classifier.SemiSupervisedClassifier`).
        strong: the student's views are strong (FixMatch) or a second weak view (Mean Teacher).
        baseline: the config field whose 0 turns the run into the supervised-only baseline.
    """

    def recipe_report(cfg, trained, splits, run_dir):
        method = f"supervised-only ({baseline}=0)" if getattr(cfg, baseline) == 0 else name
        return {"method": method, **report(cfg, splits, run_dir, strong)}

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
            report=recipe_report,
            train_element_transform=lambda cfg: weak_strong_augment.semi_supervised_views(
                strong=strong, flip=cfg.flip, per_image=cfg.strong_per_image
            ),
        )
    )
