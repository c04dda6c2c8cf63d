"""Vision-transformer train steps: ``vit`` vs keras-hub's ``ViTImageClassifier`` (ViT-S/16) and ``swin`` vs
keras-hub's ``SwinTransformerImageClassifier`` (Swin-T), at equal sizes.

Equal sizes: each keras-hub classifier is built first with random weights, and ours is converted
from it (:func:`tfmodels.models.vit_keras_hub.from_keras_hub`,
:func:`tfmodels.models.swin_keras_hub.swin_from_keras_hub` + global pooling + the same head): the
same layers, weights and outputs (tests/models/test_vit_keras_hub.py, test_swin_keras_hub.py).
Same batch, resolution, optimizer (AdamW), loss and Keras dtype policy (``--precision``), timed in
alternating rounds in one process after a warm-up. keras-hub's graphs run as plain
``keras.Model``s (its Task's metrics and ``fit`` wrapper left out, as in ``bench_deeplab.py``).
Ours also normalises raw pixels inside (one multiply-add per pixel; keras-hub does it in its
preprocessor, outside the graph).

FLOPs per image of a train step: ``6 · MACs`` (train ≈ 3 × forward), the forward multiply-adds in
closed form: ViT ``N·p²·3·D + L·(N·(4D² + 2D·M) + 2N²·D) + D·K`` (N patches, projections, MLP,
the two attention matmuls); Swin per block ``N·(4C² + 2C·rC) + 2N·w²·C`` (w² tokens per window),
``N/4·4C·2C`` per patch merging, the patch embedding and the head. Norms, softmax and biases are
left out, as usual.

Run: ``make bench`` or ``python benchmarks/bench_vision_transformers.py [--precision bfloat16]
[--vit-size 96] [--swin-size 224] [--batch 4] [--steps 2]``. ``--quick`` uses two-layer models at
small sizes.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import keras
import keras_hub
import tensorflow as tf

from tfmodels.models.swin_keras_hub import swin_from_keras_hub
from tfmodels.models.vit_keras_hub import from_keras_hub

NUM_CLASSES = 10
VIT_S16 = {"patch_size": 16, "num_layers": 12, "num_heads": 6, "hidden_dim": 384, "mlp_dim": 1536}  # ViT-S/16
SWIN_T = {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7, "patch_size": 4}
QUICK_VIT = {**VIT_S16, "num_layers": 2}
QUICK_SWIN = {"embed_dim": 32, "depths": [2, 2], "num_heads": [2, 4], "window_size": 4, "patch_size": 4}


def vit_forward_macs(size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int) -> int:
    """Closed-form multiply-adds of one image through a ViT with a class token and a linear head."""
    del num_heads  # the head split does not change the work
    n = (size // patch_size) ** 2 + 1
    block = n * (4 * hidden_dim**2 + 2 * hidden_dim * mlp_dim) + 2 * n * n * hidden_dim
    return (n - 1) * patch_size**2 * 3 * hidden_dim + num_layers * block + hidden_dim * NUM_CLASSES


def swin_forward_macs(size: int, embed_dim: int, depths, num_heads, window_size: int, patch_size: int) -> int:
    """Closed-form multiply-adds of one image through a Swin classifier (MLP ratio 4)."""
    del num_heads
    side, channels = size // patch_size, embed_dim
    macs = side * side * patch_size**2 * 3 * embed_dim
    for stage, depth in enumerate(depths):
        if stage:
            macs += (side // 2) ** 2 * 4 * channels * 2 * channels  # patch merging
            side, channels = side // 2, channels * 2
        tokens, window = side * side, min(window_size, side)
        macs += depth * (tokens * (4 * channels**2 + 2 * channels * 4 * channels) + 2 * tokens * window**2 * channels)
    return macs + channels * NUM_CLASSES


def vit_pair(size: int, config: dict) -> tuple[keras.Model, keras.Model]:
    backbone = keras_hub.models.ViTBackbone(image_shape=(size, size, 3), **config)
    reference = keras_hub.models.ViTImageClassifier(backbone, num_classes=NUM_CLASSES)
    return from_keras_hub(reference, input_shape=(size, size, 3)), keras.Model(reference.input, reference.output)


def swin_pair(size: int, config: dict) -> tuple[keras.Model, keras.Model]:
    backbone = keras_hub.models.SwinTransformerBackbone(image_shape=(size, size, 3), drop_path=0.0, **config)
    reference = keras_hub.models.SwinTransformerImageClassifier(backbone, num_classes=NUM_CLASSES)
    features = swin_from_keras_hub(backbone)
    pooled = keras.layers.GlobalAveragePooling2D()(features.output)
    ours = keras.Model(features.input, keras.layers.Dense(NUM_CLASSES, dtype="float32", name="logits")(pooled))
    return ours, keras.Model(reference.input, reference.output)


def bench(title: str, pair, macs: int, size: int, args) -> None:
    x = tf.random.uniform((args.batch, size, size, 3), 0, 255)
    y = tf.random.uniform((args.batch,), 0, NUM_CLASSES, dtype=tf.int32)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    keras.utils.set_random_seed(0)
    ours, reference = pair
    common.header(f"{title}: batch {args.batch}, {size}x{size}, {macs / 1e9:.3g} GMAC forward; AdamW", args)
    runs = common.fit_runs(
        {"ours": ours, f"keras_hub.{title.split()[0]}": reference}, data,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True), lambda: keras.optimizers.AdamW(1e-4), args,
    )
    common.compare(f"{title} train step", runs, items_per_run=args.steps * args.batch, unit="images",
                   flops_per_item=6 * macs, args=args)


def main() -> None:
    parser = common.argument_parser(__doc__, steps=2)
    parser.add_argument("--vit-size", type=int, default=96, help="ViT image side, a multiple of 16")
    parser.add_argument("--swin-size", type=int, default=224, help="Swin image side, 224·k for window 7")
    parser.add_argument("--batch", type=int, default=4)
    args = common.parse_args(parser, quick={"vit_size": 32, "swin_size": 32, "batch": 2})
    vit_config, swin_config = (QUICK_VIT, QUICK_SWIN) if args.quick else (VIT_S16, SWIN_T)
    vit_name, swin_name = ("2-layer ViT", "2-stage Swin") if args.quick else ("ViT-S/16", "Swin-T")
    bench(f"ViTImageClassifier ({vit_name})", vit_pair(args.vit_size, vit_config),
          vit_forward_macs(args.vit_size, **vit_config), args.vit_size, args)
    bench(f"SwinTransformerImageClassifier ({swin_name})", swin_pair(args.swin_size, swin_config),
          swin_forward_macs(args.swin_size, **swin_config), args.swin_size, args)


if __name__ == "__main__":
    main()
