"""Detector serving cost: the exported signatures against the bare forward pass, and our NMS.

For each detector recipe (``--models``, default every one: Detection I's and II's, at their ``default``
presets, random weights: the cost does not depend on what was learnt, only on the shapes), the
script exports the recipe's serving signatures with ``keras.export.ExportArchive`` (as ``tfmodels
export`` does) into a temporary folder, loads the SavedModel back, and times in alternating rounds
in one process, on the same batch of ``--batch`` random 0..255 images at the model size:

- ``serving_default``: PNG bytes in, finished detections out (decode, letterbox, network, box
  decoding, NMS, rescale to the original pixels);
- ``predict_pixels``: float pixels in, detections out (network, decoding, NMS);
- against the bare forward pass: the recipe's functional network alone under ``tf.function``
  (for the two-stage detectors the backbone and RPN; for R-CNN the CNN on every window).

The ratio served / bare (below 1) shows what the post-processing costs; the PNG decoding is part
of ``serving_default``'s cost, as on a real server.

Then our multiclass NMS (``pipelines.detection.nms.multiclass_non_max_suppression``: the
padded, served form with ``num_detections`` and class -1 on padding) against
``tf.image.combined_non_max_suppression`` alone on the same decoded boxes and scores of
``ssd`` (``[B, N, C]``; N = 5,444 anchors for ``ssd``), both under ``tf.function``.

FLOPs per image of the forward pass: ``2 · MACs`` of the network's ``Conv2D`` and ``Dense``
layers (:func:`common.conv_dense_macs`); NMS does no matmul work, so it has no share of the peak.

Run: ``make bench`` or ``python benchmarks/bench_detector.py [--precision bfloat16] [--models ssd] [--batch 8] [--steps 5]``.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import tempfile

import keras
import numpy as np
import tensorflow as tf

from pipelines.detection.nms import multiclass_non_max_suppression
from tfmodels import registry
from tfmodels.config import resolve

DETECTORS = "ssd,yolo_v1,centernet,localizer,rcnn,fast_rcnn,faster_rcnn,mask_rcnn,detr"


def build(name: str, quick: bool):
    """A detector recipe's config and model at ``default`` (``tiny`` under ``--quick``), random weights."""
    recipe = registry.get(name)
    cfg = resolve(recipe.config, "tiny" if quick else "default")
    keras.utils.set_random_seed(0)
    return recipe, cfg, recipe.model(cfg)


def exported_signatures(recipe, cfg, model, folder: str) -> dict:
    """The recipe's serving signatures, exported to ``folder`` and loaded back from the SavedModel."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, endpoint in recipe.serving(cfg, model).endpoints.items():
        archive.add_endpoint(name, endpoint.positional(), endpoint.input_signature())
    archive.write_out(folder, verbose=False)
    return tf.saved_model.load(folder).signatures


def repeated(fn, steps: int):
    """A run of ``steps`` calls of ``fn`` that waits for every result."""

    def run():
        for _ in range(steps):
            tf.nest.map_structure(lambda tensor: tensor.numpy(), fn())

    return run


def compare_serving(name: str, args) -> None:
    """Times the served signatures against the bare forward pass."""
    recipe, cfg, model = build(name, args.quick)
    size = cfg.image_size
    pixels = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch, size, size, 3)).astype("float32"))
    png = tf.stack([tf.io.encode_png(tf.cast(image, tf.uint8)) for image in pixels])
    forward = tf.function(lambda: model.network(pixels, training=False))
    windows = getattr(model.coder, "windows", None)  # R-CNN's heads run on any number of windows
    macs = common.conv_dense_macs(model.network, unknown_positions=None if windows is None else len(windows))
    common.header(f"{name} serving: batch {args.batch}, {size}x{size}, {macs / 1e9:.3g} GMAC forward", args)
    with tempfile.TemporaryDirectory() as folder:
        signatures = exported_signatures(recipe, cfg, model, folder)
        served = {
            "serving_default (PNG bytes)": lambda: signatures["serving_default"](image_bytes=png),
            "predict_pixels": lambda: signatures["predict_pixels"](pixels=pixels),
        }
        for label, call in served.items():
            runs = {"ours": repeated(call, args.steps), "bare forward pass": repeated(forward, args.steps)}
            for run in runs.values():
                for _ in range(args.warmup):
                    run()
            common.compare(
                f"{name} {label} vs the bare forward pass", runs, items_per_run=args.steps * args.batch,
                unit="images", flops_per_item=2 * macs, args=args, target=None,
            )


def decoded_boxes_and_scores(name: str, args) -> tuple[tf.Tensor, tf.Tensor]:
    """A one-stage detector's decoded ``boxes [B, N, 4]`` and ``scores [B, N, C]`` on random images: NMS's input."""
    _, cfg, model = build(name, args.quick)
    size = cfg.image_size
    pixels = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch, size, size, 3)).astype("float32"))
    boxes, scores = model.coder.decode(model.network(pixels, training=False))
    return tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32)


def compare_nms(boxes: tf.Tensor, scores: tf.Tensor, cfg_max: int, args) -> None:
    """Our padded multiclass NMS against ``tf.image.combined_non_max_suppression`` on the same input."""
    settings = dict(iou_threshold=0.5, score_threshold=0.05)
    ours = tf.function(lambda: multiclass_non_max_suppression(boxes, scores, cfg_max, **settings))
    reference = tf.function(
        lambda: tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores, cfg_max, cfg_max, pad_per_class=False, clip_boxes=False, **settings
        )
    )
    runs = {"ours": repeated(ours, args.steps * 4), "tf.image.combined_non_max_suppression": repeated(reference, args.steps * 4)}
    for run in runs.values():
        run()
    batch, candidates, classes = scores.shape
    common.header(f"multiclass NMS: batch {batch}, {candidates} boxes x {classes} classes, keep {cfg_max}", args)
    common.compare("multiclass NMS", runs, items_per_run=args.steps * 4 * batch, unit="images", flops_per_item=None, args=args)


def main() -> None:
    parser = common.argument_parser(__doc__, steps=5)
    parser.add_argument("--models", default=DETECTORS, help="comma-separated detector recipes")
    parser.add_argument("--batch", type=int, default=8)
    args = common.parse_args(parser, quick={"batch": 2, "models": "ssd"})
    for name in args.models.split(","):
        compare_serving(name, args)
    compare_nms(*decoded_boxes_and_scores("ssd", args), 100, args)


if __name__ == "__main__":
    main()
