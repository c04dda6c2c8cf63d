import shutil
from pathlib import Path

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


def test_notes_augmentation_is_random_per_batch_and_keeps_shapes_and_range():
    fn = augment.batch_transform("notes", (32, 32), seed=1)
    x = tf.random.stateless_uniform([4, 32, 32, 3], [1, 2], 0, 255)
    y = tf.one_hot([0, 1, 2, 0], 3)
    a, ya = fn(x, y)
    b, _ = fn(x[::-1], y[::-1])  # the same images in another batch order: other draws
    assert a.shape == x.shape and not np.allclose(a.numpy(), b.numpy()[::-1])
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


def test_folder_ids_come_from_the_run_class_names_when_folders_change(photo_folder):
    """A class folder added (sorting first) or removed shifts no id; an unknown class is skipped, named."""
    run_names = ["cat", "dog", "owl"]
    extra = photo_folder / "aardvark"
    extra.mkdir()
    (extra / "0.png").write_bytes(tf.io.encode_png(np.zeros((8, 8, 3), "uint8")).numpy())
    shutil.rmtree(photo_folder / "dog")
    with pytest.warns(UserWarning, match=r"skipped the images of class folder\(s\) \['aardvark'\]"):
        paths, labels, names, _ = image_folder.scan(photo_folder, run_names)
    assert names == run_names and sorted(set(labels)) == [0, 2]
    assert all(run_names[label] == Path(path).parent.name for path, label in zip(paths, labels))
    with pytest.warns(UserWarning, match="aardvark"):
        splits = image_classification.load(f"folder:{photo_folder}", (8, 8), run_class_names=run_names)
    assert splits.info["class_names"] == run_names
    assert sorted(int(y) for split in (splits.train, splits.validation, splits.test) for _, y in split) == [0] * 4 + [2] * 4


def test_a_folder_without_any_class_of_the_run_is_refused(photo_folder):
    with pytest.warns(UserWarning, match="skipped the images"), pytest.raises(DataSourceError, match="no decodable images of the classes"):
        image_folder.load(photo_folder, (8, 8), class_names=["emu", "yak"])


def _mock_tfds(labels_of_split):
    """``tfds.testing.mock_data`` whose split ``s`` holds 80 tiny images labelled ``labels_of_split(s)``."""

    def as_dataset(builder, split, *args, **kwargs):
        labels = np.asarray(labels_of_split(str(split)), np.int64)
        features = {"image": np.zeros((len(labels), 6, 6, 3), np.uint8), "label": labels}
        if "file_name" in builder.info.features:
            features["file_name"] = np.array([b"x.jpeg"] * len(labels))
        return tf.data.Dataset.from_tensor_slices(features)

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def test_imagenet2012_is_tested_on_its_labelled_validation_split_and_its_test_split_is_refused():
    requested = []

    def labels(split):  # like ImageNet: its test split has no labels (-1)
        requested.append(split)
        return np.full(80, -1) if split == "test" else np.arange(80) % 1000

    with _mock_tfds(labels):
        splits = image_classification.load("tfds:imagenet2012", (8, 8))
        assert requested == ["train[:99%]", "train[99%:]", "validation"]
        assert len(splits.info["class_names"]) == 1000 and len(list(splits.test)) == 80
        with pytest.raises(DataSourceError, match=r"tfds:imagenet2012:test \(test split\) has no labels \(label -1\).*DATA=tfds:imagenet2012:validation"):
            image_classification.load("tfds:imagenet2012:test", (8, 8))


def test_labels_outside_the_class_count_are_refused_naming_the_source():
    def labels(split):  # cifar10 has 10 classes; label 10 first among the read-up-front labels, or later
        values = np.arange(80) % 10
        values[3 if split == "test" else 70] = 10
        return values

    with _mock_tfds(labels):
        with pytest.raises(DataSourceError, match=r"tfds:cifar10 \(test split\) has label 10, outside \[0, 10\)"):
            image_classification.load("tfds:cifar10", (8, 8))
    with _mock_tfds(lambda split: np.where(np.arange(80) == 70, 10, np.arange(80) % 10)):
        splits = image_classification.load("tfds:cifar10", (8, 8))  # the first 64 labels of each split are fine
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"tfds:cifar10 \(train\[:90%\] split\): a label outside \[0, 10\)"):
            list(splits.train)


def test_a_source_with_other_classes_than_the_run_is_refused():
    with pytest.raises(DataSourceError, match=r"sklearn:digits has the classes .* the run has \['cat', 'dog'\].*other classes"):
        image_classification.load("sklearn:digits", (8, 8), run_class_names=["cat", "dog"])


def test_tfds_specs_name_the_test_split():
    assert image_classification.tfds_splits("cifar10") == ("cifar10", ("train[:90%]", "train[90%:]", "test"))
    assert image_classification.tfds_splits("mnist:3.0.1") == ("mnist:3.0.1", ("train[:90%]", "train[90%:]", "test"))
    assert image_classification.tfds_splits("imagenet2012") == ("imagenet2012", ("train[:99%]", "train[99%:]", "validation"))
    assert image_classification.tfds_splits("imagenet2012:test")[1][2] == "test"
    assert image_classification.tfds_splits("imagenette")[1][2] == "validation"  # it has no test split
    assert image_classification.tfds_splits("mnist:3.0.1:test[:50%]") == ("mnist:3.0.1", ("train[:90%]", "train[90%:]", "test[:50%]"))
