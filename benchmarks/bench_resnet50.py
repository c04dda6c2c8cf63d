"""ResNet-50 train-step throughput: tfmodels' ``resnet50`` vs ``keras.applications.ResNet50``.

Same architecture (ours copies keras.applications' weights exactly), same batch, resolution,
optimizer (SGD with momentum) and loss, same Keras dtype policy (``--precision``), timed in
alternating rounds in one process after a warm-up. Ours also runs its in-model preprocessing
(RGB→BGR, mean subtraction), which keras.applications leaves to the caller.

FLOPs per image of a train step: ``6 · MACs`` (2 FLOPs per multiply-add, train ≈ 3 × forward),
with the forward multiply-adds ``MACs = Σ_Conv2D k_h·k_w·C_in·C_out·H_out·W_out + Σ_Dense
d_in·d_out`` counted from the reference model's layers: 3.86 G at 224² (He et al. 2016, Table 1:
"3.8 × 10⁹ FLOPs", which are multiply-adds), 1.26 G at 128² (the convolutions scale with the
pixel count; 128 is a multiple of the network's stride 32). Batch norm, ReLU and pooling are not
counted.

Run: ``make bench`` or ``python benchmarks/bench_resnet50.py [--precision bfloat16] [--size 128] [--batch 16] [--steps 5]``.
The defaults are sized for a 2-core CPU; use ``--size 224 --batch 64`` on a GPU.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import keras
import tensorflow as tf

from tfmodels.models.resnet import build_resnet50


def main() -> None:
    parser = common.argument_parser(__doc__, steps=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    args = common.parse_args(parser, quick={"size": 32, "batch": 2})
    shape = (args.size, args.size, 3)
    x = tf.random.uniform((args.batch, *shape), 0, 255)
    y = tf.one_hot(tf.range(args.batch) % 1000, 1000)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(weights=None, input_shape=shape, classifier_activation=None)
    keras.utils.set_random_seed(0)
    ours = build_resnet50(num_classes=1000, input_shape=shape)
    macs = common.conv_dense_macs(reference)
    common.header(f"ResNet-50 train step: batch {args.batch}, {args.size}x{args.size}, {macs / 1e9:.3g} GMAC forward; SGD", args)
    runs = common.fit_runs(
        {"ours": ours, "keras.applications.ResNet50": reference}, data,
        keras.losses.CategoricalCrossentropy(from_logits=True), lambda: keras.optimizers.SGD(0.01, momentum=0.9), args,
    )
    common.compare(
        "ResNet-50 train step", runs, items_per_run=args.steps * args.batch, unit="images", flops_per_item=6 * macs, args=args
    )


if __name__ == "__main__":
    main()
