"""Detection sources: padding, digit scenes, TFDS voc/coco (mocked, offline), COCO-JSON and VOC-XML folders."""

import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines.detection import coco_json, digit_scenes, sources, voc_xml
from pipelines.sources import DataSourceError


# --- padding -------------------------------------------------------------------------------------


def test_pad_keeps_the_largest_boxes_in_their_order():
    # areas 4, 25, 1, 12: the two largest are rows 1 and 3
    boxes = tf.constant([[0, 0, 2, 2], [0, 0, 5, 5], [1, 1, 2, 2], [0, 0, 4, 3]], tf.float32)
    masks = tf.constant(np.arange(4)[:, None, None] * np.ones((4, 2, 3)), tf.uint8)
    padded = sources.pad_boxes({"boxes": boxes, "classes": tf.constant([7, 8, 9, 6]), "masks": masks}, 2)
    np.testing.assert_array_equal(padded["boxes"].numpy(), [[0, 0, 5, 5], [0, 0, 4, 3]])
    np.testing.assert_array_equal(padded["classes"].numpy(), [8, 6])
    np.testing.assert_array_equal(padded["masks"].numpy()[:, 0, 0], [1, 3])
    assert int(padded["num_boxes"]) == 2


def test_pad_fills_with_zero_boxes_and_minus_one_classes_under_unknown_shapes():
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([None], tf.int32)])
    def pad(boxes, classes):
        return sources.pad_boxes({"boxes": boxes, "classes": classes}, 4)

    padded = pad(tf.constant([[1, 2, 3, 4]], tf.float32), tf.constant([5]))
    np.testing.assert_array_equal(padded["boxes"].numpy(), [[1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(padded["classes"].numpy(), [5, -1, -1, -1])
    assert int(padded["num_boxes"]) == 1
    empty = pad(tf.zeros([0, 4]), tf.zeros([0], tf.int32))
    assert int(empty["num_boxes"]) == 0 and (empty["classes"].numpy() == -1).all()


def test_pad_reads_only_the_first_num_boxes_rows_of_a_padded_element():
    element = {"boxes": tf.constant([[0, 0, 1, 1], [0, 0, 3, 3], [0, 0, 0, 0]], tf.float32),
               "classes": tf.constant([4, 2, -1]), "num_boxes": tf.constant(2)}
    padded = sources.pad_boxes(element, 1)
    np.testing.assert_array_equal(padded["boxes"].numpy(), [[0, 0, 3, 3]])
    assert padded["classes"].numpy().tolist() == [2] and int(padded["num_boxes"]) == 1


# --- embedded ------------------------------------------------------------------------------------


def test_embedded_source_is_padded_digit_scenes_with_optional_masks():
    splits = sources.load("embedded", seed=0, max_boxes=8, num_scenes=(4, 2, 2), masks=True)
    element = next(iter(splits.test))
    assert element["boxes"].shape == (8, 4) and element["classes"].shape == (8,)
    assert element["masks"].shape == (8, 128, 128) and element["image"].shape == (128, 128, 3)
    count = int(element["num_boxes"])
    assert (element["classes"].numpy()[count:] == -1).all() and (element["boxes"].numpy()[count:] == 0).all()
    assert splits.info["max_boxes"] == 8 and splits.info["class_names"][9] == "9"


def test_a_small_max_boxes_keeps_the_largest_digits():
    scenes = digit_scenes.splits((20, 2, 2), seed=0).train
    cut = sources.load("embedded", seed=0, max_boxes=2, num_scenes=(20, 2, 2)).train
    for full, short in zip(scenes.as_numpy_iterator(), cut.as_numpy_iterator()):
        boxes = full["boxes"][: full["num_boxes"]]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        largest = np.sort(np.argsort(-area, kind="stable")[:2])
        np.testing.assert_array_equal(short["boxes"][: short["num_boxes"]], boxes[largest])


def test_unknown_sources_and_masks_from_real_sources_are_refused():
    with pytest.raises(DataSourceError, match="accepts: embedded, tfds:<name>, coco:<name>, voc:<name>"):
        sources.load("folder:/tmp")
    with pytest.raises(DataSourceError, match="masks come only with the embedded"):
        sources.load("voc:/tmp", masks=True)


# --- TFDS (mocked: offline) ----------------------------------------------------------------------


def mocked_tfds(examples, requested):
    """``as_dataset_fn`` for ``tfds.testing.mock_data`` that yields hand-made examples."""

    def as_dataset(self, split, *args, **kwargs):
        requested.append(str(split))
        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda *xs: tf.stack(xs), *examples))

    return as_dataset


def tfds_example(bbox, label, **objects):
    return {
        "image": tf.fill([40, 80, 3], tf.constant(9, tf.uint8)),  # 40 high, 80 wide
        "objects": {"bbox": tf.constant(bbox, tf.float32), "label": tf.constant(label, tf.int64), **objects},
    }


def test_tfds_voc_boxes_become_pixel_corner_boxes():
    # [ymin, xmin, ymax, xmax] normalised in a 40x80 image -> [xmin, ymin, xmax, ymax] pixels
    example = tfds_example([[0.25, 0.125, 0.75, 0.5], [0.0, 0.0, 1.0, 1.0]], [14, 11])
    requested = []
    with tfds.testing.mock_data(as_dataset_fn=mocked_tfds([example], requested)):
        splits = sources.load("tfds:voc/2007", max_boxes=3)
        element = next(iter(splits.train))
    np.testing.assert_allclose(element["boxes"].numpy(), [[10, 10, 40, 30], [0, 0, 80, 40], [0, 0, 0, 0]])
    np.testing.assert_array_equal(element["classes"].numpy(), [14, 11, -1])
    assert element["image"].dtype == tf.float32 and element["image"].shape == (40, 80, 3)
    assert requested == ["train", "validation", "test"]
    names = splits.info["class_names"]
    assert len(names) == 20 and names[0] == "aeroplane" and names[14] == "person"


def test_tfds_coco_drops_crowd_boxes_and_tests_on_val2017():
    example = tfds_example([[0.5, 0.5, 1.0, 0.75], [0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]], [0, 5, 2],
                           is_crowd=tf.constant([False, True, False]))
    requested = []
    with tfds.testing.mock_data(as_dataset_fn=mocked_tfds([example, example], requested)):
        splits = sources.load("tfds:coco/2017", max_boxes=4)
        elements = list(splits.test.as_numpy_iterator())
    assert len(elements) == 2
    np.testing.assert_allclose(elements[0]["boxes"][:2], [[40, 20, 60, 40], [16, 4, 32, 12]], atol=1e-5)
    np.testing.assert_array_equal(elements[0]["classes"], [0, 2, -1, -1])
    assert requested == ["train[:99%]", "train[99%:]", "validation"]
    assert len(splits.info["class_names"]) == 80


def test_tfds_classes_must_match_the_runs():
    with tfds.testing.mock_data(as_dataset_fn=mocked_tfds([tfds_example([[0, 0, 1, 1]], [0])], [])):
        with pytest.raises(DataSourceError, match="the run has"):
            sources.load("tfds:voc/2007", class_names=["cat", "dog"])


# --- COCO-JSON folders ---------------------------------------------------------------------------


def write_png(path, height, width, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(tf.fill([height, width, 3], tf.constant(value, tf.uint8))).numpy())


def coco_content(file_names, sizes, annotations):
    return {
        "images": [
            {"id": i + 1, "file_name": name, "height": h, "width": w}
            for i, (name, (h, w)) in enumerate(zip(file_names, sizes))
        ],
        "annotations": [
            {"id": k + 1, "image_id": image_id, "category_id": category, "bbox": bbox, "iscrowd": crowd, "area": 1.0}
            for k, (image_id, category, bbox, crowd) in enumerate(annotations)
        ],
        # sparse COCO ids, listed out of order: ids 3 (dog) and 1 (cat) -> classes cat 0, dog 1
        "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}],
    }


@pytest.fixture
def coco_folder(tmp_path):
    """One JSON beside its images: 5 images of different sizes, one with a crowd box, one empty."""
    names = [f"img{i}.png" for i in range(5)]
    sizes = [(20, 30), (24, 16), (10, 10), (32, 32), (12, 18)]
    for i, (name, (h, w)) in enumerate(zip(names, sizes)):
        write_png(tmp_path / name, h, w, 40 * i)
    annotations = [
        (1, 3, [2, 4, 10, 6], 0),  # image 1: a dog [x, y, w, h] -> [2, 4, 12, 10]
        (1, 1, [0.5, 1.5, 3, 2], 0),  # and a cat -> [0.5, 1.5, 3.5, 3.5]
        (2, 1, [0, 0, 16, 24], 1),  # image 2: a crowd of cats, dropped
        (2, 3, [1, 1, 5, 5], 0),  # and a dog -> [1, 1, 6, 6]
        (4, 1, [10, 12, 4, 8], 0),  # image 4: a cat -> [10, 12, 14, 20]; images 3 and 5 have none
    ]
    (tmp_path / "labels.json").write_text(json.dumps(coco_content(names, sizes, annotations)))
    return tmp_path


def test_coco_json_records_are_exact(coco_folder):
    parts, names = coco_json.read(coco_folder)
    assert names == ["cat", "dog"] and list(parts) == ["all"]
    records = {path.rsplit("/", 1)[-1]: (b.tolist(), c.tolist()) for path, b, c in parts["all"]}
    assert records["img0.png"] == ([[2, 4, 12, 10], [0.5, 1.5, 3.5, 3.5]], [1, 0])
    assert records["img1.png"] == ([[1, 1, 6, 6]], [1])
    assert records["img2.png"] == ([], []) and records["img4.png"] == ([], [])
    assert records["img3.png"] == ([[10, 12, 14, 20]], [0])


def test_coco_folder_loads_seeded_splits_of_padded_elements(coco_folder):
    splits = sources.load(f"coco:{coco_folder}", seed=0, max_boxes=3)
    assert splits.info["class_names"] == ["cat", "dog"]
    assert splits.info["sizes"] == {"train": 3, "validation": 1, "test": 1}
    elements = [e for ds in (splits.train, splits.validation, splits.test) for e in ds.as_numpy_iterator()]
    assert len(elements) == 5
    by_shade = {int(e["image"][0, 0, 0]) // 40: e for e in elements}  # image i is filled with 40 * i
    first = by_shade[0]
    assert first["image"].shape == (20, 30, 3) and first["image"].dtype == np.float32
    np.testing.assert_allclose(first["boxes"], [[2, 4, 12, 10], [0.5, 1.5, 3.5, 3.5], [0, 0, 0, 0]])
    np.testing.assert_array_equal(first["classes"], [1, 0, -1])
    assert by_shade[2]["num_boxes"] == 0 and by_shade[1]["image"].shape == (24, 16, 3)
    again = next(sources.load(f"coco:{coco_folder}", seed=0, max_boxes=3).test.as_numpy_iterator())
    np.testing.assert_array_equal(again["image"], next(splits.test.as_numpy_iterator())["image"])  # seeded split


def test_coco_layout_with_train_and_val_files(tmp_path):
    """COCO's own layout: annotations/instances_{train,val}2017.json, images in train2017/ and val2017/."""
    for split, count in (("train2017", 10), ("val2017", 2)):
        names = [f"{split}_{i}.png" for i in range(count)]
        for name in names:
            write_png(tmp_path / split / name, 8, 8, 100)
        content = coco_content(names, [(8, 8)] * count, [(1, 1, [1, 1, 2, 2], 0)])
        (tmp_path / "annotations").mkdir(exist_ok=True)
        (tmp_path / "annotations" / f"instances_{split}.json").write_text(json.dumps(content))
    (tmp_path / "annotations" / "captions_train2017.json").write_text(json.dumps({"images": [], "annotations": []}))
    parts, _ = coco_json.read(tmp_path)
    assert sorted(parts) == ["train", "validation"]
    splits = sources.load(f"coco:{tmp_path}")
    assert splits.info["sizes"] == {"train": 9, "validation": 1, "test": 2}  # val2017 is the test split
    test_files = [path for path, _, _ in sources.assign_splits(parts, seed=0)[2]]
    assert all("/val2017/" in path for path in test_files)


def test_coco_categories_outside_the_runs_classes_are_refused(coco_folder):
    with pytest.raises(DataSourceError, match=r"categories \['dog'\] are not among"):
        coco_json.read(coco_folder, class_names=["cat", "bird"])
    parts, names = coco_json.read(coco_folder, class_names=["bird", "dog", "cat"])
    assert names == ["bird", "dog", "cat"]
    first = next(r for r in parts["all"] if r[0].endswith("img0.png"))
    assert first[2].tolist() == [1, 2]  # dog, cat in the run's ids


# --- Pascal VOC folders --------------------------------------------------------------------------


def voc_xml_text(filename, objects):
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "filename").text = filename
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        obj = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(obj, "name").text = name
        ElementTree.SubElement(obj, "difficult").text = str(difficult)
        box = ElementTree.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (xmin, ymin, xmax, ymax)):
            ElementTree.SubElement(box, key).text = str(value)
    return ElementTree.tostring(root, encoding="unicode")


@pytest.fixture
def voc_folder(tmp_path):
    objects = {
        "000001": [("dog", (1, 1, 3, 4), 0), ("person", (10, 5, 20, 15), 1)],
        "000002": [("cat", (5, 6, 5, 6), 0)],  # a single pixel: [4, 5, 5, 6]
        "000003": [("dog", (2, 3, 16, 12), 0)],
        "000004": [],
    }
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    for image_id, objs in objects.items():
        (tmp_path / "Annotations" / f"{image_id}.xml").write_text(voc_xml_text(f"{image_id}.jpg", objs))
        jpeg = tf.io.encode_jpeg(tf.fill([24, 32, 3], tf.constant(128, tf.uint8))).numpy()
        (tmp_path / "JPEGImages").mkdir(exist_ok=True)
        (tmp_path / "JPEGImages" / f"{image_id}.jpg").write_bytes(jpeg)
    for name, ids in (("train", ["000001", "000004"]), ("val", ["000002"]), ("test", ["000003"])):
        (tmp_path / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(ids) + "\n")
    return tmp_path


def test_voc_boxes_are_corner_boxes_of_one_based_inclusive_pixels(voc_folder):
    parts, names = voc_xml.read(voc_folder)
    assert names == ["cat", "dog", "person"]
    assert sorted(parts) == ["test", "train", "validation"]
    (path, boxes, classes), empty = parts["train"]
    assert path.endswith("JPEGImages/000001.jpg")
    # xmin=1..xmax=3 are pixel columns 0..2: corners [0, 3]
    np.testing.assert_array_equal(boxes, [[0, 0, 3, 4], [9, 4, 20, 15]])
    assert classes.tolist() == [1, 2] and empty[1].shape == (0, 4)
    np.testing.assert_array_equal(parts["validation"][0][1], [[4, 5, 5, 6]])


def test_voc_folder_loads_its_image_set_splits(voc_folder):
    splits = sources.load(f"voc:{voc_folder}", max_boxes=2)
    assert splits.info["sizes"] == {"train": 2, "validation": 1, "test": 1}
    element = next(iter(splits.test))
    np.testing.assert_array_equal(element["boxes"].numpy(), [[1, 2, 16, 12], [0, 0, 0, 0]])
    np.testing.assert_array_equal(element["classes"].numpy(), [1, -1])
    assert element["image"].shape == (24, 32, 3)
    np.testing.assert_allclose(element["image"].numpy(), 128, atol=2)  # JPEG


def test_voc_without_image_sets_is_split_by_seed_and_unknown_names_are_refused(voc_folder):
    for path in (voc_folder / "ImageSets" / "Main").iterdir():
        path.unlink()
    parts, _ = voc_xml.read(voc_folder)
    assert list(parts) == ["all"] and len(parts["all"]) == 4
    with pytest.raises(DataSourceError, match=r"\['person'\] are not among"):
        sources.load(f"voc:{voc_folder}", class_names=["cat", "dog"])


def test_corrupt_images_are_skipped(voc_folder):
    (voc_folder / "JPEGImages" / "000004.jpg").write_bytes(b"not a jpeg")
    splits = sources.load(f"voc:{voc_folder}")
    assert len(list(splits.train)) == 1
