"""Multibox anchors: d2l's counts and printed values, hand-computed boxes, a loop reference."""

import doctest
import itertools

import numpy as np
import pytest
import tensorflow as tf

from pipelines.detection import anchors
from pipelines.detection.anchors import anchors_per_pixel, multibox_anchors


def loop_anchors(feature_hw, sizes, ratios):
    """d2l's multibox_prior written as plain loops: normalised anchors of a feature map that
    is the image (notes-002-part2.md §3 [REF d2l]): width s*sqrt(r)*h/w, height s/sqrt(r)."""
    h, w = feature_hw
    pairs = [(s, ratios[0]) for s in sizes] + [(sizes[0], r) for r in ratios[1:]]
    out = []
    for i, j in itertools.product(range(h), range(w)):
        cx, cy = (j + 0.5) / w, (i + 0.5) / h
        for s, r in pairs:
            half_w, half_h = s * np.sqrt(r) * h / w / 2, s / np.sqrt(r) / 2
            out.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
    return np.array(out)


def test_docstring_examples():
    result = doctest.testmod(anchors)
    assert result.attempted >= 4 and result.failed == 0


def test_d2l_561_by_728_example_count_and_printed_anchor():
    # d2l 14.4.1: a 561 x 728 image, sizes [0.75, 0.5, 0.25], ratios [1, 2, 0.5] -> 5 per pixel,
    # 2,042,040 anchors; it prints boxes[250, 250, 0, :] as [0.06, 0.07, 0.63, 0.82].
    sizes, ratios = [0.75, 0.5, 0.25], [1.0, 2.0, 0.5]
    boxes = multibox_anchors((561, 728), (561, 728), sizes, ratios, normalized=True)
    assert anchors_per_pixel(3, 3) == 5
    assert boxes.shape == (2_042_040, 4)
    printed = tf.reshape(boxes, [561, 728, 5, 4])[250, 250, 0]
    np.testing.assert_allclose(printed.numpy(), [0.06, 0.07, 0.63, 0.82], atol=0.005)


def test_hand_computed_anchors_in_pixels_and_normalised():
    # image 100 (H) x 200 (W), feature map 2 x 4: cells 50 x 50. sizes [0.5, 0.25], ratios [1, 4]
    # -> per pixel (0.5, 1), (0.25, 1), (0.5, 4); widths s*sqrt(r)*H = 50, 25, 100,
    # heights s/sqrt(r)*H = 50, 25, 25.
    boxes = multibox_anchors((2, 4), (100, 200), sizes=[0.5, 0.25], ratios=[1.0, 4.0]).numpy()
    assert boxes.shape == (2 * 4 * 3, 4)
    # pixel (0, 0): centre (25, 25)
    np.testing.assert_allclose(boxes[:3], [[0, 0, 50, 50], [12.5, 12.5, 37.5, 37.5], [-25, 12.5, 75, 37.5]])
    # pixel (1, 3): centre (175, 75), first anchor at (1 * 4 + 3) * 3 = 21
    np.testing.assert_allclose(boxes[21:], [[150, 50, 200, 100], [162.5, 62.5, 187.5, 87.5], [125, 62.5, 225, 87.5]])
    normalised = multibox_anchors((2, 4), (100, 200), sizes=[0.5, 0.25], ratios=[1.0, 4.0], normalized=True)
    np.testing.assert_allclose(normalised.numpy(), boxes / [200, 100, 200, 100], rtol=1e-6)


@pytest.mark.parametrize(
    "feature_hw, sizes, ratios",
    [((5, 5), [0.75, 0.5, 0.25], [1, 2, 0.5]), ((3, 6), [0.2, 0.272], [1, 2, 0.5]), ((4, 2), [0.9], [1, 3, 1 / 3, 2])],
)
def test_equals_d2l_rule_written_as_loops(feature_hw, sizes, ratios):
    got = multibox_anchors(feature_hw, feature_hw, sizes, ratios, normalized=True).numpy()
    expected = loop_anchors(feature_hw, sizes, ratios)
    assert len(got) == feature_hw[0] * feature_hw[1] * (len(sizes) + len(ratios) - 1)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_pixel_centres_and_square_ratio_one_anchors_on_a_mismatched_aspect():
    # feature map 3 x 3 over a 60 x 120 image: cells are 20 x 40 pixels
    boxes = tf.reshape(multibox_anchors((3, 3), (60, 120), [0.5, 0.3], [1.0, 2.0]), [3, 3, 3, 4]).numpy()
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    i, j = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    np.testing.assert_allclose(centre[..., 0], np.broadcast_to(((j + 0.5) * 40)[..., None], (3, 3, 3)), atol=1e-4)
    np.testing.assert_allclose(centre[..., 1], np.broadcast_to(((i + 0.5) * 20)[..., None], (3, 3, 3)), atol=1e-4)
    size = boxes[..., 2:] - boxes[..., :2]
    np.testing.assert_allclose(size[0, 0], [[30, 30], [18, 18], [30 * np.sqrt(2), 30 / np.sqrt(2)]], rtol=1e-5)


def test_traces_once_for_tensor_sizes_and_lists_of_any_length():
    generate = tf.function(
        lambda feature, image, sizes, ratios: multibox_anchors(feature, image, sizes, ratios),
        input_signature=[
            tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.float32),
        ],
    )
    cases = [((4, 4), (64, 64), [0.5, 0.3], [1.0, 2.0, 0.5]), ((2, 3), (40, 60), [0.4], [1.0])]
    for feature, image, sizes, ratios in cases:
        got = generate(feature, image, sizes, ratios).numpy()
        np.testing.assert_allclose(got, multibox_anchors(feature, image, sizes, ratios).numpy())
    assert generate.experimental_get_tracing_count() == 1
