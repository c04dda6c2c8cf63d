"""LSTM language-model training throughput: tfmodels' ``lstm_lm`` model vs a plain Keras model of the same size.

Ours is :func:`tfmodels.models.rnn_lm.build_rnn_lm` with ``cell="lstm"`` (one-hot input, one
LSTM layer of 256 units, ``Dense(V)`` logits: the ``lstm_lm`` default preset); the reference is
the same stack written here with stock Keras layers only (a one-hot ``Lambda``,
``keras.layers.LSTM``, ``keras.layers.Dense``), checked to have the same parameter count. Same
data (the default corpus' character windows), batch (32), window (35 steps), optimizer (Adam,
global-norm clipping at 1 as the recipe), loss (sparse cross-entropy on logits), same process,
timed in alternating rounds after a warm-up (the best round of each counts). Reports training tokens/s of both and the ratio
(target >= 1.0: our model adds nothing around Keras' LSTM).

Run: ``make bench`` or ``python benchmarks/bench_lstm_lm.py [--batch 32] [--steps 10] [--rounds 3] [--hidden 256]``.
The defaults take well under a minute on 2 CPU cores.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels.config import resolve  # noqa: E402
from tfmodels.models.rnn_lm import build_rnn_lm  # noqa: E402
from tfmodels.recipes import language_models  # noqa: E402


def plain_keras_lstm_lm(vocab_size: int, hidden: int) -> keras.Model:
    """One-hot → LSTM → Dense(V), stock Keras layers only."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Lambda(lambda ids: keras.ops.one_hot(ids, vocab_size)),
            keras.layers.LSTM(hidden, return_sequences=True),
            keras.layers.Dense(vocab_size),
        ],
        name="plain_keras_lstm_lm",
    )


def compiled(model: keras.Model, x: np.ndarray, y: np.ndarray) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(1e-3, global_clipnorm=1.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, batch_size=len(x), epochs=2, verbose=0, shuffle=False)  # warm-up: tracing
    return model


def tokens_per_second(model: keras.Model, data: tf.data.Dataset, steps: int, tokens_per_step: int) -> float:
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * tokens_per_step / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    cfg = resolve(language_models.LstmLmConfig, "default")
    stream = language_models.token_corpus(cfg).streams["train"]
    vocab_size = language_models.token_corpus(cfg).vocabulary.size
    x, y = language_models.windows(stream, cfg.num_steps, cfg.num_steps)
    x, y = x[: args.batch], y[: args.batch]

    keras.utils.set_random_seed(0)
    reference = plain_keras_lstm_lm(vocab_size, args.hidden)
    keras.utils.set_random_seed(0)
    ours = build_rnn_lm(vocab_size, "lstm", args.hidden)
    if ours.count_params() != reference.count_params():
        raise SystemExit(f"not the same size: {ours.count_params()} vs {reference.count_params()} parameters")
    models = {"reference": compiled(reference, x, y), "ours": compiled(ours, x, y)}
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    # Alternating rounds, best of each: a shared machine's load changes between runs of one model.
    rates = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(tokens_per_second(model, data, args.steps, x.size))
    ref_rate, our_rate = max(rates["reference"]), max(rates["ours"])
    print(f"LSTM LM train step, V={vocab_size}, {args.hidden} units, {ours.count_params():,} parameters, "
          f"batch {args.batch} x {cfg.num_steps} steps, best of {args.rounds} alternating rounds of {args.steps} steps")
    print(f"  plain Keras LSTM LM (reference): {ref_rate:9.0f} tokens/s")
    print(f"  tfmodels lstm_lm model:          {our_rate:9.0f} tokens/s")
    print(f"  ratio (ours / reference):        {our_rate / ref_rate:9.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
