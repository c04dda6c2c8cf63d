"""Box-aware geometry for detection elements: flips, scale-jitter crops and resizing to the model.

Every function takes a detection element (``image`` ``[H, W, 3]``, ``boxes`` ``[N, 4]`` corner
boxes ``[xmin, ymin, xmax, ymax]`` in float pixels of the image, ``classes`` ``[N]`` with -1 on
padding, ``num_boxes``, optional ``masks`` ``[N, H, W]`` and optional per-box ``box_weights``
``[N]``) or a batch of them (one more leading axis on each), moves image, boxes and masks together
(box weights stay with their boxes), and leaves other keys untouched. Core
TensorFlow ops only, so the same code runs in ``tf.data``, under ``tf.function`` with unknown
batch and box counts, and (for :func:`resize` and :func:`boxes_to_original`) in a served graph.

Coordinates are pixel corners: pixel column ``j`` spans ``[j, j+1)``, so its centre is
``j + 0.5``, the convention of ``tf.image.resize`` (half-pixel centres). A crop window and a resize
therefore map boxes by the same affine map as pixels, exactly.

Training randomness follows :mod:`pipelines.random_streams`: :func:`batch_transform` keys each op
by (run seed, the batch's images, the op's name), so a resumed run draws what an uninterrupted
one did. The random ops also take an explicit ``[2]`` stateless seed.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from pipelines import images
from pipelines.detection.boxes import box_area, clip_boxes
from pipelines.random_streams import batch_seed, stream_seed

ELEMENT_KEYS = ("image", "boxes", "classes", "num_boxes", "masks", "box_weights")


def _batched(transform):
    """Lets ``transform`` (written for batches) take an unbatched element too: a batch of one."""

    @functools.wraps(transform)
    def run(element, *args, **kwargs):
        if element["image"].shape.rank == 4:
            return transform(element, *args, **kwargs)
        batch = {key: value[None] if key in ELEMENT_KEYS else value for key, value in element.items()}
        result = transform(batch, *args, **kwargs)
        first = result if isinstance(result, dict) else result[0]
        unbatched = {key: value[0] if key in ELEMENT_KEYS else value for key, value in first.items()}
        return unbatched if isinstance(result, dict) else (unbatched, *(extra[0] for extra in result[1:]))

    return run


def _valid(element: dict) -> tf.Tensor:
    """``[B, N]`` True on the rows that hold objects."""
    rows = tf.range(tf.shape(element["boxes"])[-2])
    return rows[None, :] < tf.cast(element["num_boxes"], tf.int32)[:, None]


def _xyxy(pair: tf.Tensor) -> tf.Tensor:
    """``[B, 2]`` (x, y) -> ``[B, 1, 4]`` (x, y, x, y), to scale or shift ``[B, N, 4]`` boxes."""
    return tf.tile(pair, [1, 2])[:, None, :]


def _channels_last(masks: tf.Tensor, op) -> tf.Tensor:
    """Applies an image ``op`` to ``[B, N, H, W]`` masks, treating the N masks as channels."""
    result = op(tf.transpose(masks, [0, 2, 3, 1]))
    return tf.cast(tf.transpose(result, [0, 3, 1, 2]), masks.dtype)


def _keep_boxes(element: dict, keep: tf.Tensor) -> dict:
    """Moves the rows where ``keep`` ``[B, N]`` holds to the front (in order) and pads the rest."""
    order = tf.argsort(tf.cast(tf.logical_not(keep), tf.int32), axis=-1, stable=True)
    kept = tf.gather(keep, order, batch_dims=1)
    result = {
        **element,
        "boxes": tf.where(kept[..., None], tf.gather(element["boxes"], order, batch_dims=1), 0.0),
        "classes": tf.where(kept, tf.gather(element["classes"], order, batch_dims=1), -1),
        "num_boxes": tf.reduce_sum(tf.cast(keep, element["num_boxes"].dtype), axis=-1),
    }
    if "box_weights" in element:
        result["box_weights"] = tf.where(kept, tf.gather(element["box_weights"], order, batch_dims=1), 0.0)
    if "masks" in element:
        masks = tf.gather(element["masks"], order, batch_dims=1)
        result["masks"] = masks * tf.cast(kept, masks.dtype)[..., None, None]
    return result


@_batched
def flip_horizontal(element: dict) -> dict:
    """Mirrors images, boxes and masks left to right: ``x -> width - x``.

    Args:
        element: a detection element or batch (module docstring).

    Returns:
        The mirrored element; a box ``[x0, y0, x1, y1]`` becomes ``[W - x1, y0, W - x0, y1]``,
        padding rows stay 0.

    Example:
        >>> element = {"image": tf.zeros([4, 10, 3]), "boxes": tf.constant([[1.0, 0.0, 3.0, 2.0]]),
        ...            "classes": tf.constant([0]), "num_boxes": tf.constant(1)}
        >>> flip_horizontal(element)["boxes"].numpy().tolist()
        [[7.0, 0.0, 9.0, 2.0]]
    """
    boxes = element["boxes"]
    width = tf.cast(tf.shape(element["image"])[2], boxes.dtype)
    mirrored = tf.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], axis=-1)
    result = {**element, "image": tf.reverse(element["image"], [2])}
    result["boxes"] = tf.where(_valid(element)[..., None], mirrored, tf.zeros_like(boxes))
    if "masks" in element:
        result["masks"] = tf.reverse(element["masks"], [3])
    return result


@_batched
def random_flip(element: dict, seed: tf.Tensor, probability: float = 0.5) -> dict:
    """Mirrors each example (:func:`flip_horizontal`) with ``probability``, drawn from ``seed``.

    Args:
        element: a detection element or batch.
        seed: a ``[2]`` integer stateless seed.
        probability: chance that an example is mirrored.

    Returns:
        The element, each example flipped or not.
    """
    flip = tf.random.stateless_uniform([tf.shape(element["image"])[0]], seed) < probability
    flipped = flip_horizontal(element)
    result = dict(element)
    for key in ELEMENT_KEYS:
        if key in element:
            choice = tf.reshape(flip, [-1] + [1] * (element[key].shape.rank - 1))
            result[key] = tf.where(choice, flipped[key], element[key])
    return result


def _sample_span(start: tf.Tensor, end: tf.Tensor, samples: int, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``crop_and_resize``'s normalised (first, last) sample of one axis for a pixel-corner window.

    ``crop_and_resize`` samples at ``first * (size - 1) + i * (last - first) * (size - 1) /
    (samples - 1)`` in pixel-index units (pixel ``j``'s centre is ``j``); the centre of output
    pixel ``i`` of window ``[start, end)`` lies at ``start + (i + 0.5) * step - 0.5`` there.
    """
    step = (end - start) / samples
    first = start + 0.5 * step - 0.5
    last = first + (samples - 1) * step
    denominator = tf.maximum(tf.cast(size, tf.float32) - 1.0, 1.0)  # a 1-pixel axis has no extent
    return first / denominator, last / denominator


@_batched
def crop_and_resize(element: dict, window: tf.Tensor, output_size: tuple[int, int], fill: float = 0.0) -> dict:
    """Cuts ``window`` out of each image and resizes it to ``output_size`` (bilinear), with boxes.

    Boxes are mapped like the pixels, clipped to the output, and boxes left empty (outside the
    window) are removed: the remaining rows move up and ``num_boxes`` shrinks. Masks are sampled
    at the same points (nearest neighbour).

    Args:
        element: a detection element or batch.
        window: ``[4]`` or ``[B, 4]`` corner box ``[x0, y0, x1, y1]`` in pixels of the image; it
            may reach outside the image, which is filled with ``fill``.
        output_size: ``(height, width)`` of the result.
        fill: pixel value outside the image.

    Returns:
        The cropped element.

    Example:
        >>> element = {"image": tf.zeros([8, 8, 3]), "boxes": tf.constant([[4.0, 4.0, 8.0, 6.0]]),
        ...            "classes": tf.constant([1]), "num_boxes": tf.constant(1)}
        >>> crop_and_resize(element, [2.0, 2.0, 6.0, 6.0], (8, 8))["boxes"].numpy().tolist()
        [[4.0, 4.0, 8.0, 8.0]]
    """
    image = element["image"]
    batch, height, width = tf.unstack(tf.shape(image)[:3])
    window = tf.broadcast_to(tf.reshape(tf.cast(window, tf.float32), [-1, 4]), tf.stack([batch, 4]))
    x0, y0, x1, y1 = tf.unstack(window, axis=-1)
    top, bottom = _sample_span(y0, y1, output_size[0], height)
    left, right = _sample_span(x0, x1, output_size[1], width)
    crops = tf.stack([top, left, bottom, right], axis=-1)

    def sample(pixels, method="bilinear", value=fill):
        indices = tf.range(batch)
        return tf.image.crop_and_resize(pixels, crops, indices, output_size, method=method, extrapolation_value=value)

    result = {**element, "image": sample(tf.cast(image, tf.float32))}
    if "masks" in element:
        result["masks"] = _channels_last(element["masks"], lambda masks: sample(masks, "nearest", 0.0))
    scale = tf.stack([output_size[1] / (x1 - x0), output_size[0] / (y1 - y0)], axis=-1)
    boxes = (element["boxes"] - _xyxy(tf.stack([x0, y0], axis=-1))) * _xyxy(scale)
    result["boxes"] = clip_boxes(boxes, output_size)
    return _keep_boxes(result, _valid(element) & (box_area(result["boxes"]) > 0))


@_batched
def random_scale_crop(
    element: dict, seed: tf.Tensor, output_size: tuple[int, int], scale_range=(0.5, 2.0), fill: float = 0.0
) -> dict:
    """Scale jitter and random crop: a random window of each image resized to ``output_size``.

    Each example draws a zoom factor ``s`` log-uniformly from ``scale_range`` (zooming in and
    out equally often) and a window of ``1/s`` times the image's size at a uniform position:
    inside the image when ``s > 1``, around it (filled with ``fill``) when ``s < 1``. Use it
    after :func:`resize` to the model size, with ``output_size`` the model size.

    Args:
        element: a detection element or batch.
        seed: a ``[2]`` integer stateless seed.
        output_size: ``(height, width)`` of the result.
        scale_range: smallest and largest zoom factor.
        fill: pixel value outside the image.

    Returns:
        The element after :func:`crop_and_resize` with the drawn windows.
    """
    return crop_and_resize(element, scale_crop_windows(tf.shape(element["image"]), seed, scale_range), output_size, fill)


def scale_crop_windows(image_shape: tf.Tensor, seed: tf.Tensor, scale_range=(0.5, 2.0)) -> tf.Tensor:
    """The windows :func:`random_scale_crop` cuts: ``[B, 4]`` corner boxes in pixels of the images.

    Args:
        image_shape: ``[B, H, W, C]`` of the batch.
        seed: a ``[2]`` integer stateless seed.
        scale_range: smallest and largest zoom factor.

    Example:
        >>> windows = scale_crop_windows(tf.constant([2, 8, 8, 3]), tf.constant([0, 1]), (1.0, 1.0))
        >>> windows.numpy().tolist()
        [[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0]]
    """
    size = tf.cast(tf.stack([image_shape[2], image_shape[1]]), tf.float32)  # (width, height)
    draws = tf.random.stateless_uniform(tf.stack([image_shape[0], 3]), seed)
    low, high = tf.math.log(float(scale_range[0])), tf.math.log(float(scale_range[1]))
    zoom = tf.exp(low + (high - low) * draws[:, :1])
    window_size = size / zoom
    origin = (size - window_size) * draws[:, 1:]  # between 0 and size - window_size, either sign
    return tf.concat([origin, origin + window_size], axis=-1)


def boxes_from_window(boxes: tf.Tensor, windows: tf.Tensor, output_size: tuple[int, int]) -> tf.Tensor:
    """Boxes ``[B, N, 4]`` of :func:`crop_and_resize`'s output mapped back to the cropped images' pixels.

    The inverse of the crop's affine map, for windows ``[B, 4]`` (e.g. a teacher that saw the
    image before the crop scores a student's boxes after it).

    Example:
        >>> boxes_from_window(tf.constant([[[4.0, 4.0, 8.0, 8.0]]]), tf.constant([[2.0, 2.0, 6.0, 6.0]]), (8, 8)).numpy().tolist()
        [[[4.0, 4.0, 6.0, 6.0]]]
    """
    origin, extent = windows[:, :2], windows[:, 2:] - windows[:, :2]
    scale = extent / tf.constant([float(output_size[1]), float(output_size[0])])
    return boxes * _xyxy(scale) + _xyxy(origin)


@_batched
def resize(
    element: dict, size: tuple[int, int], letterbox: bool = True, fill: float = 0.0
) -> tuple[dict, tf.Tensor, tf.Tensor]:
    """Resizes images to the model's ``size``: letterboxed (aspect kept, centred, padded) or stretched.

    Antialiased bilinear resizing (``tf.image.resize``), nearest neighbour for masks. Boxes map as
    ``box * scale + offset``; :func:`boxes_to_original` maps predictions back.

    Args:
        element: a detection element or batch (all images of a batch share one size).
        size: ``(height, width)`` of the model input.
        letterbox: keep the aspect ratio and pad with ``fill``; ``False`` stretches.
        fill: value of the padding.

    Returns:
        ``(element, scale, offset)``: ``scale`` and ``offset`` are ``[2]`` (``[B, 2]`` for a
        batch) in (x, y) order.

    Example:
        >>> element = {"image": tf.zeros([60, 128, 3]), "boxes": tf.constant([[10.0, 0.0, 20.0, 60.0]]),
        ...            "classes": tf.constant([0]), "num_boxes": tf.constant(1)}
        >>> resized, scale, offset = resize(element, (64, 64))
        >>> resized["boxes"].numpy().tolist(), scale.numpy().tolist(), offset.numpy().tolist()
        ([[5.0, 17.0, 10.0, 47.0]], [0.5, 0.5], [0.0, 17.0])
    """
    shape = tf.shape(element["image"])
    source = tf.cast(shape[1:3], tf.float32)  # (height, width)
    target = tf.constant(size, tf.float32)
    fitted = source * tf.reduce_min(target / source) if letterbox else target
    resized_hw = tf.cast(tf.clip_by_value(tf.round(fitted), 1.0, target), tf.int32)
    pad_hw = (tf.constant(size, tf.int32) - resized_hw) // 2
    scale = tf.reverse(tf.cast(resized_hw, tf.float32) / source, [0])
    offset = tf.reverse(tf.cast(pad_hw, tf.float32), [0])

    def fit(pixels, method="bilinear", value=fill):
        pixels = tf.image.resize(pixels, resized_hw, method=method, antialias=method == "bilinear")
        return tf.image.pad_to_bounding_box(pixels - value, pad_hw[0], pad_hw[1], *size) + value

    result = {**element, "image": fit(tf.cast(element["image"], tf.float32))}
    if "masks" in element:
        result["masks"] = _channels_last(element["masks"], lambda masks: fit(masks, "nearest", 0))
    scale, offset = tf.tile(scale[None], [shape[0], 1]), tf.tile(offset[None], [shape[0], 1])
    mapped = element["boxes"] * _xyxy(scale) + _xyxy(offset)
    result["boxes"] = tf.where(_valid(element)[..., None], mapped, 0.0)
    return result, scale, offset


def boxes_to_original(boxes: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Maps boxes predicted on a :func:`resize`-d image back to the original image's pixels.

    Args:
        boxes: ``[..., N, 4]`` corner boxes in pixels of the resized image.
        scale: ``[..., 2]`` (x, y) scale that :func:`resize` returned.
        offset: ``[..., 2]`` (x, y) offset that :func:`resize` returned.

    Returns:
        ``[..., N, 4]`` corner boxes in pixels of the original image: ``(box - offset) / scale``.

    Example:
        >>> boxes_to_original(tf.constant([[5.0, 17.0, 10.0, 47.0]]), tf.constant([0.5, 0.5]),
        ...                   tf.constant([0.0, 17.0])).numpy().tolist()
        [[10.0, 0.0, 20.0, 60.0]]
    """
    scale, offset = tf.convert_to_tensor(scale, tf.float32), tf.convert_to_tensor(offset, tf.float32)
    xyxy = lambda pair: tf.concat([pair, pair], axis=-1)[..., None, :]  # noqa: E731
    return (tf.convert_to_tensor(boxes, tf.float32) - xyxy(offset)) / xyxy(scale)


def batch_transform(
    seed: int, output_size: tuple[int, int], flip: bool = True, scale_range=(0.5, 2.0), fill: float = 0.0
):
    """``fn(batch) -> batch``: the training augmentation of detection batches (already model-sized).

    Random horizontal flip (stream ``flip``), then scale jitter and crop (stream ``scale_crop``,
    :func:`random_scale_crop`), each keyed by (``seed``, the batch's images) through
    :mod:`pipelines.random_streams`.

    Args:
        seed: the run's training seed.
        output_size: ``(height, width)`` of the model input.
        flip: mirror half of the examples.
        scale_range: zoom range of the scale jitter; ``None`` turns it off.
        fill: pixel value outside the image after zooming out.

    Example:
        >>> fn = batch_transform(0, (32, 32))
        >>> batch = {"image": tf.zeros([2, 32, 32, 3]), "boxes": tf.zeros([2, 3, 4]),
        ...          "classes": -tf.ones([2, 3], tf.int32), "num_boxes": tf.zeros([2], tf.int32)}
        >>> fn(batch)["image"].shape
        TensorShape([2, 32, 32, 3])
    """

    def transform(batch: dict) -> dict:
        key = batch_seed(seed, batch["image"])  # keyed by the batch as it comes, before any op
        if flip:
            batch = random_flip(batch, stream_seed(key, "flip"))
        if scale_range is not None:
            batch = random_scale_crop(batch, stream_seed(key, "scale_crop"), output_size, scale_range, fill)
        return batch

    return transform


def decode_letterboxed(image_bytes: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Decodes encoded images of any sizes and letterboxes each to ``size`` x ``size`` (:func:`resize`).

    The served detectors and segmenters start with this: one batch of client images, each kept in
    aspect, centred and padded with 0, with what maps model outputs back to the originals.

    Args:
        image_bytes: ``[B]`` string tensor of PNG/JPEG/GIF/BMP bytes (corrupt bytes fail with
            :func:`pipelines.images.decode_image`'s error).
        size: the model's square input size.

    Returns:
        ``(pixels, scale, offset, image_hw)``: float32 ``[B, S, S, 3]``, ``scale`` and ``offset``
        float32 ``[B, 2]`` in (x, y) order (:func:`boxes_to_original`), and each original
        ``(height, width)`` as float32 ``[B, 2]``.

    Example:
        >>> png = images.encode_png(tf.zeros([60, 128, 3]))
        >>> pixels, scale, offset, hw = decode_letterboxed(tf.stack([png]), 64)
        >>> pixels.shape, scale.numpy().tolist(), offset.numpy().tolist(), hw.numpy().tolist()
        (TensorShape([1, 64, 64, 3]), [[0.5, 0.5]], [[0.0, 17.0]], [[60.0, 128.0]])
    """

    def one(encoded):
        image = images.decode_image(encoded, (None, None), channels=3)
        element = {"image": image, "boxes": tf.zeros([0, 4]), "classes": tf.zeros([0], tf.int32), "num_boxes": tf.constant(0)}
        resized, scale, offset = resize(element, (size, size))
        return resized["image"], scale, offset, tf.cast(tf.shape(image)[:2], tf.float32)

    signature = (
        tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.float32),
        tf.TensorSpec([2], tf.float32), tf.TensorSpec([2], tf.float32),
    )
    return tf.map_fn(one, image_bytes, fn_output_signature=signature)
