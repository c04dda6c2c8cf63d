import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines import augment, image_classification, image_folder
from pipelines.sources import DataSourceError


@pytest.fixture
def photo_folder(tmp_path):
    """3 classes x 4 PNG/JPEG images of different sizes, colour and grey, plus a corrupt file."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (tmp_path / name).mkdir()
        for i in range(4):
            channels = 1 if i == 0 else 3
            pixels = rng.integers(0, 256, (20 + i, 30, channels)).astype("uint8")
            encode = tf.io.encode_png if i % 2 else tf.io.encode_jpeg
            (tmp_path / name / f"{i}.{'png' if i % 2 else 'jpg'}").write_bytes(encode(pixels).numpy())
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "dog" / "notes.txt").write_text("not an image: ignored")
    return tmp_path


def test_folder_source_labels_sorted_classes_and_skips_corrupt_files(photo_folder):
    with pytest.warns(UserWarning, match="skipped 1 image file.*broken.jpg"):
        splits = image_folder.load(photo_folder, (16, 16), seed=0, fractions=(0.25, 0.25))
    assert splits.info["class_names"] == ["cat", "dog", "owl"] and splits.info["skipped_files"] == 1
    assert sum(splits.info["sizes"].values()) == 12
    images = [x for split in (splits.train, splits.validation, splits.test) for x, _ in split]
    assert all(x.shape == (16, 16, 3) and x.dtype == tf.float32 for x in images)
    labels = sorted(int(y) for split in (splits.train, splits.validation, splits.test) for _, y in split)
    assert labels == [0] * 4 + [1] * 4 + [2] * 4


@pytest.mark.parametrize(
    "setup, message",
    [(lambda p: p / "missing", "does not exist"), (lambda p: (p / "only").mkdir() or p, "at least two class")],
)
def test_folder_source_errors(tmp_path, setup, message):
    with pytest.raises(DataSourceError, match=message):
        image_folder.load(setup(tmp_path), (8, 8))


def test_embedded_digits_become_rgb_at_the_model_size():
    splits = image_classification.load("embedded", (32, 32), seed=0)
    x, y = next(iter(splits.train.batch(8)))
    assert x.shape == (8, 32, 32, 3) and y.dtype == tf.int32
    np.testing.assert_array_equal(x[..., 0].numpy(), x[..., 2].numpy())  # grey replicated
    assert image_classification.class_names("embedded") == [str(d) for d in range(10)]


def test_tfds_source_with_mocked_cifar10():
    with tfds.testing.mock_data(num_examples=12):
        splits = image_classification.load("tfds:cifar10", (24, 24))
        x, _ = next(iter(splits.train.batch(4)))
        names = image_classification.class_names("tfds:cifar10")
    assert x.shape == (4, 24, 24, 3) and len(names) == 10


def test_notes_augmentation_is_random_in_training_only_and_keeps_shapes_and_range():
    fn = augment.batch_transform("notes", (32, 32), seed=1)
    x = tf.random.stateless_uniform([4, 32, 32, 3], [1, 2], 0, 255)
    y = tf.one_hot([0, 1, 2, 0], 3)
    a, ya = fn(x, y)
    b, _ = fn(x, y)
    assert a.shape == x.shape and not np.allclose(a.numpy(), b.numpy())
    assert float(tf.reduce_min(a)) >= 0.0 and float(tf.reduce_max(a)) <= 255.0
    np.testing.assert_array_equal(ya.numpy(), y.numpy())  # no mixing: labels untouched


def test_rotation_follows_the_notes_degrees_not_keras_turns():
    rotation = next(l for l in augment.notes_layers((32, 32)) if l.__class__.__name__ == "RandomRotation")
    assert rotation.factor == pytest.approx((-0.2 / 360, 0.2 / 360))  # ±0.2°, not ±72°


def test_mixup_and_cutmix_mix_labels_as_distributions():
    fn = augment.batch_transform("none", (16, 16), mixup=0.4, cutmix=1.0, seed=3)
    x = tf.concat([tf.zeros([4, 16, 16, 3]), tf.fill([4, 16, 16, 3], 255.0)], 0)
    y = tf.one_hot([0, 0, 0, 0, 1, 1, 1, 1], 2)
    _, mixed = fn(x, y)
    np.testing.assert_allclose(mixed.numpy().sum(-1), 1.0, atol=1e-5)
    assert np.any((mixed.numpy() > 0.01) & (mixed.numpy() < 0.99))


def test_unknown_policy_is_named():
    with pytest.raises(ValueError, match="unknown augmentation 'autoaugment'"):
        augment.batch_transform("autoaugment", (8, 8))
