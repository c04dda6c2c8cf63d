"""Training-time augmentation with Keras' own preprocessing layers (training batches only).

``notes`` is the notes' S24 training transform, translated from torchvision's units:

=====================================  ==========================================================
torchvision (notes-002 S24, L1625-1634)  here
=====================================  ==========================================================
Resize(224) then RandomCrop(192)        random crop of ``crop_fraction`` (192/224) of the image,
                                        resized back to the model's size (RandomZoom-free crop)
RandomHorizontalFlip()                  RandomFlip("horizontal")
RandomRotation(0.2) = ±0.2 degrees      RandomRotation(0.2 / 360): Keras counts in turns, so the
                                        same number would mean ±72° (the notes' likely intent is
                                        unclear; we keep the literal ±0.2°, spec §D)
ColorJitter(brightness=0.5)             multiply by a factor in [0.5, 1.5] (Keras'
                                        RandomBrightness is additive, so it is not used)
ColorJitter(contrast=0.5)               RandomContrast(0.5): factor in [0.5, 1.5]
ToTensor + Normalize(0.5, 0.5)          inside the model (models take raw 0..255 pixels)
=====================================  ==========================================================

``randaugment`` is Keras' RandAugment; ``mixup`` / ``cutmix`` mix pairs of examples and their
one-hot labels (Keras' MixUp and CutMix layers).

Randomness: every random op (each layer above, the brightness factor, RandAugment, MixUp, CutMix)
draws from its own stream of :mod:`pipelines.random_streams`, a function of (the run seed, the
batch's images, the op's name). The layers get it through ``get_random_transformation(seed=...)``
instead of their own ``SeedGenerator``, whose state would live outside the model and restart when
a killed run resumes. So the same seed and batch give the same output, and a resumed run draws
exactly what the uninterrupted one did; the trainer's per-epoch reshuffle gives new draws every
epoch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pipelines.random_streams import batch_seed, stream_seed

POLICIES = ("none", "notes", "randaugment")


class StatelessSeeds(keras.random.SeedGenerator):
    """A stand-in for a Keras ``SeedGenerator`` without state: draw ``i`` gets ``fold_in(seed, i)``.

    Keras' random ops take a ``SeedGenerator`` (or an int) and call its ``next()`` once per draw;
    this one hands out seeds derived from a tensor, counting draws while the transform is traced,
    so every draw of a layer differs and all are functions of ``seed`` alone.

    Args:
        seed: a ``[2]`` integer stateless seed (e.g. :func:`pipelines.random_streams.stream_seed`).
    """

    def __init__(self, seed: tf.Tensor) -> None:  # no state variable: nothing to save or restore
        self.seed = seed
        self.draws = 0

    def next(self, ordered=True):
        self.draws += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.draws)


class SeededRandAugment(keras.layers.RandAugment):
    """Keras' RandAugment drawing from the ``seed`` of ``get_random_transformation``.

    Keras 3.15's RandAugment ignores that argument and draws from its own ``SeedGenerator``; this
    is its ``get_random_transformation`` with the given seed used for the choice of operations and
    for every operation's parameters.
    """

    def get_random_transformation(self, data, training=True, seed=None):
        if seed is None or not training:
            return super().get_random_transformation(data, training=training)
        transforms = {
            name: getattr(self, name).get_random_transformation(data, training=True, seed=seed)
            for name in self._AUGMENT_LAYERS
        }
        layer_idxes = keras.random.randint((self.num_ops,), 0, len(self._AUGMENT_LAYERS), seed=seed)
        return {"transforms": transforms, "layer_idxes": layer_idxes}


def notes_layers(image_size: tuple[int, int], crop_fraction: float = 192 / 224) -> list:
    """The S24 layers in order; each layer's name is its random stream."""
    crop = (max(1, int(image_size[0] * crop_fraction)), max(1, int(image_size[1] * crop_fraction)))
    return [
        keras.layers.RandomCrop(*crop, name="crop"),
        keras.layers.Resizing(*image_size, name="resize"),
        keras.layers.RandomFlip("horizontal", name="flip"),
        keras.layers.RandomRotation(0.2 / 360.0, name="rotation"),
        keras.layers.RandomContrast(0.5, value_range=(0, 255), name="contrast"),
    ]


def batch_transform(
    policy: str,
    image_size: tuple[int, int],
    mixup: float = 0.0,
    cutmix: float = 0.0,
    seed: int = 0,
):
    """``fn(images [B,H,W,C] 0..255, one_hot_labels [B,K]) -> (images, labels)`` for training.

    A stateless function of (``seed``, the batch): each op draws from its own stream, keyed by the
    batch's images (see the module docstring).

    Args:
        policy: ``none``, ``notes`` (S24) or ``randaugment``.
        mixup: MixUp's Beta(alpha, alpha) parameter; 0 turns it off.
        cutmix: CutMix's Beta parameter; 0 turns it off.
        seed: the run's training seed.

    Example:
        >>> fn = batch_transform("notes", (32, 32))
        >>> x, y = fn(tf.zeros([2, 32, 32, 3]), tf.one_hot([0, 1], 2))
        >>> tuple(x.shape), tuple(y.shape)
        ((2, 32, 32, 3), (2, 2))
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown augmentation {policy!r}; choose one of {', '.join(POLICIES)}")
    layers = []
    if policy == "notes":
        layers = notes_layers(image_size)
    elif policy == "randaugment":
        layers = [SeededRandAugment(value_range=(0, 255), name="randaugment")]
    mixers = []
    if mixup > 0:
        mixers.append(keras.layers.MixUp(alpha=mixup, name="mixup"))
    if cutmix > 0:
        mixers.append(keras.layers.CutMix(factor=cutmix, name="cutmix"))

    def transform(x, y):
        batch = batch_seed(seed, x)  # keyed by the batch as it comes, before any op
        for layer in layers:
            change = layer.get_random_transformation(x, training=True, seed=StatelessSeeds(stream_seed(batch, layer.name)))
            x = layer.transform_images(x, change, training=True)
        if policy == "notes":  # torchvision's multiplicative brightness, factor in [0.5, 1.5]
            factor = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], stream_seed(batch, "brightness"), 0.5, 1.5)
            x = tf.clip_by_value(x * factor, 0.0, 255.0)
        for mixer in mixers:
            draws = StatelessSeeds(stream_seed(batch, mixer.name))
            change = mixer.get_random_transformation({"images": x, "labels": y}, training=True, seed=draws)
            x, y = mixer.transform_images(x, change, training=True), mixer.transform_labels(y, change, training=True)
        return x, y

    return transform
