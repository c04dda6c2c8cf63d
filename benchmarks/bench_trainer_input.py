"""Trainer input-pipeline overhead: tfmodels' training loop vs plain Keras ``fit`` on arrays.

Same model (mnist_cnn), same 4,000 embedded digits, same batch (64), same process, measured
one after the other after a warm-up epoch each. The trainer's per-epoch-seeded tf.data pipeline
(cache -> shuffle -> batch -> prefetch) must not be slower than Keras' own array adapter.
Reports examples/s of both and the ratio (target >= 1.0).

Run: ``make bench`` or ``python benchmarks/bench_trainer_input.py``.
"""

import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipelines import digits  # noqa: E402
from tfmodels import registry  # noqa: E402
from tfmodels.config import resolve  # noqa: E402
from tfmodels.training.fit import training_dataset  # noqa: E402

EPOCHS = 3
BATCH = 64


def compiled_model(recipe, cfg):
    keras.utils.set_random_seed(0)
    model = recipe.model(cfg)
    model.compile(keras.optimizers.Adam(1e-3), **recipe.compile_args(cfg))
    return model


def timed_fit(model, *args, **kwargs) -> float:
    model.fit(*args, epochs=1, verbose=0, **kwargs)  # warm-up: tracing, caches
    start = time.perf_counter()
    model.fit(*args, epochs=1 + EPOCHS, initial_epoch=1, verbose=0, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    recipe = registry.get("mnist_cnn")
    cfg = resolve(recipe.config, "default", {"batch_size": BATCH, "epochs": EPOCHS + 1})
    splits = digits.load("embedded", seed=0)
    x, y = next(iter(splits.train.batch(100_000)))
    x, y = x.numpy(), y.numpy()
    n = len(y)
    steps = math.ceil(n / BATCH)

    reference = timed_fit(compiled_model(recipe, cfg), x, y, batch_size=BATCH, shuffle=True)
    ours_ds = training_dataset(splits.train.cache(), cfg, BATCH, n, initial_epoch=0)
    ours = timed_fit(compiled_model(recipe, cfg), ours_ds, steps_per_epoch=steps, shuffle=False)

    ref_rate, our_rate = EPOCHS * n / reference, EPOCHS * n / ours
    print(f"mnist_cnn train, batch {BATCH}, {n} examples x {EPOCHS} epochs, {tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} threads")
    print(f"  keras fit on arrays (reference): {ref_rate:10.0f} examples/s")
    print(f"  tfmodels training_dataset:       {our_rate:10.0f} examples/s")
    print(f"  ratio (ours / reference):        {our_rate / ref_rate:10.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
