"""DeepLabV3+ train-step throughput: tfmodels' ``deeplab_v3_plus`` vs keras-hub's ``DeepLabV3ImageSegmenter``.

Equal sizes: keras-hub's model is built first (a keras-hub ``ResNetBackbone`` image encoder, ASPP on
its stride-32 "P5" map with rates 6/12/18, decoder on "P2" with 48 channels: the layout of its
``deeplab_v3_plus_resnet50_pascalvoc`` preset), and ours is
:func:`tfmodels.models.deeplab_keras_hub.deeplab_from_keras_hub` of it: the same encoder, the same
layers and weights, the same outputs. Same batch, resolution, optimizer (SGD with momentum), loss and
Keras dtype policy (``--precision``), timed in alternating rounds in one process after a warm-up.

The one difference in work: keras-hub up-samples the 256-channel decoder features x4 and then applies
the 1x1 classifier at full resolution; ours applies the classifier at stride 4 and up-samples the
logits (the papers' order, equal outputs; see ``tfmodels/models/deeplab.py``). ASPP's image-pooling
branch is a broadcast in ours, a bilinear resize of a 1x1 map in keras-hub's.

FLOPs per image of a train step: ``6 · MACs`` (2 FLOPs per multiply-add, train ≈ 3 × forward), the
forward multiply-adds counted on keras-hub's model (its Conv2D layers, ASPP's included): the work of
the network as keras-hub runs it, so ours is credited with the classifier MACs it saves.

Run: ``make bench`` or ``python benchmarks/bench_deeplab.py [--precision bfloat16] [--depth 50]
[--size 128] [--batch 4] [--steps 3]``. Defaults are sized for a 2-core CPU; on a GPU use
``--size 512 --batch 16``. ``--quick`` uses a one-block-per-stage ResNet at 64x64.
"""

import math

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import keras
import keras_hub
import tensorflow as tf

from tfmodels.models.deeplab_keras_hub import deeplab_from_keras_hub

NUM_CLASSES = 21
ENCODERS = {  # --depth -> keras-hub ResNetBackbone (block type, blocks per stage)
    0: ("basic_block", [1, 1, 1, 1]),  # --quick: a one-block-per-stage ResNet
    18: ("basic_block", [2, 2, 2, 2]),
    50: ("bottleneck_block", [3, 4, 6, 3]),
}


def keras_hub_deeplab_v3_plus(depth: int, size: int):
    """keras-hub's DeepLabV3+ on a random ResNet encoder, with the preset's head settings."""
    block_type, blocks = ENCODERS[depth]
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=blocks, stackwise_num_strides=[1, 2, 2, 2], block_type=block_type, image_shape=(size, size, 3),
    )
    backbone = keras_hub.models.DeepLabV3Backbone(
        encoder, spatial_pyramid_pooling_key="P5", upsampling_size=8, dilation_rates=[6, 12, 18],
        low_level_feature_key="P2", projection_filters=48, image_shape=(size, size, 3),
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone, num_classes=NUM_CLASSES)


def forward_macs(segmenter, size: int) -> int:
    """Conv2D multiply-adds of one image: the functional graph, plus the Conv2Ds inside keras-hub's ASPP layer."""
    (aspp,) = [layer for layer in segmenter.backbone.layers if type(layer).__name__ == "SpatialPyramidPooling"]
    positions = (size // 32) ** 2
    aspp_macs = 0
    for sequential in [*aspp.aspp_parallel_channels, aspp.projection]:
        for layer in sequential.layers:
            if isinstance(layer, keras.layers.Conv2D):
                pooled = any(isinstance(sub, keras.layers.GlobalAveragePooling2D) for sub in sequential.layers)
                aspp_macs += math.prod(layer.kernel.shape) * (1 if pooled else positions)
    return common.conv_dense_macs(segmenter) + aspp_macs


def main() -> None:
    parser = common.argument_parser(__doc__, steps=3)
    parser.add_argument("--depth", type=int, choices=[18, 50], default=50, help="the ResNet image encoder")
    parser.add_argument("--size", type=int, default=128, help="image side, a multiple of 32")
    parser.add_argument("--batch", type=int, default=4)
    args = common.parse_args(parser, quick={"depth": 0, "size": 64, "batch": 2})
    x = tf.random.uniform((args.batch, args.size, args.size, 3), 0, 1)
    y = tf.random.uniform((args.batch, args.size, args.size), 0, NUM_CLASSES, dtype=tf.int32)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    keras.utils.set_random_seed(0)
    reference = keras_hub_deeplab_v3_plus(args.depth, args.size)
    ours = deeplab_from_keras_hub(reference)
    macs = forward_macs(reference, args.size)
    encoder = f"ResNet-{args.depth}" if args.depth else "ResNet (1 block per stage)"
    common.header(
        f"DeepLabV3+ train step ({encoder} encoder, ASPP on stride 32): batch {args.batch}, {args.size}x{args.size}, "
        f"{NUM_CLASSES} classes, {macs / 1e9:.3g} GMAC forward; SGD", args,
    )
    # keras-hub's graph in a plain keras.Model: its layers as they are, without the Task's "auto"
    # accuracy metric and its fit() wrapper, so both sides run only the loss and the update
    reference_graph = keras.Model(reference.input, reference.output)
    runs = common.fit_runs(
        {"ours": ours, "keras_hub.DeepLabV3ImageSegmenter": reference_graph}, data,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True), lambda: keras.optimizers.SGD(0.01, momentum=0.9), args,
    )
    common.compare(
        "DeepLabV3+ train step", runs, items_per_run=args.steps * args.batch, unit="images", flops_per_item=6 * macs, args=args
    )


if __name__ == "__main__":
    main()
