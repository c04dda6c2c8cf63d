"""R-CNN's per-proposal CNN against Fast R-CNN's shared pass, on the same proposals.

The notes' point (notes-002-part2.md §9, seed 002 L2125-2140): R-CNN runs its CNN on every warped
proposal, so its cost grows with the proposals; Fast R-CNN runs the backbone once per image and
only RoI pooling and the fully connected head per proposal.

Both recipes at their ``default`` presets (random weights: the cost depends on the shapes only),
on a batch of ``--batch`` random 128² images and the same ``N`` proposals per image (the first
``N`` of R-CNN's 1,536 sliding windows), for each ``N`` in ``--proposals``, timed in alternating
rounds in one process under ``tf.function``:

- ``ours`` = Fast R-CNN: backbone on the image, RoI pooling of the ``N`` boxes, box head;
- the reference = R-CNN: warp of the ``N`` boxes, the crop CNN on each warp, SVM / box heads.

Items are images; FLOPs per image are ``2 · MACs`` of the ``Conv2D`` and ``Dense`` layers
(:func:`common.conv_dense_macs`): R-CNN's grow as ``N ×`` the crop CNN's, Fast R-CNN's as the
backbone's plus ``N ×`` the head's.

Run: ``make bench`` or ``python benchmarks/bench_region_cost.py [--proposals 64,512,1536] [--batch 2]``.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import keras
import numpy as np
import tensorflow as tf

from tfmodels import registry
from tfmodels.config import resolve


def build(name: str, preset: str):
    """A recipe's model at ``preset``, random weights."""
    recipe = registry.get(name)
    keras.utils.set_random_seed(0)
    return recipe.model(resolve(recipe.config, preset))


def rcnn_forward(rcnn, pixels: tf.Tensor, boxes: tf.Tensor):
    """R-CNN on the given boxes: warp each, the crop CNN on each warp, the heads."""
    warp, per_region, heads = (rcnn.network.get_layer(name) for name in ("warp", "per_region", "heads"))

    @tf.function
    def run():
        features = per_region(warp.warp(pixels, boxes), training=False)
        return heads([features, features], training=False)

    return run


def fast_rcnn_forward(fast_rcnn, pixels: tf.Tensor, boxes: tf.Tensor):
    """Fast R-CNN on the given boxes: one backbone pass, RoI pooling of each box, the box head."""

    @tf.function
    def run():
        features = fast_rcnn.network(pixels, training=False)["features"]
        return fast_rcnn.box_head(fast_rcnn.coder.roi_features(features, boxes), training=False)

    return run


def repeated(fn, steps: int):
    """A run of ``steps`` calls of ``fn`` that waits for every result."""

    def run():
        for _ in range(steps):
            tf.nest.map_structure(lambda tensor: tensor.numpy(), fn())

    return run


def main() -> None:
    parser = common.argument_parser(__doc__, steps=3)
    parser.add_argument("--proposals", default="64,512,1536", help="comma-separated proposals per image")
    parser.add_argument("--batch", type=int, default=2)
    args = common.parse_args(parser, quick={"batch": 1, "proposals": "16,64"})
    preset = "tiny" if args.quick else "default"
    rcnn, fast_rcnn = build("rcnn", preset), build("fast_rcnn", preset)
    size = rcnn.network.input_shape[1]
    if fast_rcnn.network.input_shape[1] != size:
        raise SystemExit(f"the two presets differ in image size: {size} and {fast_rcnn.network.input_shape[1]}")
    pixels = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch, size, size, 3)).astype("float32"))
    windows = rcnn.coder.windows
    crop_macs = common.conv_dense_macs(rcnn.crop_network)
    backbone_macs, head_macs = common.conv_dense_macs(fast_rcnn.network), common.conv_dense_macs(fast_rcnn.box_head)
    for count in (int(n) for n in args.proposals.split(",")):
        if not 0 < count <= len(windows):
            raise SystemExit(f"--proposals: each count must be in 1..{len(windows)}, got {count}")
        boxes = tf.tile(tf.constant(windows[:count], tf.float32)[None], [args.batch, 1, 1])
        runs = {
            "ours": repeated(fast_rcnn_forward(fast_rcnn, pixels, boxes), args.steps),
            "R-CNN (CNN per warped proposal)": repeated(rcnn_forward(rcnn, pixels, boxes), args.steps),
        }
        for run in runs.values():
            for _ in range(args.warmup):
                run()
        flops = {"Fast R-CNN": 2 * (backbone_macs + count * head_macs), "R-CNN": 2 * count * crop_macs}
        common.header(
            f"{count} proposals per image, batch {args.batch}, {size}x{size}: GFLOP per image "
            + ", ".join(f"{name} {value / 1e9:.3g}" for name, value in flops.items()), args,
        )
        common.compare(
            f"Fast R-CNN's shared pass vs R-CNN, {count} proposals", runs, items_per_run=args.steps * args.batch,
            unit="images", flops_per_item=None, args=args, target=None,
        )


if __name__ == "__main__":
    main()
