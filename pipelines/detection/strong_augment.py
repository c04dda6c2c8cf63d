"""The strong, box-aware view of detection images for semi-supervised detectors (STAC, Soft Teacher).

Spec: notes-001.md §33-34 (seed L1077-1090: STAC trains on strongly augmented pseudo-labelled
images, Soft Teacher's student on strong views) and issue 17 ("box-aware versions for detection").
Paper defaults (Sohn et al. 2020, STAC §3.3: a colour transformation, then a geometric one that
moves the boxes, then Cutout; Xu et al. 2021, Soft Teacher §4.1: scale jitter, colour, geometry,
Cutout), built from Keras core layers and the box-aware geometry of :mod:`pipelines.detection.augment`:

1. **geometry**: scale jitter and crop (:func:`pipelines.detection.augment.random_scale_crop`'s
   windows, zoom ``scale_range``), which also translates; boxes, and per-box ``box_weights``, move
   with the pixels, boxes left outside are dropped;
2. **colour**: RandAugment (Keras core) restricted to its colour operations
   (:class:`ColourRandAugment`: brightness, colour degeneration, contrast, sharpness,
   posterization, solarization, auto-contrast, equalization), two per image: its shear,
   translation and rotation are not box-aware there, so the geometry is step 1's;
3. **Cutout**: Keras core ``RandomErasing`` as in the classification strong view
   (:mod:`pipelines.weak_strong_augment`: squares of up to half the side, grey).

Every op draws from its own stream of one ``[2]`` stateless seed, so a seed (a run seed and a
step) gives the same view. Training only: evaluation and serving never see it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pipelines.augment import SeededRandAugment
from pipelines.detection.augment import crop_and_resize, scale_crop_windows
from pipelines.random_streams import stream_seed
from pipelines.weak_strong_augment import CUTOUT_FILL, CUTOUT_SIDE, apply_layers

GEOMETRIC_OPERATIONS = ("random_shear", "random_translation", "random_rotation")
STRONG_SCALE_RANGE = (0.5, 1.5)


class ColourRandAugment(SeededRandAugment):
    """RandAugment's colour operations only (its geometric ones would move pixels without the boxes)."""

    _AUGMENT_LAYERS = [name for name in SeededRandAugment._AUGMENT_LAYERS if name not in GEOMETRIC_OPERATIONS]


def strong_view_fn(scale_range=STRONG_SCALE_RANGE):
    """``fn(batch, seed) -> (view, windows)``: the strong view of a detection batch (module docstring).

    The Keras layers are made once here (they hold seed state Keras requires, unused: every draw
    comes from ``seed``), so ``fn`` can be traced into a train step.

    Args:
        scale_range: zoom range of the scale jitter.

    Returns:
        A function of ``batch`` (``image`` ``[B, S, S, 3]`` in 0..255, ``boxes`` ``[B, N, 4]``,
        ``classes``, ``num_boxes``, optional ``box_weights`` ``[B, N]``) and a ``[2]`` integer
        stateless seed, returning the batch's strong view at the same size (pixels in 0..255) and
        the crop ``windows`` ``[B, 4]`` in the input's pixels
        (:func:`pipelines.detection.augment.boxes_from_window` maps the view's boxes back).

    Example:
        >>> batch = {"image": tf.fill([2, 16, 16, 3], 100.0), "boxes": tf.constant([[[2.0, 2.0, 9.0, 9.0]]] * 2),
        ...          "classes": tf.constant([[3]] * 2), "num_boxes": tf.constant([1, 1])}
        >>> view, windows = strong_view_fn()(batch, tf.constant([0, 1], tf.int64))
        >>> view["image"].shape, windows.shape
        (TensorShape([2, 16, 16, 3]), TensorShape([2, 4]))
    """
    pixel_layers = [
        ColourRandAugment(value_range=(0, 255), name="colour_randaugment"),
        keras.layers.RandomErasing(factor=(1.0, 1.0), scale=(0.0, CUTOUT_SIDE**2), fill_value=CUTOUT_FILL,
                                   value_range=(0, 255), name="cutout"),
    ]

    def strong_view(batch: dict, seed: tf.Tensor) -> tuple[dict, tf.Tensor]:
        shape = tf.shape(batch["image"])
        size = (int(batch["image"].shape[1]), int(batch["image"].shape[2]))
        windows = scale_crop_windows(shape, stream_seed(seed, "strong_scale_crop"), scale_range)
        view = crop_and_resize(batch, windows, size)
        pixels = tf.clip_by_value(view["image"], 0.0, 255.0)
        colour_seed = stream_seed(seed, "strong_pixels")

        def one_image(index):  # one RandAugment call draws one choice of operations: one call per image
            image_seed = tf.random.experimental.stateless_fold_in(colour_seed, index)
            return apply_layers(pixel_layers, pixels[index][None], image_seed, "strong")[0]

        pixels = tf.map_fn(one_image, tf.range(shape[0]), fn_output_signature=tf.float32)
        return {**view, "image": tf.clip_by_value(pixels, 0.0, 255.0)}, windows

    return strong_view
