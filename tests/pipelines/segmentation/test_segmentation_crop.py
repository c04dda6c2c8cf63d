"""Joint crops of image and label (notes-002 §16): the same window, never interpolated, seeded."""

import numpy as np
import tensorflow as tf

from pipelines.segmentation.crop import IGNORE, at_least, centre_window, random_crop


def _coordinate_image(height, width):
    """An image whose pixel (r, c) holds (r, c, r·width + c), and labels that hold r·width + c."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols, rows * width + cols], axis=-1).astype("float32")
    return tf.constant(image), tf.constant((rows * width + cols).astype("int32"))


def test_image_and_label_crops_come_from_exactly_the_same_window():
    image, labels = _coordinate_image(20, 30)
    for seed in range(20):
        crop, crop_labels = random_crop(tf.constant([seed, 7]), image, labels, (8, 12))
        crop, crop_labels = crop.numpy(), crop_labels.numpy()
        top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        rows, cols = np.meshgrid(np.arange(top, top + 8), np.arange(left, left + 12), indexing="ij")
        np.testing.assert_array_equal(crop[..., 0], rows)  # a contiguous window, not resampled
        np.testing.assert_array_equal(crop[..., 1], cols)
        np.testing.assert_array_equal(crop_labels, rows * 30 + cols)  # labels: the same window, exact ids
        np.testing.assert_array_equal(crop_labels, crop[..., 2].astype("int32"))


def test_the_crop_is_seeded_and_reaches_every_corner():
    image, labels = _coordinate_image(6, 7)
    corners = {tuple(random_crop(tf.constant([s, 0]), image, labels, (4, 4))[0].numpy()[0, 0, :2]) for s in range(400)}
    assert corners == {(r, c) for r in range(3) for c in range(4)}  # all 3 x 4 window positions
    first = random_crop(tf.constant([5, 1]), image, labels, (4, 4))[1].numpy()
    np.testing.assert_array_equal(first, random_crop(tf.constant([5, 1]), image, labels, (4, 4))[1].numpy())


def test_images_smaller_than_the_crop_are_filtered_out():
    sizes = [(10, 10), (7, 12), (12, 7), (8, 8)]
    data = tf.data.Dataset.from_generator(
        lambda: ((np.zeros((*s, 3), "float32"), np.zeros(s, "int32")) for s in sizes),
        output_signature=(tf.TensorSpec([None, None, 3]), tf.TensorSpec([None, None], tf.int32)),
    )
    kept = [tuple(labels.shape) for _, labels in data.filter(at_least((8, 8)))]
    assert kept == [(10, 10), (8, 8)]


def test_evaluation_pads_small_images_with_ignored_labels_and_keeps_the_centre():
    image, labels = _coordinate_image(3, 10)
    window_image, window_labels = centre_window(image, labels, (5, 6))
    window_labels = window_labels.numpy()
    assert window_labels.shape == (5, 6)
    np.testing.assert_array_equal(window_labels[0], IGNORE)  # one padded row above, one below
    np.testing.assert_array_equal(window_labels[4], IGNORE)
    np.testing.assert_array_equal(window_labels[1:4], labels.numpy()[:, 2:8])  # centre columns 2..7
    assert float(tf.reduce_sum(window_image[0])) == 0.0
