"""The shared detection recipe layer: data, serving from image bytes, bad images, class names."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines import images
from pipelines.detection import sources
from tfmodels.config import ConfigError, resolve
from tfmodels.recipes import detection
from tfmodels.recipes.detection import BoxCoder, DetectionConfig, Detector


class FixedBoxes(BoxCoder):
    """Decodes to the same candidate boxes and class scores for every image (a hand-built detector)."""

    loss_parts = ("zero",)

    def __init__(self, boxes, scores, **kwargs):
        super().__init__(**kwargs)
        self.boxes, self.scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)

    def encode(self, gt):
        return gt["num_boxes"]

    def loss(self, targets, outputs):
        return {"zero": tf.reduce_sum(outputs) * 0.0}

    def decode(self, outputs):
        batch = tf.shape(outputs)[0]
        tile = lambda x: tf.tile(tf.constant(x)[None], [batch] + [1] * x.ndim)  # noqa: E731
        return tile(self.boxes), tile(self.scores)


def fixed_detector(size, boxes, scores, **settings):
    pixels = keras.Input((size, size, 3))
    network = keras.Model(pixels, keras.layers.GlobalAveragePooling2D()(pixels))
    settings = {**settings, "num_classes": len(scores[0])}
    return Detector(network, FixedBoxes(boxes, scores), **settings)


def png(height, width, value=128):
    return images.encode_png(tf.fill([height, width, 3], float(value))).numpy()


def serve(cfg, model, image_bytes):
    endpoint = detection.serving(cfg, model).endpoints["serving_default"]
    graph = tf.function(endpoint.fn, input_signature=[tf.TensorSpec([None], tf.string)])  # as exported
    return {k: v.numpy() for k, v in graph(tf.constant(image_bytes, tf.string)).items()}


def test_served_boxes_map_back_to_the_original_pixels_of_images_of_other_sizes():
    # A 100 x 200 (h x w) image letterboxed into 64 x 64: scale 64/200 = 0.32, resized to 32 x 64,
    # 16 rows of padding above. A box [16, 24, 48, 40] on the model input is therefore
    # x: 16/0.32 = 50, 48/0.32 = 150; y: (24-16)/0.32 = 25, (40-16)/0.32 = 75 in the image.
    # The second box reaches into the padding and out of the image: clipped to [0, 200] x [0, 100].
    cfg = resolve(DetectionConfig, "default", {"image_size": 64})
    boxes = [[16.0, 24.0, 48.0, 40.0], [0.0, 0.0, 80.0, 20.0]]
    scores = [[0.9, 0.0], [0.0, 0.6]]
    model = fixed_detector(64, boxes, scores)
    served = serve(cfg, model, [png(100, 200), png(64, 64)])
    np.testing.assert_allclose(served["detection_boxes"][0, :2], [[50, 25, 150, 75], [0, 0, 200, 12.5]], atol=1e-4)
    # The second image is the model size: letterbox and map back are the identity (the clip too).
    np.testing.assert_allclose(served["detection_boxes"][1, :2], [[16, 24, 48, 40], [0, 0, 64, 20]], atol=1e-4)
    np.testing.assert_array_equal(served["num_detections"], [2, 2])
    np.testing.assert_array_equal(served["detection_classes"][:, :3], [[0, 1, -1]] * 2)
    np.testing.assert_allclose(served["detection_scores"][0, :3], [0.9, 0.6, 0.0])
    assert served["detection_class_names"][0, :3].tolist() == [b"0", b"1", b""]
    assert served["detection_boxes"].shape == (2, cfg.max_detections, 4)
    np.testing.assert_array_equal(served["detection_boxes"][:, 2:], 0.0)  # padding rows


def test_portrait_images_are_padded_left_and_right():
    # 200 x 50 (h x w) into 40 x 40: scale 0.2, resized to 40 x 10, 15 columns of padding on the left.
    cfg = resolve(DetectionConfig, "default", {"image_size": 40})
    model = fixed_detector(40, [[15.0, 4.0, 25.0, 36.0]], [[0.8]])
    served = serve(cfg, model, [png(200, 50)])
    np.testing.assert_allclose(served["detection_boxes"][0, 0], [0, 20, 50, 180], atol=1e-4)


def test_a_bright_rectangle_is_found_where_it_is_in_the_original_image():
    """An image-dependent check: a 'network' that returns the pixels and a coder that boxes the bright ones."""

    class BrightBox(FixedBoxes):
        def decode(self, outputs):
            bright = tf.reduce_mean(outputs, axis=-1) > 127.5  # [B, H, W]
            columns, rows = tf.reduce_any(bright, axis=1), tf.reduce_any(bright, axis=2)
            first = lambda m: tf.cast(tf.argmax(tf.cast(m, tf.int32), axis=1), tf.float32)  # noqa: E731
            last = lambda m: tf.cast(tf.shape(m)[1], tf.float32) - first(tf.reverse(m, [1]))  # noqa: E731
            boxes = tf.stack([first(columns), first(rows), last(columns), last(rows)], axis=-1)
            return boxes[:, None, :], tf.ones([tf.shape(boxes)[0], 1, 1])

    pixels = keras.Input((64, 64, 3))
    model = Detector(keras.Model(pixels, keras.layers.Identity()(pixels)), BrightBox([[0, 0, 1, 1]], [[1.0]]), num_classes=1)
    canvas = np.zeros((100, 200, 3), np.float32)
    canvas[25:75, 50:150] = 255.0  # rows 25..74, columns 50..149: the box [50, 25, 150, 75]
    cfg = resolve(DetectionConfig, "default", {"image_size": 64})
    served = serve(cfg, model, [images.encode_png(canvas).numpy()])
    # One model pixel is 1 / 0.32 = 3.125 image pixels: the antialiased edges may move a box by one.
    np.testing.assert_allclose(served["detection_boxes"][0, 0], [50, 25, 150, 75], atol=3.2)


@pytest.mark.parametrize("bad, message", [(b"", "empty"), (b"not an image", "image")])
def test_empty_or_corrupt_bytes_fail_the_request_with_a_clear_error(bad, message):
    cfg = resolve(DetectionConfig, "default", {"image_size": 32})
    model = fixed_detector(32, [[0.0, 0.0, 8.0, 8.0]], [[0.9]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(cfg, model, [png(32, 32), bad])


def test_a_one_pixel_image_is_served_with_boxes_inside_it():
    cfg = resolve(DetectionConfig, "default", {"image_size": 32})
    model = fixed_detector(32, [[4.0, 4.0, 20.0, 30.0]], [[0.9]])
    served = serve(cfg, model, [png(1, 1)])
    assert served["num_detections"].tolist() == [1]
    np.testing.assert_allclose(served["detection_boxes"][0, 0], [0.125, 0.125, 0.625, 0.9375], atol=1e-5)  # box / 32
    assert np.all((served["detection_boxes"] >= 0) & (served["detection_boxes"] <= 1))


def test_score_threshold_and_max_detections_come_from_the_config():
    cfg = resolve(DetectionConfig, "default", {"image_size": 32, "max_detections": 2, "score_threshold": 0.5})
    boxes = [[0, 0, 4, 4], [10, 10, 14, 14], [20, 20, 24, 24], [0, 20, 4, 24]]
    model = fixed_detector(32, boxes, [[0.9], [0.7], [0.6], [0.4]], **detection.detector_settings(cfg))
    served = serve(cfg, model, [png(32, 32)])
    assert served["detection_scores"].shape == (1, 2)
    np.testing.assert_allclose(served["detection_scores"][0], [0.9, 0.7])


def test_class_names_are_read_from_the_run_folder(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "class_names.json").write_text(json.dumps(["cat", "dog"]))
    cfg = resolve(DetectionConfig, "default", {"image_size": 32})
    assert detection.class_names(cfg) == [str(d) for d in range(10)]  # outside a run: the source's
    in_run = resolve(DetectionConfig, "default", {"image_size": 32})
    in_run.run_dir = str(tmp_path)
    assert detection.class_names(in_run) == ["cat", "dog"]
    assert detection.detector_settings(in_run)["num_classes"] == 2
    model = fixed_detector(32, [[0, 0, 8, 8], [8, 8, 16, 16]], [[0.0, 0.9], [0.8, 0.0]])
    served = serve(in_run, model, [png(32, 32)])
    assert served["detection_class_names"][0, :2].tolist() == [b"dog", b"cat"]


def test_datasets_letterbox_scenes_and_their_boxes_to_the_model_size():
    cfg = resolve(DetectionConfig, "default", {"image_size": 64, "num_scenes": (4, 2, 3)})
    splits = detection.datasets(cfg)
    original = next(iter(sources.load("embedded", seed=cfg.data_seed, max_boxes=cfg.max_boxes, num_scenes=(4, 2, 3)).test))
    image, gt = next(iter(splits.test))
    assert image.shape == (64, 64, 3) and image.dtype == tf.float32
    assert set(gt) == {"boxes", "classes", "num_boxes"} and gt["boxes"].shape == (cfg.max_boxes, 4)
    # 128 x 128 scenes into 64 x 64: every coordinate halves, padding rows stay 0 / -1.
    np.testing.assert_allclose(gt["boxes"].numpy(), original["boxes"].numpy() / 2, atol=1e-5)
    np.testing.assert_array_equal(gt["classes"].numpy(), original["classes"].numpy())
    assert int(gt["num_boxes"]) == int(original["num_boxes"])
    assert sum(1 for _ in splits.test) == 3


def test_train_transform_keeps_batches_consistent_and_is_off_without_augmentation():
    off = resolve(DetectionConfig, "default", {"scale_range": (1.0, 1.0)})
    assert detection.train_transform(off) is None
    cfg = resolve(DetectionConfig, "default", {"image_size": 64, "num_scenes": (8, 1, 1), "flip": True})
    images_batch, gt = next(iter(detection.datasets(cfg).train.batch(8)))
    transform = detection.train_transform(cfg)
    out_images, out_gt = transform(images_batch, gt)
    assert out_images.shape == images_batch.shape and set(out_gt) == set(gt)
    assert np.all(out_gt["num_boxes"].numpy() <= gt["num_boxes"].numpy())  # crops may only remove boxes
    again = transform(images_batch, gt)[1]["boxes"].numpy()
    np.testing.assert_array_equal(out_gt["boxes"].numpy(), again)  # seeded by run seed and batch
    valid = np.arange(cfg.max_boxes)[None, :] < out_gt["num_boxes"].numpy()[:, None]
    boxes = out_gt["boxes"].numpy()[valid]
    assert np.all(boxes[:, 2:] > boxes[:, :2]) and np.all((boxes >= 0) & (boxes <= 64))


def test_config_rejects_bad_shared_settings():
    with pytest.raises(ConfigError, match="num_scenes"):
        resolve(DetectionConfig, "default", {"num_scenes": (10, 2)})
    with pytest.raises(ConfigError, match="scale_range"):
        resolve(DetectionConfig, "default", {"scale_range": (2.0, 1.0)})
    assert detection.compile_args(resolve(DetectionConfig)) == {}
