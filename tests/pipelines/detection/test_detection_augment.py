"""Box-aware augmentation: hand-computed flips and crops, and images and boxes that move together."""

import doctest

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import augment


def element(image, boxes, classes, num_boxes=None, masks=None):
    result = {
        "image": tf.constant(image, tf.float32),
        "boxes": tf.constant(boxes, tf.float32),
        "classes": tf.constant(classes, tf.int32),
        "num_boxes": tf.constant(len(boxes) if num_boxes is None else num_boxes, tf.int32),
    }
    if masks is not None:
        result["masks"] = tf.constant(masks, tf.uint8)
    return result


def coordinate_image(height, width):
    """Pixel (y, x) holds its centre (x + 0.5, y + 0.5) and 0: a picture of its own coordinates."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    return np.stack([xx + 0.5, yy + 0.5, np.zeros_like(xx)], axis=-1)


def box_masks(boxes, height, width):
    """One mask per integer box, 1 on the pixels the box covers."""
    masks = np.zeros((len(boxes), height, width), np.uint8)
    for mask, (x0, y0, x1, y1) in zip(masks, np.asarray(boxes, int)):
        mask[y0:y1, x0:x1] = 1
    return masks


def mask_box(mask):
    """The pixel-corner bounding box of a mask's pixels."""
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_flip_mirrors_boxes_by_hand_and_keeps_padding():
    # width 10: x -> 10 - x, so [1, 2, 4, 5] -> [6, 2, 9, 5] and [6, 0, 10, 3] -> [0, 0, 4, 3]
    boxes = [[1, 2, 4, 5], [6, 0, 10, 3], [0, 0, 0, 0]]
    flipped = augment.flip_horizontal(element(np.zeros((6, 10, 3)), boxes, [3, 7, -1], num_boxes=2))
    np.testing.assert_array_equal(flipped["boxes"].numpy(), [[6, 2, 9, 5], [0, 0, 4, 3], [0, 0, 0, 0]])
    np.testing.assert_array_equal(flipped["classes"].numpy(), [3, 7, -1])
    assert int(flipped["num_boxes"]) == 2


def test_flip_moves_image_masks_and_boxes_together():
    image = coordinate_image(6, 10)
    boxes = [[1, 2, 4, 5], [6, 0, 10, 3]]
    flipped = augment.flip_horizontal(element(image, boxes, [0, 1], masks=box_masks(boxes, 6, 10)))
    # the pixel at column j now shows source x = 10 - (j + 0.5); the box map x -> 10 - x returns j + 0.5
    np.testing.assert_array_equal(10.0 - flipped["image"].numpy()[..., 0], coordinate_image(6, 10)[..., 0])
    for mask, box in zip(flipped["masks"].numpy(), flipped["boxes"].numpy()):
        assert mask_box(mask) == box.tolist()


def crop_example():
    """A 100x100 image with five boxes and a padding row; window [20, 10, 70, 60] zooms 2x."""
    boxes = [
        [0, 0, 15, 100],  # left of the window: empty after clipping
        [30, 20, 50, 40],  # inside: -> [20, 20, 60, 60]
        [75, 5, 95, 30],  # right of the window
        [60, 50, 90, 80],  # partly inside: -> [80, 80, 140, 140] -> clipped [80, 80, 100, 100]
        [25, 65, 40, 90],  # below the window
        [0, 0, 0, 0],  # padding
    ]
    masks = box_masks(boxes, 100, 100)
    return element(coordinate_image(100, 100), boxes, [1, 2, 3, 4, 5, -1], num_boxes=5, masks=masks)


def test_known_crop_maps_clips_and_removes_boxes_by_hand():
    cropped = augment.crop_and_resize(crop_example(), [20.0, 10.0, 70.0, 60.0], (100, 100))
    expected = [[20, 20, 60, 60], [80, 80, 100, 100], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(cropped["boxes"].numpy(), expected, atol=1e-4)
    np.testing.assert_array_equal(cropped["classes"].numpy(), [2, 4, -1, -1, -1, -1])
    assert int(cropped["num_boxes"]) == 2
    masks = cropped["masks"].numpy()
    assert [mask_box(m) for m in masks[:2]] == expected[:2]  # masks cropped like the boxes
    assert masks[2:].sum() == 0  # removed rows carry no mask


WINDOWS = [([20.0, 10.0, 70.0, 60.0], (100, 100)), ([12.5, 7.25, 40.5, 31.25], (48, 56))]
RESIZES = [((30, 50), (64, 64), True), ((90, 120), (48, 64), True), ((40, 30), (64, 48), False)]


@pytest.mark.parametrize("window, size", WINDOWS)
def test_crop_moves_image_and_boxes_together(window, size):
    """Each output pixel shows the source coordinate of its centre; mapping that coordinate as a box
    corner must land on the pixel's centre (j + 0.5, i + 0.5)."""
    source = element(coordinate_image(100, 100), [[0, 0, 1, 1]], [0])
    shown = augment.crop_and_resize(source, window, size)["image"].numpy()
    corners = shown[..., :2].reshape(-1, 2)
    probes = {**source, "boxes": tf.constant(np.concatenate([corners, corners + 1e-3], -1)),
              "classes": tf.zeros(len(corners), tf.int32), "num_boxes": tf.constant(len(corners))}
    mapped = augment.crop_and_resize(probes, window, size)["boxes"].numpy()[:, :2]
    centres = coordinate_image(*size)[..., :2].reshape(-1, 2)
    np.testing.assert_allclose(mapped, centres, atol=1e-3)


def test_zooming_out_fills_outside_the_image():
    source = element(np.full((10, 10, 3), 200.0), [[2, 2, 8, 8]], [0])
    out = augment.crop_and_resize(source, [-10.0, -10.0, 20.0, 20.0], (30, 30), fill=7.0)
    np.testing.assert_allclose(out["boxes"].numpy(), [[12, 12, 18, 18]], atol=1e-4)
    image = out["image"].numpy()
    assert (image[:9] == 7.0).all() and (image[11:19, 11:19] == 200.0).all()


def test_letterbox_by_hand_and_back_to_the_original():
    # 32 high x 16 wide into 64x64: factor 2 -> 64x32, centred with 16 columns of padding on the left
    boxes = [[2, 3, 6, 9], [10, 20, 16, 32]]
    source = element(np.ones((32, 16, 3)) * 50, boxes, [0, 1], masks=box_masks(boxes, 32, 16))
    fitted, scale, offset = augment.resize(source, (64, 64), fill=0.0)
    expected = [[20, 6, 28, 18], [36, 40, 48, 64]]
    np.testing.assert_allclose(fitted["boxes"].numpy(), expected)
    np.testing.assert_allclose(scale.numpy(), [2, 2])
    np.testing.assert_allclose(offset.numpy(), [16, 0])
    image = fitted["image"].numpy()
    assert (image[:, :16] == 0).all() and (image[:, 48:] == 0).all() and np.allclose(image[:, 16:48], 50)
    assert [mask_box(m) for m in fitted["masks"].numpy()] == expected
    np.testing.assert_allclose(augment.boxes_to_original(fitted["boxes"], scale, offset).numpy(), boxes, atol=1e-5)


@pytest.mark.parametrize("shape, size, letterbox", RESIZES)
def test_resize_moves_image_and_boxes_together(shape, size, letterbox):
    source = element(coordinate_image(*shape), [[0, 0, 1, 1]], [0])
    fitted, scale, offset = augment.resize(source, size, letterbox=letterbox)
    shown = fitted["image"].numpy()[..., :2]
    centres = coordinate_image(*size)[..., :2]
    # interior pixels (away from the padding and from the borders a resize kernel clamps at)
    margin = 2 + int(np.ceil(1 / scale.numpy().min()))
    lo = offset.numpy().astype(int) + margin
    hi = (offset.numpy() + scale.numpy() * shape[::-1]).astype(int) - margin
    inner = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    # an antialiased downscale's discrete kernel is not exactly centred (<= 0.03 px); a half-pixel
    # or scale mistake would be off by 0.5 px or more
    np.testing.assert_allclose(shown[inner] * scale.numpy() + offset.numpy(), centres[inner], atol=0.05)


def test_boxes_to_original_inverts_resize_for_a_batch():
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.uniform(0, 40, (3, 4, 2, 2)), axis=2).transpose(0, 1, 3, 2).reshape(3, 4, 4)
    batch = {"image": tf.zeros([3, 40, 60, 3]), "boxes": tf.constant(boxes, tf.float32),
             "classes": tf.zeros([3, 4], tf.int32), "num_boxes": tf.constant([4, 4, 4])}
    fitted, scale, offset = augment.resize(batch, (32, 32))
    assert scale.shape == (3, 2) and offset.shape == (3, 2)
    np.testing.assert_allclose(augment.boxes_to_original(fitted["boxes"], scale, offset).numpy(), boxes, atol=1e-4)


def random_batch(n=6, size=32, max_boxes=4):
    rng = np.random.default_rng(1)
    corners = np.sort(rng.uniform(0, size, (n, max_boxes, 2, 2)), axis=2)
    boxes = corners.transpose(0, 1, 3, 2).reshape(n, max_boxes, 4)
    counts = rng.integers(0, max_boxes + 1, n)
    valid = np.arange(max_boxes) < counts[:, None]
    return {
        "image": tf.constant(rng.uniform(0, 255, (n, size, size, 3)), tf.float32),
        "boxes": tf.constant(np.where(valid[..., None], boxes, 0), tf.float32),
        "classes": tf.constant(np.where(valid, rng.integers(0, 5, (n, max_boxes)), -1), tf.int32),
        "num_boxes": tf.constant(counts, tf.int32),
        "masks": tf.constant(rng.integers(0, 2, (n, max_boxes, size, size)), tf.uint8),
    }


def test_random_flip_flips_each_example_or_leaves_it():
    batch = random_batch(16)
    out = augment.random_flip(batch, tf.constant([3, 4], tf.int64))
    flipped = augment.flip_horizontal(batch)
    changed = []
    for i in range(16):
        same = all(np.array_equal(out[k][i].numpy(), batch[k][i].numpy()) for k in batch)
        mirrored = all(np.array_equal(out[k][i].numpy(), flipped[k][i].numpy()) for k in batch)
        assert same or mirrored
        changed.append(mirrored and not same)
    assert 0 < sum(changed) < 16


def test_random_scale_crop_is_seeded_and_keeps_boxes_valid():
    batch = random_batch()
    seed = tf.constant([5, 6], tf.int64)
    first = augment.random_scale_crop(batch, seed, (24, 24))
    again = augment.random_scale_crop(batch, seed, (24, 24))
    other = augment.random_scale_crop(batch, tf.constant([5, 7], tf.int64), (24, 24))
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy())
    assert not np.array_equal(first["image"].numpy(), other["image"].numpy())
    assert first["image"].shape == (6, 24, 24, 3) and first["masks"].shape == (6, 4, 24, 24)
    boxes, counts = first["boxes"].numpy(), first["num_boxes"].numpy()
    for row, count in zip(boxes, counts):
        live = row[:count]
        assert (live[:, 2:] > live[:, :2]).all() and (live >= 0).all() and (live <= 24).all()
        assert (row[count:] == 0).all()


def test_transforms_trace_with_unknown_batch_and_box_counts_in_tf_data():
    spec = {
        "image": tf.TensorSpec([None, 32, 32, 3], tf.float32),
        "boxes": tf.TensorSpec([None, None, 4], tf.float32),
        "classes": tf.TensorSpec([None, None], tf.int32),
        "num_boxes": tf.TensorSpec([None], tf.int32),
        "masks": tf.TensorSpec([None, None, 32, 32], tf.uint8),
    }
    transform = tf.function(augment.batch_transform(seed=2, output_size=(32, 32)), input_signature=[spec])
    batch = random_batch()
    eager = augment.batch_transform(seed=2, output_size=(32, 32))(batch)
    mapped = next(iter(tf.data.Dataset.from_tensors(batch).map(transform)))
    for key in eager:
        np.testing.assert_array_equal(mapped[key].numpy(), eager[key].numpy())


def test_a_single_example_gets_what_a_batch_of_one_gets():
    batch = random_batch(1)
    single = {key: value[0] for key, value in batch.items()}
    window = [4.0, 2.0, 20.0, 30.0]
    one = augment.crop_and_resize(single, window, (16, 16))
    many = augment.crop_and_resize(batch, [window], (16, 16))
    for key in one:
        np.testing.assert_array_equal(one[key].numpy(), many[key][0].numpy())


def test_doctests():
    assert doctest.testmod(augment).failed == 0


def test_decode_letterboxed_keeps_each_images_aspect_and_returns_its_size():
    """A 20x40 image letterboxed to 16: scale 16/40 = 0.4, an 8-row band centred at row offset 4."""
    from pipelines import images

    png = images.encode_png(tf.fill([20, 40, 3], tf.constant(200, tf.uint8)))
    square = images.encode_png(tf.fill([16, 16, 3], tf.constant(10, tf.uint8)))
    pixels, scale, offset, hw = augment.decode_letterboxed(tf.stack([png, square]), 16)
    np.testing.assert_allclose(scale.numpy(), [[0.4, 0.4], [1.0, 1.0]])
    np.testing.assert_allclose(offset.numpy(), [[0.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(hw.numpy(), [[20, 40], [16, 16]])
    band = pixels.numpy()[0, :, :, 0]
    np.testing.assert_allclose(band[4:12], 200, atol=1e-3)
    assert (band[:4] == 0).all() and (band[12:] == 0).all()
    np.testing.assert_allclose(pixels.numpy()[1], 10, atol=1e-3)
