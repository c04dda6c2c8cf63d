"""Segmentation sources: digit scenes, VOC's colour map, pets' trimaps (TFDS mock), VOC and user folders."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines import images
from pipelines.sources import DataSourceError
from pipelines.segmentation import sources
from pipelines.segmentation.crop import IGNORE
from pipelines.segmentation.voc_colormap import classes_to_colors, colors_to_classes

# d2l's VOC_COLORMAP (d2l.ai, "Semantic Segmentation and the Dataset"), typed from the book.
D2L_VOC_COLORMAP = [
    [0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128],
    [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0], [64, 0, 128], [192, 0, 128],
    [64, 128, 128], [192, 128, 128], [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0], [0, 64, 128],
]


def test_voc_colours_map_to_their_class_ids_and_unknown_colours_are_ignored():
    colours = tf.constant([D2L_VOC_COLORMAP + [[224, 224, 192], [1, 2, 3]]], tf.uint8)
    assert colors_to_classes(colours).numpy().tolist() == [list(range(21)) + [IGNORE, IGNORE]]
    np.testing.assert_array_equal(classes_to_colors(np.arange(21)), D2L_VOC_COLORMAP)


def test_trimaps_become_background_pet_and_ignored_borders():
    trimap = tf.constant([[1, 2, 3], [2, 1, 7]], tf.uint8)
    assert sources.trimap_to_classes(trimap).numpy().tolist() == [[1, 0, IGNORE], [0, 1, IGNORE]]


def test_digit_scenes_label_background_zero_and_digits_one_higher():
    splits = sources.load("embedded", seed=0, num_scenes=(4, 2, 2))
    image, class_map = next(iter(splits.train))
    assert image.shape == (128, 128, 3) and class_map.dtype == tf.int32
    values = set(np.unique(class_map.numpy()))
    assert 0 in values and values <= set(range(11)) and len(values) > 1
    assert splits.info["class_names"] == ["background", *"0123456789"]


def test_oxford_pets_from_tfds_mock():
    with tfds.testing.mock_data(num_examples=6):
        splits = sources.load("tfds:oxford_iiit_pet")
        image, class_map = next(iter(splits.test))
    assert image.shape.rank == 3 and image.shape[-1] == 3 and class_map.shape.rank == 2  # mock sizes are random
    assert set(np.unique(class_map.numpy())) <= {0, 1, IGNORE}
    assert sources.class_names("tfds:oxford_iiit_pet") == ["background", "pet"]


def _png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(images.encode_png(tf.constant(pixels, tf.float32)).numpy())


def test_voc_folder_reads_colour_labels_and_uses_val_as_test(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"2007_{i:06d}" for i in range(12)]
    for i, name in enumerate(names):
        ids = rng.integers(0, 21, (6, 9))
        ids[0, 0] = IGNORE
        _png(tmp_path / "SegmentationClass" / f"{name}.png", classes_to_colors(ids))
        tf.io.write_file(str(tmp_path / "JPEGImages" / f"{name}.jpg"), tf.io.encode_jpeg(tf.zeros([6, 9, 3], tf.uint8)))
        np.save(tmp_path / f"ids_{name}.npy", ids)
    lists = tmp_path / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(names[:10]))
    (lists / "val.txt").write_text("\n".join(names[10:]))
    splits = sources.load(f"voc:{tmp_path}", seed=0)
    assert splits.info["sizes"] == {"train": 9, "validation": 1, "test": 2}
    test_maps = [labels.numpy() for _, labels in splits.test]
    for name, labels in zip(names[10:], test_maps):
        np.testing.assert_array_equal(labels, np.load(tmp_path / f"ids_{name}.npy"))


def test_user_folder_of_images_and_png_label_maps(tmp_path):
    for i in range(10):
        _png(tmp_path / "images" / f"img{i}.png", np.full((5, 4, 3), 10 * i))
        _png(tmp_path / "labels" / f"img{i}.png", np.full((5, 4, 1), i % 3))
    (tmp_path / "class_names.txt").write_text("sky\nroad\ncar\n")
    splits = sources.load(f"folder:{tmp_path}", seed=0)
    assert splits.info["class_names"] == ["sky", "road", "car"]
    pairs = [(int(image.numpy()[0, 0, 0]), labels.numpy()) for split in (splits.train, splits.validation, splits.test) for image, labels in split]
    assert len(pairs) == 10
    for value, labels in pairs:
        np.testing.assert_array_equal(labels, (value // 10) % 3)  # each image kept its own label map


def test_folder_without_class_names_or_pairs_fails_clearly(tmp_path):
    with pytest.raises(DataSourceError, match="class_names.txt"):
        sources.class_names(f"folder:{tmp_path}")
    with pytest.raises(DataSourceError, match="images/ and a labels/"):
        sources.load(f"folder:{tmp_path}")
    with pytest.raises(DataSourceError, match="unknown data source"):
        sources.load("tfds:voc/2012")
