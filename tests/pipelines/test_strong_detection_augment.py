"""The strong, box-aware view of detection batches (STAC, Soft Teacher): boxes, box weights and
pixels move together, colour ops only from RandAugment, seeded."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.augment import SeededRandAugment
from pipelines.detection import augment, strong_augment
from pipelines.detection.strong_augment import ColourRandAugment, strong_view_fn
from pipelines.weak_strong_augment import CUTOUT_FILL, apply_layers

SIZE = 64
# One white rectangle per scene, pixel-corner boxes [x0, y0, x1, y1] (integers: whole pixels).
RECTANGLES = [[8, 10, 40, 36], [20, 4, 56, 30], [5, 30, 35, 60], [24, 24, 52, 52], [2, 2, 30, 34], [30, 12, 60, 44]]


def rectangle_scenes(rectangles=RECTANGLES, value=255.0):
    """Black scenes, each with one filled rectangle at a known place, and its box."""
    images = np.zeros((len(rectangles), SIZE, SIZE, 3), np.float32)
    for image, (x0, y0, x1, y1) in zip(images, rectangles):
        image[y0:y1, x0:x1] = value
    return {
        "image": tf.constant(images),
        "boxes": tf.constant(np.asarray(rectangles, np.float32)[:, None, :]),
        "classes": tf.constant([[3]] * len(rectangles), tf.int32),
        "num_boxes": tf.ones([len(rectangles)], tf.int32),
    }


def intersection(box, window):
    """``box`` clipped to ``window`` (both pixel-corner boxes), or None when they do not overlap."""
    clipped = np.concatenate([np.maximum(box[:2], window[:2]), np.minimum(box[2:], window[2:])])
    return clipped if (clipped[2:] > clipped[:2]).all() else None


def to_view(box, window):
    """A box in the source image's pixels -> the view's pixels (the window stretched over SIZE)."""
    scale = SIZE / (window[2:] - window[:2])
    return (box - np.tile(window[:2], 2)) * np.tile(scale, 2)


def uniform_inside_and_outside(image, box, margin=2.5):
    """Pixel values well inside ``box`` and well outside it (away from the image border, where
    RandomSharpness' zero padding reaches, and from Cutout's grey): ``(inside, outside)``.

    Bilinear resampling at up to 1.5x zoom blurs an edge by < 1 pixel and the sharpness filter
    by 1 more, so at ``margin`` pixels from the box's edge only the rectangle's (or the
    background's) colour can show, whatever colour ops ran.
    """
    centre = np.arange(SIZE) + 0.5
    cx, cy = np.meshgrid(centre, centre)
    x0, y0, x1, y1 = box
    inside = (cx > x0 + margin) & (cx < x1 - margin) & (cy > y0 + margin) & (cy < y1 - margin)
    outside = (cx < x0 - margin) | (cx > x1 + margin) | (cy < y0 - margin) | (cy > y1 + margin)
    outside &= (cx > 1) & (cx < SIZE - 1) & (cy > 1) & (cy < SIZE - 1)
    not_cut = (np.abs(image - CUTOUT_FILL) > 1e-3).any(axis=-1)
    return image[inside & not_cut], image[outside & not_cut]


def test_boxes_and_pixels_move_together_and_map_back_to_the_source():
    batch = rectangle_scenes()
    checked_pixels = 0
    for step in range(3):
        view, windows = strong_view_fn()(batch, tf.constant([7, step], tf.int64))
        windows = windows.numpy()
        back = augment.boxes_from_window(view["boxes"], windows, (SIZE, SIZE)).numpy()
        for i, rectangle in enumerate(np.asarray(RECTANGLES, np.float32)):
            expected = intersection(rectangle, windows[i])
            assert int(view["num_boxes"][i]) == (expected is not None)
            if expected is None:
                continue
            np.testing.assert_allclose(back[i, 0], expected, atol=1e-3)
            inside, outside = uniform_inside_and_outside(view["image"][i].numpy(), to_view(expected, windows[i]))
            if len(inside) and len(outside):
                # colour ops act on values, not places: one colour inside the box, another outside it
                assert np.ptp(inside, axis=0).max() < 1e-2 and np.ptp(outside, axis=0).max() < 1e-2
                assert np.abs(inside[0] - outside[0]).max() > 1.0
                checked_pixels += 1
    assert checked_pixels >= 6


def test_pixel_check_catches_a_view_whose_pixels_moved_without_the_boxes():
    """The check above fails when the pixels are cut with another window than the boxes."""
    batch = rectangle_scenes()
    view, windows = strong_view_fn()(batch, tf.constant([7, 0], tf.int64))
    shifted = augment.crop_and_resize(batch, windows.numpy() + [6.0, 0.0, 6.0, 0.0], (SIZE, SIZE))["image"].numpy()
    failures = 0
    for i, rectangle in enumerate(np.asarray(RECTANGLES, np.float32)):
        expected = intersection(rectangle, windows.numpy()[i])
        if expected is not None:
            inside, outside = uniform_inside_and_outside(shifted[i], to_view(expected, windows.numpy()[i]))
            failures += np.ptp(inside, axis=0).max() > 1e-2 or np.ptp(outside, axis=0).max() > 1e-2
    assert failures >= 3


def test_box_weights_follow_their_boxes_through_random_views():
    """Small boxes, each weight an id: every kept row's box is its id's box, cut by the window."""
    rng = np.random.default_rng(3)
    count, per_scene = 8, 4
    centres, sides = rng.uniform(0, SIZE, (count, per_scene, 2)), rng.uniform(4, 10, (count, per_scene, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], -1).astype(np.float32)
    ids = np.tile(np.float32([0.125, 0.25, 0.5, 0.75]), (count, 1))
    batch = {"image": tf.constant(rng.uniform(0, 255, (count, SIZE, SIZE, 3)), tf.float32), "boxes": tf.constant(boxes),
             "classes": tf.constant([[1, 2, 3, 4]] * count, tf.int32), "num_boxes": tf.fill([count], per_scene),
             "box_weights": tf.constant(ids)}
    compacted = 0
    for step in range(2):
        view, windows = strong_view_fn()(batch, tf.constant([1, step], tf.int64))
        windows = windows.numpy()
        back = augment.boxes_from_window(view["boxes"], windows, (SIZE, SIZE)).numpy()
        weights, classes, counts = view["box_weights"].numpy(), view["classes"].numpy(), view["num_boxes"].numpy()
        for i in range(count):
            kept = [k for k in range(per_scene) if intersection(boxes[i, k], windows[i]) is not None]
            compacted += kept != list(range(len(kept)))  # a row moved up past a dropped one
            assert counts[i] == len(kept)
            np.testing.assert_array_equal(weights[i, : counts[i]], ids[i, kept])  # in order, moved up
            np.testing.assert_array_equal(classes[i, : counts[i]], np.array([1, 2, 3, 4])[kept])
            for row, k in enumerate(kept):
                np.testing.assert_allclose(back[i, row], intersection(boxes[i, k], windows[i]), atol=1e-3)
            assert (weights[i, counts[i]:] == 0).all() and (classes[i, counts[i]:] == -1).all()
    assert compacted >= 2


def test_a_dropped_first_box_moves_the_second_boxs_weight_to_row_zero():
    element = {
        "image": tf.zeros([1, 64, 64, 3]),
        "boxes": tf.constant([[[0.0, 0.0, 10.0, 10.0], [30.0, 30.0, 50.0, 50.0], [0.0, 0.0, 0.0, 0.0]]]),
        "classes": tf.constant([[4, 7, -1]]),
        "num_boxes": tf.constant([2]),
        "box_weights": tf.constant([[0.25, 0.75, 0.0]]),
    }
    # window [20, 20, 60, 60] onto 80 x 80: scale 2; the first box lies outside it
    cropped = augment.crop_and_resize(element, tf.constant([[20.0, 20.0, 60.0, 60.0]]), (80, 80))
    np.testing.assert_allclose(cropped["boxes"].numpy()[0], [[20, 20, 60, 60], [0, 0, 0, 0], [0, 0, 0, 0]], atol=1e-4)
    np.testing.assert_array_equal(cropped["box_weights"].numpy(), [[0.75, 0.0, 0.0]])
    np.testing.assert_array_equal(cropped["classes"].numpy(), [[7, -1, -1]])
    assert cropped["num_boxes"].numpy().tolist() == [1]


def test_same_seed_same_view_other_seed_other_view_and_graph_equals_eager():
    batch = {**rectangle_scenes(), "box_weights": tf.ones([len(RECTANGLES), 1])}
    fn = strong_view_fn()
    seed = tf.constant([3, 9], tf.int64)
    first, first_windows = fn(batch, seed)
    again, again_windows = fn(batch, seed)
    other, other_windows = fn(batch, tf.constant([3, 10], tf.int64))
    traced, traced_windows = tf.function(fn)(batch, seed)
    np.testing.assert_array_equal(first_windows.numpy(), again_windows.numpy())
    np.testing.assert_allclose(traced_windows.numpy(), first_windows.numpy(), atol=1e-5)
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy(), err_msg=key)
        np.testing.assert_allclose(traced[key].numpy(), first[key].numpy(), rtol=1e-4, atol=1e-3, err_msg=key)
    assert not np.array_equal(first_windows.numpy(), other_windows.numpy())
    assert not np.array_equal(first["image"].numpy(), other["image"].numpy())


def test_pixels_stay_in_0_255():
    rng = np.random.default_rng(0)
    extremes = rng.choice([0.0, 255.0], (6, SIZE, SIZE, 3)).astype(np.float32)
    batch = {**rectangle_scenes(), "image": tf.constant(extremes)}
    for step in range(3):
        image = strong_view_fn()(batch, tf.constant([0, step], tf.int64))[0]["image"].numpy()
        assert image.min() >= 0.0 and image.max() <= 255.0
        assert image.shape == (6, SIZE, SIZE, 3)


def test_colour_randaugment_is_keras_randaugment_without_its_geometric_operations():
    keras_ops = keras.layers.RandAugment._AUGMENT_LAYERS
    layer = ColourRandAugment(value_range=(0, 255))
    geometric = {name for name in keras_ops
                 if isinstance(getattr(layer, name), (keras.layers.RandomShear, keras.layers.RandomTranslation,
                                                      keras.layers.RandomRotation))}
    assert geometric == {"random_shear", "random_translation", "random_rotation"}
    assert layer._AUGMENT_LAYERS == [name for name in keras_ops if name not in geometric]
    assert len(layer._AUGMENT_LAYERS) == 8


def _flat_regions_stay_flat(layer, seeds):
    """For each seed: is a rectangle scene still one colour deep inside and one deep outside the
    rectangle? Colour operations act on values only (sharpness on 3x3 neighbourhoods); a shear,
    translation or rotation moves the edge."""
    rectangle = [16, 16, 48, 48]
    scene = rectangle_scenes([rectangle])["image"]
    results = []
    for seed in seeds:
        image = apply_layers([layer], scene, tf.constant([seed, 0], tf.int64), "strong")[0].numpy()
        inside, outside = uniform_inside_and_outside(image, rectangle, margin=3)
        results.append(np.ptp(inside, axis=0).max() < 1e-2 and np.ptp(outside, axis=0).max() < 1e-2)
    return results


def test_colour_randaugment_never_moves_pixels_but_keras_randaugment_does():
    assert all(_flat_regions_stay_flat(ColourRandAugment(value_range=(0, 255)), range(20)))  # 2 of 8 ops, 20 times
    assert not all(_flat_regions_stay_flat(SeededRandAugment(value_range=(0, 255)), range(6)))


def test_boxes_from_window_inverts_the_crops_box_map():
    """Random windows (zooming in and out, reaching outside the image) and boxes inside them."""
    rng = np.random.default_rng(11)
    count, size = 12, (48, 40)  # output height, width
    origin = rng.uniform(-20, 40, (count, 2))
    windows = np.concatenate([origin, origin + rng.uniform(10, 90, (count, 2))], -1).astype(np.float32)
    fractions = np.sort(rng.uniform(0.01, 0.99, (count, 5, 2, 2)), axis=2)  # corners inside each window
    extent = (windows[:, 2:] - windows[:, :2])[:, None, None, :]
    corners = windows[:, None, None, :2] + fractions * extent
    boxes = corners.reshape(count, 5, 4).astype(np.float32)  # (low, high) corner x (x, y) = [x0, y0, x1, y1]
    batch = {"image": tf.zeros([count, 64, 64, 3]), "boxes": tf.constant(boxes), "classes": tf.zeros([count, 5], tf.int32),
             "num_boxes": tf.fill([count], 5)}
    cropped = augment.crop_and_resize(batch, tf.constant(windows), size)
    assert cropped["num_boxes"].numpy().tolist() == [5] * count  # nothing clipped or dropped
    back = augment.boxes_from_window(cropped["boxes"], tf.constant(windows), size).numpy()
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    # and the other way: the view's boxes are the window's affine map (written out here)
    scale = np.array([size[1], size[0]]) / (windows[:, 2:] - windows[:, :2])
    expected = (boxes - np.tile(windows[:, None, :2], 2)) * np.tile(scale[:, None], 2)
    np.testing.assert_allclose(cropped["boxes"].numpy(), expected, atol=1e-3)


def test_doctests():
    assert doctest.testmod(strong_augment).failed == 0
