"""LSTM language-model training throughput: tfmodels' ``lstm_lm`` model vs a plain Keras model of the same size.

Ours is :func:`tfmodels.models.rnn_lm.build_rnn_lm` with ``cell="lstm"`` (one-hot input, one
LSTM layer of 256 units, ``Dense(V)`` logits: the ``lstm_lm`` default preset); the reference is
the same stack written here with stock Keras layers only (a one-hot ``Lambda``,
``keras.layers.LSTM``, ``keras.layers.Dense``), checked to have the same parameter count. Same
data (the default corpus' character windows), batch (32), window (35 steps), optimizer (Adam,
global-norm clipping at 1 as the recipe), loss (sparse cross-entropy on logits), same Keras dtype
policy (``--precision``), same process, timed in alternating rounds after a warm-up. Target:
ratio >= 1.0 (our model adds nothing around Keras' LSTM).

FLOPs per token of a train step (2 FLOPs per multiply-add, train ≈ 3 × forward), with V the
vocabulary (the one-hot input width E = V) and H the hidden units::

    6 · (4·H·(V + H)  +  H·V)
         4 gates, each a product with the input and the previous state  +  the logits

Run: ``make bench`` or ``python benchmarks/bench_lstm_lm.py [--precision bfloat16] [--batch 32] [--steps 10] [--rounds 3] [--hidden 256]``.
The defaults take well under a minute on 2 CPU cores.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import keras
import tensorflow as tf

from tfmodels.config import resolve
from tfmodels.models.rnn_lm import build_rnn_lm
from tfmodels.recipes import language_models


def train_flops_per_token(vocab_size: int, hidden: int) -> int:
    """FLOPs per token of one training step (module docstring)."""
    return 6 * (4 * hidden * (vocab_size + hidden) + hidden * vocab_size)


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


def main() -> None:
    parser = common.argument_parser(__doc__, steps=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    args = common.parse_args(parser, quick={"batch": 4, "hidden": 32})
    cfg = resolve(language_models.LstmLmConfig, "default")
    corpus = language_models.token_corpus(cfg)
    vocab_size = corpus.vocabulary.size
    x, y = language_models.windows(corpus.streams["train"], cfg.num_steps, cfg.num_steps)
    x, y = x[: args.batch], y[: args.batch]
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    keras.utils.set_random_seed(0)
    reference = plain_keras_lstm_lm(vocab_size, args.hidden)
    keras.utils.set_random_seed(0)
    ours = build_rnn_lm(vocab_size, "lstm", args.hidden)
    if ours.count_params() != reference.count_params():
        raise SystemExit(f"not the same size: {ours.count_params()} vs {reference.count_params()} parameters")
    common.header(
        f"LSTM LM train step: V={vocab_size}, {args.hidden} units, {ours.count_params():,} parameters, "
        f"batch {args.batch} x {cfg.num_steps} steps; Adam",
        args,
    )
    runs = common.fit_runs(
        {"ours": ours, "plain Keras LSTM LM": reference}, data, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda: keras.optimizers.Adam(1e-3, global_clipnorm=1.0), args,  # the recipe's clipping
    )
    common.compare(
        "LSTM LM train step", runs, items_per_run=args.steps * x.size, unit="tokens",
        flops_per_item=train_flops_per_token(vocab_size, args.hidden), args=args,
    )


if __name__ == "__main__":
    main()
