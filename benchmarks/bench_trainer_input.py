"""Trainer input-pipeline overhead: tfmodels' training loop vs plain Keras ``fit`` on arrays.

Same model (mnist_cnn), same embedded digits (by default one epoch of the 4,000 training digits
per round), same batch (64), same Keras dtype policy (``--precision``), same process, timed in
alternating rounds after one untimed round of each (tracing, including the last, partial batch;
``--warmup`` does not apply here).
The trainer's per-epoch-seeded tf.data pipeline (cache -> shuffle -> batch -> prefetch) must not
be slower than Keras' own array adapter: target ratio >= 1.0.

FLOPs per example of a train step: ``6 · MACs`` (2 FLOPs per multiply-add, train ≈ 3 × forward),
``MACs = Σ_Conv2D k_h·k_w·C_in·C_out·H_out·W_out + Σ_Dense d_in·d_out`` counted from the model's
layers (mnist_cnn: 24²·10·25 + 8²·20·250 + 320·10 = 467,200). So small a model leaves the matmul
units mostly idle; its share of the peak says how much the input side costs.

Run: ``make bench`` or ``python benchmarks/bench_trainer_input.py [--precision bfloat16] [--steps 63] [--rounds 3]``.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import math

import keras
import tensorflow as tf

from pipelines import digits
from tfmodels import registry
from tfmodels.config import resolve
from tfmodels.training.fit import training_dataset

BATCH = 64


def compiled_model(recipe, cfg) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = recipe.model(cfg)
    model.compile(keras.optimizers.Adam(1e-3), **recipe.compile_args(cfg))
    return model


def main() -> None:
    parser = common.argument_parser(__doc__, steps=math.ceil(4000 / BATCH))
    args = common.parse_args(parser, quick={})
    recipe = registry.get("mnist_cnn")
    cfg = resolve(recipe.config, "default", {"batch_size": BATCH})
    train = digits.load("embedded", seed=0).train.take(args.steps * BATCH).cache()
    x, y = next(iter(train.batch(args.steps * BATCH)))
    x, y = x.numpy(), y.numpy()
    n = len(y)
    steps = math.ceil(n / BATCH)

    reference, ours = compiled_model(recipe, cfg), compiled_model(recipe, cfg)
    ours_data = training_dataset(train, cfg, BATCH, n, initial_epoch=0)
    runs = {
        "ours": lambda: ours.fit(ours_data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False),
        "keras fit on arrays": lambda: reference.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True),
    }
    for run in runs.values():
        run()  # warm-up
    threads = tf.config.threading.get_inter_op_parallelism_threads() or "auto"
    common.header(
        f"mnist_cnn train: batch {BATCH}, {n} examples per round, {threads} threads; Adam", args,
        plan=f"best of {args.rounds} alternating rounds of {steps} steps after one warm-up round",
    )
    common.compare(
        "mnist_cnn input pipeline", runs, items_per_run=n, unit="examples",
        flops_per_item=6 * common.conv_dense_macs(ours), args=args,
    )


if __name__ == "__main__":
    main()
