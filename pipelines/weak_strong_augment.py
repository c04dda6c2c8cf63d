"""Weak and strong views of semi-supervised training elements (notes-001 §31-32).

Spec: notes-001.md §32 (seed L1071-1076): *weak* = light transforms (flip, shift/crop), *strong*
= RandAugment; issue 17 adds Cutout. Paper defaults (Sohn et al. 2020 §2.3 and its code):

* **weak** = a random shift of up to 12.5 % of the side in each direction (reflect padding), and a
  horizontal flip with probability 0.5 where flips keep the class (off for digits: a mirrored 2
  is no 2). Keras' ``RandomTranslation`` and ``RandomFlip``.
* **strong** = the weak transforms, then Keras core ``RandAugment`` (2 random operations with
  random magnitude, drawn *per image*), then Cutout: Keras core ``RandomErasing`` on every image
  with sides of up to half the image's, filled with grey (127.5).
* Mean Teacher's input noise (Tarvainen & Valpola 2017 §3: different noise for student and
  teacher) is two *independent* weak views.

:func:`semi_supervised_views` maps an element of :mod:`pipelines.semi_supervised`
(``{"labelled": [H, W, C], "unlabelled": [μ, H, W, C]}``) to the three inputs of a train step::

    {"labelled": weak(x_l), "teacher_view": weak(u), "student_view": strong(u) or weak'(u)}

It is a recipe's ``train_element_transform``: the trainer applies it to *training* elements only,
after the per-epoch shuffle, with a stateless seed made of the run seed, the epoch and the
element's position. Every op draws from its own stream of that seed
(:func:`pipelines.random_streams.stream_seed`), so a seed gives the same views, a resumed run the
uninterrupted run's, and validation, test and serving never see any of it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pipelines.augment import SeededRandAugment, StatelessSeeds
from pipelines.random_streams import stream_seed

LABELLED, UNLABELLED = "labelled", "unlabelled"
TEACHER_VIEW, STUDENT_VIEW = "teacher_view", "student_view"
SHIFT = 0.125  # paper default: up to 12.5 % of the side
CUTOUT_SIDE = 0.5  # paper default: Cutout squares of up to half the side
CUTOUT_FILL = 127.5  # grey in 0..255


def weak_layers(flip: bool) -> list[keras.layers.Layer]:
    """The weak transforms: shift, and a horizontal flip when ``flip``."""
    layers = [keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="reflect", name="shift")]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", name="flip"))
    return layers


def strong_layers() -> list[keras.layers.Layer]:
    """RandAugment (Keras' defaults: 2 operations, magnitudes in [0, 0.5]) and Cutout."""
    # RandomErasing draws each side as sqrt(U(scale)) of the image's: up to CUTOUT_SIDE.
    return [
        SeededRandAugment(value_range=(0, 255), name="randaugment"),
        keras.layers.RandomErasing(factor=(1.0, 1.0), scale=(0.0, CUTOUT_SIDE**2), fill_value=CUTOUT_FILL,
                                   value_range=(0, 255), name="cutout"),
    ]


def apply_layers(layers: list[keras.layers.Layer], images: tf.Tensor, seed: tf.Tensor, stream: str) -> tf.Tensor:
    """``images [N, H, W, C]`` through ``layers`` in training mode, each drawing from stream ``stream/<layer>``."""
    for layer in layers:
        draws = StatelessSeeds(stream_seed(seed, f"{stream}/{layer.name}"))
        change = layer.get_random_transformation(images, training=True, seed=draws)
        images = layer.transform_images(images, change, training=True)
    return images


def semi_supervised_views(strong: bool, flip: bool = False, per_image: bool = True):
    """``fn(seed, x, y) -> (views, y)``: the views of one training element (module docstring).

    Args:
        strong: the student's view is strong (FixMatch) or a second weak view (Mean Teacher).
        flip: weak views flip horizontally (off for digits).
        per_image: RandAugment draws its operations for every strong image (paper default), or once
            for the μ images of an element (a batch of B elements still gets B independent draws;
            cheaper: Keras' RandAugment computes all of its operations on every call, so on CPUs
            the per-image calls, not the network, bound a FixMatch step).

    Returns:
        A function of a ``[2]`` int64 stateless seed and an element; ``y`` passes unchanged.

    Example:
        >>> views = semi_supervised_views(strong=True)
        >>> x = {"labelled": tf.zeros([8, 8, 1]), "unlabelled": tf.zeros([3, 8, 8, 1])}
        >>> out, _ = views(tf.constant([1, 2], tf.int64), x, 0)
        >>> {k: tuple(v.shape) for k, v in sorted(out.items())}
        {'labelled': (8, 8, 1), 'student_view': (3, 8, 8, 1), 'teacher_view': (3, 8, 8, 1)}
    """
    weak, heavy = weak_layers(flip), strong_layers()

    def views(seed, x, y):
        labelled, unlabelled = tf.cast(x[LABELLED], tf.float32), tf.cast(x[UNLABELLED], tf.float32)
        student = apply_layers(weak, unlabelled, seed, "student")
        if strong and per_image:
            # One RandAugment call draws one choice of operations for all its images: one call per image.
            student = tf.concat(
                [apply_layers(heavy, student[i : i + 1], seed, f"student_{i}") for i in range(unlabelled.shape[0])], axis=0
            )
        elif strong:
            student = apply_layers(heavy, student, seed, "student_element")
        out = {
            LABELLED: apply_layers(weak, labelled[None], seed, "labelled")[0],
            TEACHER_VIEW: apply_layers(weak, unlabelled, seed, "teacher"),
            STUDENT_VIEW: tf.clip_by_value(student, 0.0, 255.0),
        }
        return {key: tf.ensure_shape(value, (x[LABELLED] if key == LABELLED else x[UNLABELLED]).shape) for key, value in out.items()}, y

    return views
