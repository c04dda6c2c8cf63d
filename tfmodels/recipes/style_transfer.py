"""``style_transfer``: neural style transfer (notes-002-part2 §19) on the one trainer; the image is the product.

Spec: notes-002-part2.md §19 (seed 002 L2389–2441); the model, losses, layer mapping and feature
units are :mod:`tfmodels.models.style_transfer`'s. The synthesised image, initialised as the
content image, is the only trainable weight of :class:`~tfmodels.models.style_transfer.StyleTransfer`,
whose ``train_step`` takes one Adam step on it; the frozen VGG-19's weights never change.

Images: ``content`` and ``style`` are ``sklearn:china.jpg`` and ``sklearn:flower.jpg`` by default
(scikit-learn's sample images, offline), or any image file: ``--set content=photo.jpg --set
style=painting.png`` (a missing or unreadable file stops the run with the reason). Both are resized
to ``image_height × image_width`` (d2l's ``preprocess`` resizes too) and written into the run as
``assets/content.png`` and ``assets/style.png`` during the data stage, so the run is self-contained:
the report, ``evaluate`` and ``export`` read them there.

Features: ``weights=none`` (the offline default) uses a VGG-19 that is **not pretrained**: random
He-normal features. That is random-feature style transfer — textures from random CNN features are
a published result (Ustyuzhaninov et al. 2016, "Texture synthesis using shallow convolutional
networks with random filters") — so the result is weaker than with ImageNet features, not broken;
the run says so when it builds the model and in its report. ``--set weights=imagenet`` (online,
downloads keras.applications.VGG19's weights once) is the notes' pretrained network; the ``paper``
preset uses it. Random features have no natural scale (a gain g on every feature multiplies the
style loss by g⁴ and the content loss by g²), so d2l's weights, tuned on ImageNet features, do not
carry over: with them the TV term dominates and the result is a flattened, blurred content image.
The random-feature presets (``tiny``, ``default``) use style weight 1e5 and TV weight 1
(:data:`RANDOM_FEATURE_WEIGHTS`), picked by eye from (1e3, 10), (1e5, 10), (1e5, 1) and (1e6, 1)
after 150 steps at 80×120: the first two flatten the picture, the last adds noise. ``paper`` keeps
d2l's (1, 1e3, 10).

Data: the trainer's data are step markers (one constant example per split): an "epoch" is
``repeats_per_epoch`` Adam steps on the image, so d2l's ``StepLR(step=50, gamma=0.8)`` is
``lr_schedule=step`` with one 50-step epoch per decay. Validation and test evaluate the current
image: ``loss`` (the weighted total), ``content_loss``, ``style_loss``, ``tv_loss`` (weighted parts);
the best epoch by ``val_loss`` is kept.

Report (``metrics.json``) and pictures (in the run folder): ``stylized.png`` (the result at
``image_height × image_width``, d2l's ``postprocess``: clamped), ``style_transfer.png`` (content |
style | result), and the losses at the start (the content image, step 0: content loss 0) and of
the final image.

Export: the image is the product and lives in the run folder; the SavedModel holds the run's
*objective*. ``serving_default`` takes ``image_bytes`` string [B] (PNG, JPEG, GIF or BMP, any
size; resized bilinearly to the run's image size in the graph, core ops) and returns float32 [B]
``loss``, ``content_loss``, ``style_loss`` and ``tv_loss``: how well each image matches this run's
content and style targets, as training measured it. Its examples are the run's content, style and
stylised images as PNG.

Presets ([REF d2l], §19: VGG-19 layers style 0/5/10/19/28, content 25; weights 1/1e3/10; Adam 0.3,
500 steps, ×0.8 every 50 steps; 300×450 images):

* ``tiny``: 32×48 images, a slim VGG-19 (channels / 8, same layers), 20 steps at lr 0.05 (§19's
  tiny CPU config), the random-feature loss weights; seconds.
* ``default``: d2l's settings at 150×225 (half of d2l's sides, a quarter of the pixels) and 300
  steps, so a CPU finishes in minutes (about 9 on two shared cores); random features (offline),
  with the random-feature loss weights.
* ``paper``: d2l's settings in full, 300×450 and 500 steps, with ImageNet VGG-19 (online) — the
  notes' reference, "paper default". (Gatys et al. 2016 themselves used content layer conv4_2,
  L-BFGS and average pooling: ``--set content_layers=block4_conv2`` gives their content layer.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import images, sources
from pipelines.sources import DataSourceError
from pipelines.splits import Splits
from tfmodels.config import TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.models.style_transfer import CONTENT_LAYERS, STYLE_LAYERS, StyleTransfer, build_vgg19_extractor
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import run_asset

RANDOM_FEATURES_NOTE = (
    "VGG-19 is not pretrained (weights=none, offline): this is random-feature style transfer "
    "(He-normal random features; textures from random CNN features: Ustyuzhaninov et al. 2016), "
    "weaker than with ImageNet features. --set weights=imagenet (online) loads keras.applications' VGG-19."
)
SKLEARN_IMAGES = ("china.jpg", "flower.jpg")
# Loss weights of the random-feature presets (module docstring, "Features"): d2l's (1, 1e3, 10) were
# tuned on ImageNet features; on random ones the style term is too light to show.
RANDOM_FEATURE_WEIGHTS = {"style_weight": 1e5, "tv_weight": 1.0}


@dataclasses.dataclass
class StyleTransferConfig(TrainConfig):
    """``style_transfer`` config (notes-002-part2 §19; defaults are d2l's, [REF d2l]).

    Args:
        content: the content image: ``sklearn:china.jpg`` / ``sklearn:flower.jpg`` or a file path.
        style: the style image, the same way.
        image_height, image_width: the size both images are resized to, and the result's (d2l: 300×450).
        weights: ``none`` (random VGG-19 features, offline) or ``imagenet`` (online).
        width_divisor: divides VGG-19's channels (a slim extractor for tests; ``imagenet`` needs 1).
        style_layers: Keras VGG-19 layer names of the style features (d2l's indices 0, 5, 10, 19, 28).
        content_layers: the content layer names (d2l's index 25: ``block4_conv4``).
        content_weight, style_weight, tv_weight: the loss weights (d2l: 1, 1e3, 10).
    """

    content: str = "sklearn:china.jpg"
    style: str = "sklearn:flower.jpg"
    image_height: int = 300
    image_width: int = 450
    weights: str = "none"
    width_divisor: int = 1
    style_layers: tuple[str, ...] = STYLE_LAYERS
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    content_weight: float = 1.0
    style_weight: float = 1e3
    tv_weight: float = 10.0
    epochs: int = 10
    batch_size: int = 1
    repeats_per_epoch: int = 50
    learning_rate: float = 0.3
    lr_schedule: str = "step"
    lr_gamma: float = 0.8
    lr_step_epochs: int = 1

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"image_height": 32, "image_width": 48, "width_divisor": 8, "epochs": 2, "repeats_per_epoch": 10,
                 "learning_rate": 0.05, **RANDOM_FEATURE_WEIGHTS, "verbose": 0},
        "default": {"image_height": 150, "image_width": 225, "epochs": 6, **RANDOM_FEATURE_WEIGHTS, "verbose": 2},
        "paper": {"weights": "imagenet", "verbose": 2},
    }
    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "weights": ("none", "imagenet")}


def read_image(spec: str, key: str) -> np.ndarray:
    """The image a ``content``/``style`` setting names, as uint8 RGB ``[H, W, 3]``.

    Args:
        spec: ``sklearn:<name>`` (scikit-learn's sample images) or a path to a PNG, JPEG, GIF or BMP.
        key: the setting's name, for the error message.

    Raises:
        DataSourceError: an unknown sample image, a missing file or one that is not a readable image.

    Example:
        >>> read_image("sklearn:china.jpg", "content").shape
        (427, 640, 3)
    """
    kind, _, name = spec.partition(":")
    if kind == "sklearn":
        if name not in SKLEARN_IMAGES:
            raise DataSourceError(f"{key}={spec!r}: scikit-learn's sample images are {', '.join(f'sklearn:{n}' for n in SKLEARN_IMAGES)}")
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DataSourceError(f"{key}={spec!r}: no such image file")
    try:
        return tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError as err:
        raise DataSourceError(f"{key}={spec!r} is not a readable image (PNG, JPEG, GIF or BMP): {err.message.splitlines()[0]}") from None


def run_images(cfg: StyleTransferConfig) -> tuple[np.ndarray, np.ndarray]:
    """The content and style images as float32 pixels ``[image_height, image_width, 3]`` (integer values 0..255).

    Resized (bilinear, antialiased) and saved as the run's ``assets/content.png`` and
    ``assets/style.png`` during the data stage; read back from there afterwards.
    """
    size = (cfg.image_height, cfg.image_width)

    def asset(key: str) -> np.ndarray:
        def derive() -> np.ndarray:
            resized = tf.image.resize(read_image(getattr(cfg, key), key), size, method="bilinear", antialias=True)
            return images.encode_png(resized).numpy()

        png = run_asset(cfg, f"{key}.png", derive, save=lambda value, path: path.write_bytes(value), load=lambda path: path.read_bytes())
        return tf.cast(tf.io.decode_png(png, channels=3), tf.float32).numpy()

    return asset("content"), asset("style")


def datasets(cfg: StyleTransferConfig) -> Splits:
    """One step marker per split (the images are the model's constants); reads the images first, so a bad file fails here."""
    sources.parse(cfg.data, ("embedded",))
    run_images(cfg)

    def marker() -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((np.zeros(1, np.float32), np.zeros(1, np.float32)))

    return Splits(marker(), marker(), marker(), {
        "source": f"content {cfg.content}, style {cfg.style} at {cfg.image_height}x{cfg.image_width} (step markers)",
        "sizes": {"train": 1, "validation": 1, "test": 1},
    })


def model(cfg: StyleTransferConfig) -> StyleTransfer:
    """The extractor (VGG-19 up to the deepest chosen layer) and the image, targets set from the run's images."""
    if cfg.weights == "none":
        print(f"Note: {RANDOM_FEATURES_NOTE}")
    extractor = build_vgg19_extractor(
        (cfg.image_height, cfg.image_width), [*cfg.style_layers, *cfg.content_layers], cfg.width_divisor,
        None if cfg.weights == "none" else cfg.weights,
    )
    net = StyleTransfer(extractor, len(cfg.style_layers), cfg.content_weight, cfg.style_weight, cfg.tv_weight)
    net.set_targets(*run_images(cfg))
    return net


def compile_args(cfg: StyleTransferConfig) -> dict:
    """Nothing: ``StyleTransfer`` computes and logs its own losses (the trainer adds the optimizer)."""
    return {}


def _losses(net: StyleTransfer, normalised: tf.Tensor) -> dict[str, float]:
    return {key: float(value[0]) for key, value in net.objective(normalised).items()}


def plot_strip(content: np.ndarray, style: np.ndarray, result: np.ndarray, title: str, path: Path) -> None:
    """content | style | result, side by side (pixels 0..255)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, picture, name in zip(axes, (content, style, result), ("content", "style", "result")):
        ax.imshow(picture.astype(np.uint8))
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(cfg: StyleTransferConfig, net: StyleTransfer, splits, run_dir) -> dict:
    """Writes ``stylized.png`` and ``style_transfer.png``; returns the start and final losses."""
    run_dir = Path(run_dir)
    content, style = run_images(cfg)
    result = np.round(net.stylized_pixels().numpy())
    stylized_path, strip_path = run_dir / "stylized.png", run_dir / "style_transfer.png"
    stylized_path.write_bytes(images.encode_png(result).numpy())
    features = RANDOM_FEATURES_NOTE if cfg.weights == "none" else "ImageNet VGG-19 features (keras.applications)"
    plot_strip(content, style, result, f"{cfg.content} in the style of {cfg.style}; {features.split(':')[0]}", strip_path)
    return {
        "start": _losses(net, net.normalise(content[None])),  # step 0: the image is the content image
        "final": _losses(net, net.image),
        "features": features,
        "stylized": str(stylized_path),
        "strip": str(strip_path),
    }


def serving(cfg: StyleTransferConfig, net: StyleTransfer) -> Serving:
    """``serving_default``: encoded images -> this run's losses for each (see the module docstring)."""

    def score(image_bytes):
        losses = net(images.decode_batch(image_bytes, net.image_size, 3), training=False)
        return {key: tf.cast(value, tf.float32) for key, value in losses.items()}

    outputs = {
        "loss": "float32 [B]: the run's weighted total loss of each image",
        "content_loss": "float32 [B]: weighted squared error to the content image's features",
        "style_loss": "float32 [B]: weighted squared error to the style image's Gram matrices",
        "tv_loss": "float32 [B]: weighted total variation",
    }
    return Serving({"serving_default": Endpoint(score, {"image_bytes": tf.TensorSpec([None], tf.string)}, outputs)})


def serving_examples(cfg: StyleTransferConfig, net: StyleTransfer, test) -> dict[str, ServingExample]:
    """The run's content, style and stylised images as PNG, with the model's losses of their pixels."""
    pixels = np.stack([*run_images(cfg), np.round(net.stylized_pixels().numpy())]).astype(np.float32)
    expected = {key: np.asarray(value, np.float32) for key, value in net(tf.constant(pixels)).items()}
    encoded = np.array([images.encode_png(p).numpy() for p in pixels], dtype=object)
    return {"serving_default": ServingExample({"image_bytes": encoded}, expected)}


RECIPE = register(
    Recipe(
        name="style_transfer",
        description="neural style transfer: the image is the one trainable weight, VGG-19 content/Gram/TV losses (notes-002-part2 §19)",
        config=StyleTransferConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
