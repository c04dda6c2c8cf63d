import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines import digits, images, sources
from pipelines.splits import split_indices


def test_embedded_digits_are_mlxtends_5000_real_mnist_digits():
    splits = digits.load("embedded", seed=0)
    assert splits.info["sizes"] == {"train": 4000, "validation": 500, "test": 500}
    x, y = next(iter(splits.train.batch(4000)))
    assert x.shape == (4000, 28, 28, 1) and x.dtype == tf.float32
    assert float(tf.reduce_min(x)) == 0.0 and float(tf.reduce_max(x)) == 255.0
    assert sorted(np.unique(y.numpy())) == list(range(10))


def test_sklearn_digits_are_rescaled_to_mnist_layout():
    splits = digits.load("sklearn:digits", seed=0)
    assert sum(splits.info["sizes"].values()) == 1797
    x, _ = next(iter(splits.test.batch(10)))
    assert x.shape[1:] == (28, 28, 1) and 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 255.0


def test_tfds_mnist_source_with_mocked_data():
    with tfds.testing.mock_data(num_examples=20):
        splits = digits.load("tfds:mnist")
        x, y = next(iter(splits.train.batch(5)))
    assert x.shape == (5, 28, 28, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert splits.info["source"] == "tfds:mnist"


def test_unknown_sources_name_what_is_accepted():
    with pytest.raises(sources.DataSourceError, match="accepts: embedded, sklearn:digits, tfds:<name>"):
        digits.load("sklearn:iris")


def test_split_indices_are_disjoint_seeded_and_complete():
    train, val, test = split_indices(100, (0.1, 0.25), seed=3)
    assert (len(train), len(val), len(test)) == (65, 10, 25)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100))
    again = split_indices(100, (0.1, 0.25), seed=3)
    assert all((a == b).all() for a, b in zip((train, val, test), again))


def test_decode_round_trips_png_and_converts_colour_to_grey():
    pixels = tf.constant(np.random.default_rng(0).integers(0, 256, (28, 28, 1)), tf.float32)
    decoded = images.decode_image(images.encode_png(pixels), (28, 28), channels=1)
    np.testing.assert_array_equal(decoded.numpy(), pixels.numpy())
    rgb = tf.io.encode_png(tf.fill([10, 12, 3], tf.constant(200, tf.uint8)))
    grey = images.decode_image(rgb, (28, 28), channels=1)
    assert grey.shape == (28, 28, 1)
    np.testing.assert_allclose(grey.numpy(), 200.0, atol=1.0)


def test_decode_batch_rejects_corrupt_bytes():
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        images.decode_batch(tf.constant([b"garbage"]), (28, 28), 1)
