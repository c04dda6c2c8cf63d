"""The served segmentation graph: any image size in, the class map at that size out."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines import images
from tfmodels.config import resolve
from tfmodels.recipes.segmentation import SegmentationConfig, serving

CLASSES = 11  # the embedded digit scenes' background + 10 digits


def _brightness_model():
    """Per pixel: class 1 where the mean of RGB is above 128, else class 0 (a 1x1 conv with fixed weights)."""
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(CLASSES, 1, dtype="float32")
    outputs = conv(inputs)
    kernel = np.zeros((1, 1, 3, CLASSES), "float32")
    kernel[..., 1] = 1 / 30  # logit_1 = (mean - 128) / 10
    bias = np.full(CLASSES, -100.0, "float32")
    bias[0], bias[1] = 0.0, -128 / 10
    conv.set_weights([kernel, bias])
    return keras.Model(inputs, outputs)


def _bright_right_of(height, width, column):
    image = np.zeros((height, width, 3), "float32")
    image[:, column:] = 255.0
    return image


@pytest.fixture(scope="module")
def served():
    cfg = resolve(SegmentationConfig, "default", {"image_size": 32})
    endpoints = serving(cfg, _brightness_model()).endpoints
    return {name: tf.function(endpoint.fn) for name, endpoint in endpoints.items()}


def test_class_map_is_at_each_original_size_and_follows_the_pixels(served):
    shapes = [(50, 90, 37), (120, 40, 13)]  # (height, width, first bright column): wider and taller than square
    encoded = tf.stack([images.encode_png(tf.constant(_bright_right_of(*shape))) for shape in shapes])
    out = served["serving_default"](image_bytes=encoded)
    assert out["class_map"].shape == (2, 120, 90) and out["class_probabilities"].shape == (2, 120, 90, CLASSES)
    assert out["image_size"].numpy().tolist() == [[50, 90], [120, 40]]
    for i, (height, width, column) in enumerate(shapes):
        class_map = out["class_map"].numpy()[i]
        expected = np.where(np.arange(width) >= column, 1, 0)[None].repeat(height, 0)
        far = np.abs(np.arange(width) - column) > 4  # the model saw a 3x smaller image: edges blur
        np.testing.assert_array_equal(class_map[:height, :width][:, far], expected[:, far])
        assert (class_map[height:] == -1).all() and (class_map[:, width:] == -1).all()  # beyond this image
    names = out["class_names"].numpy()
    assert names.shape == (2, CLASSES) and names[0, 0] == b"background"


def test_pixels_at_the_model_size_are_classified_as_given(served):
    pixels = tf.constant(_bright_right_of(32, 32, 10)[None])
    out = served["predict_pixels"](pixels=pixels)
    np.testing.assert_array_equal(out["class_map"].numpy()[0], np.where(np.arange(32) >= 10, 1, 0)[None].repeat(32, 0))
    np.testing.assert_allclose(out["class_probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)


def test_bytes_that_are_no_image_fail_with_a_clear_error(served):
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty string"):
        served["serving_default"](image_bytes=tf.constant([b""]))
