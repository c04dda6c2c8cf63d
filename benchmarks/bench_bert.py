"""BERT throughput: our pre-training train step vs keras-hub ``BertMaskedLM``, our WordPiece vs tensorflow-text.

1. **Train step** (issue 3): sequences/s of one optimizer step of :class:`tfmodels.models.bert.BertPretrainer`
   (masked LM + next-sentence losses, the ``bert_mlm`` recipe's step) and of keras-hub's
   ``BertMaskedLM`` (masked LM only: it has no NSP head) at identical sizes — by default L=4, H=256,
   A=4, FFN=1024, 128 tokens, batch 32, 20 predictions, vocabulary 30,522 (BERT's) — same
   optimizer (Adam), same random batch, same Keras dtype policy (``--precision``), timed in
   alternating rounds in one process, each without and with XLA (``jit_compile``). FLOPs per step
   (forward + backward ≈ 3 × forward, 2 FLOPs per multiply-add)::

       6·L·(4H² + 2H·F)·B·S     projections (Q, K, V, output) and FFN at every token
     + 12·L·B·S²·H              attention scores and weighted sums
     + 6·(H² + H·V)·B·P         MLM head (transform + vocabulary logits) at the P masked positions
     + 6·H²·B                   pooler

2. **Tokenizer** (no floating point: measured in the float32 run only): our
   :class:`pipelines.text.wordpiece.WordPieceTokenizer` (core TF ops) vs tensorflow-text on the same
   vocabulary (learned from the embedded pydoc corpus) and the same sentences (the corpus split into
   sentences): end to end (normalisation, word split, WordPiece) against
   ``FastBertTokenizer(lower_case_nfd_strip_accents=True)``, and the WordPiece step alone on the same
   words against ``FastWordpieceTokenizer(no_pretokenization=True)``; both inside ``tf.function``,
   one pass over all sentences per round; the share of sentences with identical ids is printed.

Run: ``make bench`` (all benchmarks, both precisions) or
``python benchmarks/bench_bert.py [--precision bfloat16] [--steps 3] [--rounds 3] [--quick]``.
The defaults take a few minutes on 2 CPU cores; raise ``--steps`` for steadier numbers.
"""

import common  # noqa: I001  (first: TensorFlow then starts without its C++ INFO lines)

import functools
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfmodels.models.bert import PAPER_VOCABULARY_SIZE, build_bert_pretraining


# keras-hub's BertMaskedLM builds the backbone's pooler, which its loss never reaches.
warnings.filterwarnings("ignore", message="Gradients do not exist for variables")


def train_step_flops(layers: int, hidden: int, ffn: int, vocab: int, batch: int, seq: int, predictions: int) -> float:
    """FLOPs of one training step (module docstring)."""
    return (
        6 * layers * (4 * hidden * hidden + 2 * hidden * ffn) * batch * seq
        + 12 * layers * batch * seq * seq * hidden
        + 6 * (hidden * hidden + hidden * vocab) * batch * predictions
        + 6 * hidden * hidden * batch
    )


def random_batch(args, rng: np.random.Generator) -> dict:
    token_ids = rng.integers(5, args.vocab, (args.batch, args.seq)).astype("int32")
    positions = np.sort(np.stack([rng.choice(np.arange(1, args.seq), args.predictions, replace=False) for _ in range(args.batch)]), 1)
    return {
        "token_ids": token_ids,
        "segment_ids": (np.arange(args.seq) >= args.seq // 2).astype("int32")[None].repeat(args.batch, 0),
        "padding_mask": np.ones((args.batch, args.seq), "int32"),
        "mask_positions": positions.astype("int32"),
        "mlm_labels": rng.integers(5, args.vocab, (args.batch, args.predictions)).astype("int32"),
        "nsp_labels": rng.integers(0, 2, args.batch).astype("int32"),
    }


def bench_train_step(args) -> None:
    import keras_hub

    sizes = {"num_layers": args.layers, "hidden_dim": args.hidden, "num_heads": args.heads, "intermediate_dim": args.ffn}
    batch = random_batch(args, np.random.default_rng(0))
    inputs = {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask", "mask_positions")}
    weights = np.ones((args.batch, args.predictions), "float32")
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    adam = functools.partial(keras.optimizers.Adam, 1e-4)
    ours_data = tf.data.Dataset.from_tensors((
        inputs,
        {"mlm_logits": batch["mlm_labels"], "nsp_logits": batch["nsp_labels"]},
        {"mlm_logits": weights, "nsp_logits": np.ones(args.batch, "float32")},
    )).repeat()
    hub_data = tf.data.Dataset.from_tensors((inputs, batch["mlm_labels"], weights)).repeat()
    flops = train_step_flops(args.layers, args.hidden, args.ffn, args.vocab, args.batch, args.seq, args.predictions)
    common.header(
        f"BERT train step: L={args.layers} H={args.hidden} A={args.heads} FFN={args.ffn}, {args.seq} tokens, batch {args.batch}, "
        f"{args.predictions} predictions, vocabulary {args.vocab}; Adam",
        args,
    )
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        ours = build_bert_pretraining(args.vocab, max_sequence_length=args.seq, **sizes)
        keras.utils.set_random_seed(0)
        backbone = keras_hub.models.BertBackbone(vocabulary_size=args.vocab, max_sequence_length=args.seq, **sizes)
        hub = keras_hub.models.BertMaskedLM(backbone)
        runs = {
            **common.fit_runs({"ours": ours}, ours_data, {"mlm_logits": cross_entropy, "nsp_logits": cross_entropy}, adam, args, jit),
            **common.fit_runs({"keras-hub BertMaskedLM": hub}, hub_data, cross_entropy, adam, args, jit),
        }
        for model in (ours, hub):
            if model.jit_compile != jit:  # Keras falls back without XLA for layers that do not support it
                print(f"  warning: {model.name} ran with jit_compile={model.jit_compile}, not {jit}")
        common.compare(
            f"BERT train step, {'XLA' if jit else 'no XLA'}", runs,
            items_per_run=args.steps * args.batch, unit="sequences", flops_per_item=flops / args.batch, args=args,
        )


def bench_tokenizer(args) -> None:
    import tensorflow_text as tf_text

    from pipelines.text import corpus
    from pipelines.text.bert_normalize import basic_tokenize
    from pipelines.text.sentences import split_sentences
    from pipelines.text.wordpiece import WordPieceTokenizer
    from pipelines.text.wordpiece_vocabulary import learn_vocabulary

    documents = corpus.documents("embedded")
    vocabulary = learn_vocabulary(documents, 8192, min_frequency=5)
    sentences = split_sentences(list(documents.as_numpy_iterator())).flat_values[: args.sentences]
    batches = [sentences[i : i + args.tokenizer_batch] for i in range(0, int(tf.size(sentences)), args.tokenizer_batch)]
    words = [basic_tokenize(batch).flat_values for batch in batches]
    ours = WordPieceTokenizer(vocabulary)
    fast_bert = tf_text.FastBertTokenizer(vocabulary, token_out_type=tf.int32, lower_case_nfd_strip_accents=True)
    fast_wordpiece = tf_text.FastWordpieceTokenizer(vocabulary, token_out_type=tf.int32, no_pretokenization=True)

    def one_pass(tokenize, data):
        fn = tf.function(lambda x: tokenize(x).flat_values)
        fn(data[0])  # tracing
        return lambda: [fn(x) for x in data]

    same = sum(
        sum(a == b for a, b in zip(ours.tokenize(batch).to_list(), fast_bert.tokenize(batch).to_list()))
        for batch in batches
    )
    num_sentences, num_words = int(tf.size(sentences)), sum(int(tf.size(w)) for w in words)
    print(
        f"WordPiece tokenizer: vocabulary of {len(vocabulary)} learned on the pydoc corpus, {num_sentences} sentences "
        f"({num_words} words) in batches of {args.tokenizer_batch}, best of {args.rounds} alternating passes; "
        f"identical ids on {same}/{num_sentences} sentences",
        flush=True,
    )
    for title, unit, count, runs in (
        ("end to end", "sentences", num_sentences,
         {"ours": one_pass(ours.tokenize, batches), "tensorflow-text FastBertTokenizer": one_pass(fast_bert.tokenize, batches)}),
        ("WordPiece only", "words", num_words,
         {"ours": one_pass(ours.tokenize_words, words), "tensorflow-text FastWordpieceTokenizer": one_pass(fast_wordpiece.tokenize, words)}),
    ):
        # No target: core ops (servable) against C++ kernels.
        common.compare(f"tokenizer, {title}", runs, items_per_run=count, unit=unit, flops_per_item=None, args=args, target=None)


def main() -> None:
    parser = common.argument_parser(__doc__, steps=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--predictions", type=int, default=20)
    parser.add_argument("--vocab", type=int, default=PAPER_VOCABULARY_SIZE)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--tokenizer-batch", type=int, default=512)
    parser.add_argument("--sentences", type=int, help="tokenize only the first N sentences (default: all)")
    parser.add_argument("--skip-train-step", action="store_true")
    parser.add_argument("--skip-tokenizer", action="store_true")
    quick = {"batch": 4, "seq": 16, "predictions": 3, "vocab": 1000, "layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "sentences": 256}
    args = common.parse_args(parser, quick)
    if not args.skip_train_step:
        bench_train_step(args)
    if args.skip_tokenizer:
        return
    if args.precision == "float32":
        bench_tokenizer(args)
    else:
        print("WordPiece tokenizer: no floating-point arithmetic, so measured in the float32 run only")


if __name__ == "__main__":
    main()
