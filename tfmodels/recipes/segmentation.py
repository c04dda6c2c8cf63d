"""The shared semantic-segmentation recipe layer: data, loss, metrics, serving and report.

Not a registered recipe: ``fcn``, ``unet``, ``deeplab_v1`` .. ``deeplab_v3_plus`` and ``erfnet``
build their :class:`~tfmodels.registry.Recipe` with :func:`segmentation_recipe`, supplying a
config subclass with presets and a builder ``cfg -> keras.Model`` (``images [B, H, W, 3]`` float32
0..255 -> logits ``[B, H, W, C]`` at the input's resolution). Specs: notes-002-part2.md §16
(seed 002 L2200-2229) and issue 14; DESIGN.md "Vision tasks: shared conventions".

Data (:func:`datasets`): :func:`pipelines.segmentation.sources.load` (``embedded`` digit scenes,
``tfds:oxford_iiit_pet``, ``voc:<folder>``, ``folder:<folder>``) as ``(image, class_map)``
pairs. As the notes insist, images are cropped, never resized, so labels are never interpolated:
training images smaller than ``crop_size`` are dropped, and every epoch each training image gets
a fresh seeded ``crop_size`` window (:func:`train_element_transform`, one window for image and
labels). Validation and test images are padded (labels :data:`IGNORE`) to at least
``image_size`` and their centre ``image_size`` window is kept; digit scenes are exactly
``image_size`` (128), so they are evaluated whole.

Loss: per-pixel softmax cross-entropy over the classes, pixels labelled :data:`IGNORE` left out
(``keras.losses.SparseCategoricalCrossentropy(ignore_class=255)``); with ``class_weighting="enet"``
each training pixel is weighted by its class's ENet weight (:func:`class_weights`, a run asset). Metrics: ``mean_iou``
(``keras.metrics.MeanIoU``, the same ignore label) selects the checkpoint; ``pixel_accuracy``.

Serving (:func:`serving`), every step in the graph with core ops:

``serving_default`` takes ``image_bytes`` string ``[B]`` (PNG, JPEG, GIF or BMP, any size, grey or
colour; sizes may differ within a batch). Each image is letterboxed to ``image_size`` (aspect
kept, centred, padded with 0, as detection serves), the network gives logits, the image's part
of them is cut out and resized bilinearly to the original height and width, then softmax and
argmax. ``predict_pixels`` takes float32 pixels ``[B, S, S, 3]`` at the model size. Both return

=======================  ======================  =============================================
``class_map``            int32 [B, H, W]         the most likely class of each pixel of the
                                                 original image; -1 beyond an image smaller
                                                 than the batch's largest (images start at the
                                                 top left)
``class_probabilities``  float32 [B, H, W, C]    softmax over the classes (0 on that padding)
``image_size``           int32 [B, 2]            each image's ``(height, width)``
``class_names``          string [B, C]           the run's class names, the same for each row
=======================  ======================  =============================================

with ``H, W`` the largest height and width of the batch. Logits, not probabilities, are
resized: resizing is linear, so this equals resizing the softmax's input, the usual choice.

Report (:func:`report`): pixel accuracy, mIoU, per-class IoU and the foreground IoU (class 0 against
the rest, classes merged) on the test split from a
:class:`~tfmodels.metrics.segmentation.ConfusionMatrix`; the majority-class baseline (the most
frequent training label everywhere); and ``segmentation.png``: test images, ground truth and
prediction as coloured overlays (VOC's palette).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import images
from pipelines.detection import augment
from pipelines.segmentation import crop, sources
from pipelines.segmentation.crop import IGNORE
from pipelines.segmentation.voc_colormap import classes_to_colors
from pipelines.splits import Splits
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.metrics.segmentation import ConfusionMatrix, PixelAccuracy
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import json_asset


# What every segmenter's ``tiny`` preset shares: a few dozen 64x64 windows, two epochs (the tests).
TINY = {"image_size": 64, "crop_size": 64, "num_scenes": (32, 8, 8), "epochs": 2, "batch_size": 8, "verbose": 2}


@dataclasses.dataclass
class SegmentationConfig(TrainConfig):
    """Settings every segmenter shares; each recipe subclasses it with its network's fields and presets.

    Args:
        image_size: side of the square window validation, test and serving feed the network.
        crop_size: side of the random training crops (images smaller than it are dropped).
        num_scenes: digit scenes in the train / validation / test splits (``embedded``).
        class_weighting: ``none``, or ``enet``: each training pixel's loss weighted by
            ``1 / ln(1.02 + p_c)``, ``p_c`` its class's share of the training pixels (Paszke et
            al. 2016, ENet; ERFNet's training uses it, paper default there), against a background
            that covers most pixels.

    Attributes:
        SIZE_MULTIPLE: the network's input sides must be multiples of it (its output stride).
    """

    image_size: int = 128
    crop_size: int = 96
    num_scenes: tuple[int, ...] = (2000, 200, 200)
    class_weighting: str = "none"
    batch_size: int = 16
    epochs: int = 10
    monitor: str = "val_mean_iou"
    verbose: int = 2

    SIZE_MULTIPLE: ClassVar[int] = 1
    CHOICES: ClassVar[Mapping[str, tuple]] = {**TrainConfig.CHOICES, "class_weighting": ("none", "enet")}
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"tiny": {}, "default": {}, "paper": {}}

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.num_scenes) != 3 or min(self.num_scenes) < 1:
            raise ConfigError(f"num_scenes needs three positive counts (train, validation, test), got {self.num_scenes}")
        for field in ("image_size", "crop_size"):
            value = getattr(self, field)
            if value < 1 or value % self.SIZE_MULTIPLE:
                raise ConfigError(f"{field} must be a positive multiple of {self.SIZE_MULTIPLE} for this network, got {value}")


def class_names(cfg: SegmentationConfig) -> list[str]:
    """The run's classes (``assets/class_names.json``), derived from the data source by a new run."""
    return json_asset(cfg, "class_names.json", lambda: sources.class_names(cfg.data))


def class_frequencies(train: tf.data.Dataset, num_classes: int) -> np.ndarray:
    """Each class's share of the labelled pixels of ``(image, class_map)`` elements, ignored pixels left out."""
    counts = np.zeros(num_classes + 1, np.int64)
    for _, class_map in train.batch(64):
        values = class_map.numpy().ravel()
        counts += np.bincount(np.where(values == IGNORE, num_classes, values), minlength=num_classes + 1)
    return counts[:num_classes] / max(1, counts[:num_classes].sum())


def class_weights(cfg: SegmentationConfig, train: tf.data.Dataset | None = None) -> list[float] | None:
    """ENet's class weights ``1 / ln(1.02 + p_c)`` (``assets/class_weights.json``), or ``None`` when off.

    A new run derives them from its training split (``train``, or the source loaded again).

    Example:
        >>> [round(w, 2) for w in 1 / np.log(1.02 + np.array([0.97, 0.003]))]
        [1.45, 44.95]
    """
    if cfg.class_weighting == "none":
        return None

    def derive():
        split = train if train is not None else sources.load(cfg.data, seed=cfg.data_seed, num_scenes=tuple(cfg.num_scenes)).train
        return (1.0 / np.log(1.02 + class_frequencies(split, len(class_names(cfg))))).tolist()

    return json_asset(cfg, "class_weights.json", derive)


def datasets(cfg: SegmentationConfig) -> Splits:
    """Train (images at least ``crop_size``) and validation / test (centre ``image_size`` windows) splits."""
    names = class_names(cfg)
    splits = sources.load(cfg.data, seed=cfg.data_seed, num_scenes=tuple(cfg.num_scenes))
    if splits.info["class_names"] != names:
        raise ValueError(f"{cfg.data} has the classes {splits.info['class_names']}, the run has {names}")
    window = (cfg.image_size, cfg.image_size)

    def evaluated(image, class_map):
        return crop.centre_window(image, class_map, window)

    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE)
    train = splits.train.filter(crop.at_least((cfg.crop_size, cfg.crop_size)))
    class_weights(cfg, train)  # a new run saves them with its assets
    validation, test = (split.map(evaluated, **parallel) for split in (splits.validation, splits.test))
    return Splits(train, validation, test, {**splits.info, "image_size": cfg.image_size, "crop_size": cfg.crop_size})


def train_element_transform(cfg: SegmentationConfig) -> Callable:
    """``fn(seed, image, class_map)``: the joint random ``crop_size`` window of each training image,
    plus per-pixel loss weights (Keras' ``sample_weight``) when ``class_weighting`` is on."""
    size = (cfg.crop_size, cfg.crop_size)
    weights = class_weights(cfg)

    def apply(seed, image, class_map):
        image, class_map = crop.random_crop(seed, image, class_map, size)
        if weights is None:
            return image, class_map
        table = tf.constant([*weights, 0.0], tf.float32)  # ignored pixels weigh 0
        return image, class_map, tf.gather(table, tf.where(class_map == IGNORE, len(weights), class_map))

    return apply


def compile_args(cfg: SegmentationConfig) -> dict:
    """Per-pixel cross-entropy and the metrics, all leaving out :data:`IGNORE` pixels."""
    num_classes = len(class_names(cfg))
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE),
        "metrics": [
            keras.metrics.MeanIoU(num_classes, name="mean_iou", ignore_class=IGNORE, sparse_y_pred=False),
            PixelAccuracy(IGNORE),
        ],
    }


def _letterboxed(image_bytes: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Decoded images letterboxed to ``size`` ``[B, S, S, 3]``, with each one's top-left corner and
    ``(height, width)`` inside the window, and its original ``(height, width)`` (int32 ``[B, 2]`` each)."""
    pixels, scale, offset, original = augment.decode_letterboxed(image_bytes, size)  # scale, offset in (x, y)
    inner = tf.cast(tf.round(original * tf.reverse(scale, [1])), tf.int32)
    corner = tf.cast(tf.reverse(offset, [1]), tf.int32)
    return pixels, corner, tf.maximum(inner, 1), tf.cast(original, tf.int32)


def _outputs(probabilities: tf.Tensor, hw: tf.Tensor, names: list[str]) -> dict[str, tf.Tensor]:
    """The served outputs of padded probabilities ``[B, H, W, C]`` (zero rows beyond each image)."""
    real = tf.reduce_sum(probabilities, axis=-1) > 0
    class_map = tf.where(real, tf.argmax(probabilities, axis=-1, output_type=tf.int32), -1)
    batch = tf.shape(probabilities)[0]
    return {
        "class_map": class_map,
        "class_probabilities": probabilities,
        "image_size": hw,
        "class_names": tf.tile(tf.constant(names)[None], [batch, 1]),
    }


OUTPUTS = {
    "class_map": "int32 [B, H, W]: the most likely class per pixel of the original image; -1 beyond a smaller image",
    "class_probabilities": "float32 [B, H, W, C]: softmax over the classes per pixel; 0 beyond a smaller image",
    "image_size": "int32 [B, 2]: each image's (height, width)",
    "class_names": "string [B, C]: the run's class names (index = class id)",
}


def serving(cfg: SegmentationConfig, model: keras.Model) -> Serving:
    """``serving_default`` (image bytes, any size) and ``predict_pixels`` (module docstring's table)."""
    names, size = class_names(cfg), cfg.image_size

    def logits(pixels):
        return tf.cast(model(pixels, training=False), tf.float32)

    def from_pixels(pixels):
        hw = tf.tile(tf.constant([[size, size]], tf.int32), [tf.shape(pixels)[0], 1])
        return _outputs(tf.nn.softmax(logits(pixels), axis=-1), hw, names)

    def from_bytes(image_bytes):
        pixels, corner, inner, original = _letterboxed(image_bytes, size)
        largest = tf.reduce_max(original, axis=0)

        def back_to_original(args):
            window_logits, top_left, window_hw, image_hw = args
            cut = window_logits[top_left[0] : top_left[0] + window_hw[0], top_left[1] : top_left[1] + window_hw[1]]
            probabilities = tf.nn.softmax(tf.image.resize(cut, image_hw, method="bilinear"), axis=-1)
            return tf.image.pad_to_bounding_box(probabilities, 0, 0, largest[0], largest[1])

        probabilities = tf.map_fn(
            back_to_original, (logits(pixels), corner, inner, original),
            fn_output_signature=tf.TensorSpec([None, None, len(names)], tf.float32),
        )
        return _outputs(probabilities, original, names)

    return Serving(
        {
            "serving_default": Endpoint(from_bytes, {"image_bytes": tf.TensorSpec([None], tf.string)}, OUTPUTS),
            "predict_pixels": Endpoint(from_pixels, {"pixels": tf.TensorSpec([None, size, size, 3], tf.float32)}, OUTPUTS),
        }
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def serving_examples(cfg: SegmentationConfig, model: keras.Model, test, count: int = 4) -> dict[str, ServingExample]:
    """Test images as PNG bytes and as pixels, with the evaluation path's answers.

    The answers are the model called on the test pipeline's pixels (rounded to 8 bits, as a PNG
    holds them), softmax and argmax in NumPy; test windows are at the model size, so serving's
    letterbox and resize back are the identity on them.
    """
    pixels = next(iter(test.map(lambda image, _: image).batch(count))).numpy()
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.float32)  # what an 8-bit image file holds
    probabilities = _softmax(model(tf.constant(pixels), training=False))
    names = class_names(cfg)
    expected = {
        "class_map": probabilities.argmax(-1).astype(np.int32),
        "class_probabilities": probabilities.astype(np.float32),
        "image_size": np.tile(np.array([[cfg.image_size, cfg.image_size]], np.int32), [len(pixels), 1]),
        "class_names": np.array([[name.encode() for name in names]] * len(pixels), dtype=object),
    }
    encoded = np.array([images.encode_png(p).numpy() for p in pixels], dtype=object)
    return {
        "serving_default": ServingExample({"image_bytes": encoded}, expected),
        "predict_pixels": ServingExample({"pixels": pixels}, expected),
    }


def _overlay(pixels: np.ndarray, class_map: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The image with each non-background pixel tinted by its class's VOC colour."""
    tinted = (1 - alpha) * pixels + alpha * classes_to_colors(class_map)
    return np.where((class_map != 0)[..., None], tinted, pixels).clip(0, 255).astype(np.uint8)


def draw_segmentation(
    pixels: np.ndarray, labels: np.ndarray, predicted: np.ndarray, names: list[str], path: Path, count: int = 6
) -> None:
    """``segmentation.png``: ``count`` test images in columns; rows image | ground truth | prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    count = min(count, len(pixels))
    fig, axes = plt.subplots(3, count, figsize=(2.2 * count, 7.0), squeeze=False)
    for i in range(count):
        rows = (
            ("image", np.clip(pixels[i], 0, 255).astype(np.uint8)),
            ("ground truth", _overlay(pixels[i], labels[i])),
            ("prediction", _overlay(pixels[i], predicted[i])),
        )
        for ax, (title, picture) in zip(axes[:, i], rows):
            ax.imshow(picture)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    colours = classes_to_colors(np.arange(len(names))) / 255.0
    legend = [Patch(color=colours[c], label=name) for c, name in enumerate(names) if c]
    legend.append(Patch(color=classes_to_colors(np.array([IGNORE]))[0] / 255.0, label="ignored"))
    fig.legend(handles=legend, loc="lower center", ncol=min(len(legend), 12), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(cfg: SegmentationConfig, model: keras.Model, splits: Splits, run_dir: Path) -> dict:
    """mIoU, pixel accuracy, per-class and foreground IoU on the test split, the majority baseline, ``segmentation.png``."""
    names = class_names(cfg)
    ours, baseline = ConfusionMatrix(len(names)), ConfusionMatrix(len(names))
    majority = int(class_frequencies(splits.train, len(names)).argmax())
    predict = tf.function(lambda pixels: tf.argmax(model(pixels, training=False), axis=-1, output_type=tf.int32))
    shown: dict[str, np.ndarray] = {}
    for pixels, class_map in splits.test.batch(cfg.batch_size or 16):
        predicted, labels = predict(pixels).numpy(), class_map.numpy()
        ours.update(labels, predicted)
        baseline.update(labels, np.full_like(labels, majority))
        shown = shown or {"pixels": pixels.numpy(), "labels": labels, "predicted": predicted}
    draw_segmentation(shown["pixels"], shown["labels"], shown["predicted"], names, Path(run_dir) / "segmentation.png")
    return {
        "mean_iou": ours.mean_iou(),
        "pixel_accuracy": ours.pixel_accuracy(),
        "foreground_iou": ours.foreground_iou(),
        "per_class_iou": {name: None if np.isnan(iou) else float(iou) for name, iou in zip(names, ours.iou())},
        "majority_baseline": {
            "class": names[majority], "mean_iou": baseline.mean_iou(), "pixel_accuracy": baseline.pixel_accuracy(),
            "foreground_iou": baseline.foreground_iou(),
        },
        "picture": "segmentation.png",
    }


def segmentation_recipe(
    name: str, description: str, config: type[SegmentationConfig], model: Callable[[SegmentationConfig], keras.Model]
) -> Recipe:
    """Registers a segmenter's :class:`~tfmodels.registry.Recipe` with this module's shared parts.

    Args:
        name: the MODEL name.
        description: one line for ``tfmodels list``.
        config: the recipe's :class:`SegmentationConfig` subclass with its presets.
        model: ``cfg -> keras.Model``, images ``[B, H, W, 3]`` float32 0..255 -> logits
            ``[B, H, W, C]`` with ``C = len(class_names(cfg))``.
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
            train_element_transform=train_element_transform,
        )
    )
