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
"""

from __future__ import annotations

import keras
import tensorflow as tf

POLICIES = ("none", "notes", "randaugment")


def notes_layers(image_size: tuple[int, int], crop_fraction: float = 192 / 224, seed: int = 0) -> list:
    crop = (max(1, int(image_size[0] * crop_fraction)), max(1, int(image_size[1] * crop_fraction)))
    return [
        keras.layers.RandomCrop(*crop, seed=seed),
        keras.layers.Resizing(*image_size),
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.2 / 360.0, seed=seed),
        keras.layers.RandomContrast(0.5, value_range=(0, 255), seed=seed),
    ]


def batch_transform(
    policy: str,
    image_size: tuple[int, int],
    mixup: float = 0.0,
    cutmix: float = 0.0,
    seed: int = 0,
):
    """``fn(images [B,H,W,C] 0..255, one_hot_labels [B,K]) -> (images, labels)`` for training.

    Args:
        policy: ``none``, ``notes`` (S24) or ``randaugment``.
        mixup: MixUp's Beta(alpha, alpha) parameter; 0 turns it off.
        cutmix: CutMix's Beta parameter; 0 turns it off.

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
        layers = notes_layers(image_size, seed=seed)
    elif policy == "randaugment":
        layers = [keras.layers.RandAugment(value_range=(0, 255), seed=seed)]
    mixers = []
    if mixup > 0:
        mixers.append(keras.layers.MixUp(alpha=mixup, seed=seed))
    if cutmix > 0:
        mixers.append(keras.layers.CutMix(factor=cutmix, seed=seed))

    def transform(x, y):
        for layer in layers:
            x = layer(x, training=True)
        if policy == "notes":  # torchvision's multiplicative brightness, factor in [0.5, 1.5]
            factor = tf.random.uniform([tf.shape(x)[0], 1, 1, 1], 0.5, 1.5)
            x = tf.clip_by_value(x * factor, 0.0, 255.0)
        for mixer in mixers:
            mixed = mixer({"images": x, "labels": y}, training=True)
            x, y = mixed["images"], mixed["labels"]
        return x, y

    return transform
