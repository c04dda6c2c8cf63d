"""Recurrent language models: ``rnn_lm``, ``gru_lm``, ``lstm_lm`` and ``deep_lstm_lm``.

Specs: notes-002-part2.md §32 (seed 002 L2943–3110: RNN, character-level LM, labels = inputs
shifted by one), §33 (L3029–3049: perplexity, the uniform baseline = vocabulary size), §34
(L3051–3063: gradient clipping to a global norm θ, [REF d2l] θ = 1), §36 GRU, §37 LSTM, §38 deep
RNN; §21 (text preprocessing and vocabulary), §22–§23 (count-based n-gram models: the baselines),
§25 (minibatches of a long sequence). The models are :func:`tfmodels.models.rnn_lm.build_rnn_lm`.

Data (``DATA=embedded``, offline): the help texts of CPython's ``pydoc_data`` (79 documents,
about 465,000 characters; :mod:`pipelines.text.corpus`), split by document with the seed (80 /
10 / 10 %). ``timemachine`` (the notes' book, §21: downloaded once from d2l's URL, checked
against its SHA-1 and cached), ``file:<path>`` (documents separated by blank lines) and
``tfds:<name>`` work too. Each document is normalised as the notes do (§21: non-letters →
space, lower case), tokenised into characters (``level=char``, the notes' character-level LM) or
words (``level=word``), and **the vocabulary is counted on the training documents only**
(``min_freq``; ids ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3, then by frequency). It is
counted once, in the run's data stage, and saved as the run asset ``assets/vocabulary.txt``
(:func:`run_vocabulary`); the model's size, the report, serving and the exports of a copied run
folder read it from there, never from the data (``level`` and ``min_freq`` stay in
``config.json``). A split
becomes one long id stream, each document preceded by ``<bos>``: the model learns where documents
start, and generation and scoring condition on ``<bos>`` when a text is empty. ``max_tokens``
keeps the first tokens of every stream (d2l's ``max_tokens``; [REF d2l] §25: 10,000).

Minibatches (§25): examples are subsequences of ``num_steps`` tokens ``X`` with labels ``Y = X``
shifted by one token. Training uses the notes' **random sampling with a random offset drawn anew
every epoch**: the training split holds overlapping chunks of ``2·num_steps − 1`` tokens every
``num_steps`` tokens, and :func:`train_transform` cuts a random window of ``num_steps`` out of each
chunk after the trainer's per-epoch shuffle. Its offsets are a stateless function of the seed
and the batch's content, which the trainer's ``(seed, epoch)`` shuffle determines, so they change
every epoch and a resumed run draws exactly the offsets of an uninterrupted one. (Without
shuffling, ``--set shuffle=false``, every epoch gets the same offsets.)
:mod:`pipelines.text.sequence_batches` builds whole epochs of batches itself; the shared trainer
caches, shuffles and batches unbatched examples, which is why the offsets live in the per-batch
transform here. The notes' **sequential partitioning with the hidden state carried across
minibatches** (§25, [REF d2l] ``use_random_iter=False``) is not offered: it needs Keras
``stateful=True`` layers with a fixed batch, batches in corpus order, states that evaluation
must not disturb, and one state per replica under ``tf.distribute`` — at odds with the trainer's
shuffling, validation, resume and distribution. d2l reports perplexity ≈ 1.0 with carried state
and 1.3–1.5 with random sampling on its 10,000-character book. Validation and test use
consecutive non-overlapping windows from offset 0; every window starts from a zero state.

Loss: sparse cross-entropy from logits at every step (§32 L3020); metrics: accuracy and
:class:`tfmodels.metrics.perplexity.Perplexity` (§33). Gradients are clipped to a global norm of
1.0 (§34, [REF d2l] θ = 1; Keras ``global_clipnorm``, applied to the aggregated gradients).

Report (``metrics.json``): held-out perplexity of the model beside baselines on the same test
windows, tokens and contexts (each window scored from its first token, as the model sees it):
uniform (= the vocabulary size, §33), the Laplace-smoothed unigram, and the best n-gram model
(:class:`tfmodels.models.ngram_lm.NgramLanguageModel`, orders 1–5 for characters or 1–3 for
words, §23) with ε and the order picked on the validation windows; Zipf's law on the training
tokens (§24: the fitted exponent, and ``zipf.png``, the log–log unigram / bigram / trigram
frequencies); plus greedy and sampled continuations of ``sample_prefix``, and the path of the
run's vocabulary.

Serving (core TensorFlow only; the vocabulary travels in the graph as the lookup table of
:class:`pipelines.text.vocabulary.TextToTokenIds` and a string constant for ids → tokens):

* ``serving_default`` (generate): ``prefix`` string [B], ``temperature`` float32 scalar (0 =
  greedy, > 0 samples from ``softmax(logits / T)``), ``num_tokens`` int32 scalar (0 ..
  ``max_new_tokens``; bounded so a request cannot tie the server up) and ``seed`` int64 scalar
  (the same request with the same seed gives the same text; a serving signature has no optional
  inputs, so a client that does not care sends any number). One temperature and seed per
  request, as scalars: a client does not repeat them per row. Returns ``continuation`` string
  [B] (the new tokens joined with ``""`` for characters — spaces are tokens — or ``" "`` for
  words), ``continuation_ids`` int32 [B, num_tokens] and ``prefix_tokens`` int32 [B] (prefix tokens
  read). The prefix is normalised like the training text, so its trailing spaces are dropped; an
  empty prefix starts a new document after ``<bos>``; unknown words read as ``<unk>`` (and the
  model may write ``<unk>`` or ``<bos>``, a document break, as tokens). Decoding is
  :func:`tfmodels.models.generation.generate`.
* ``score``: ``text`` string [B] → ``perplexity`` [B], ``log_likelihood`` [B] (natural log, sum over
  tokens) and ``num_tokens`` [B] of each text read as a document (after ``<bos>``); an empty text
  has 0 tokens and perplexity 1.

Serving examples (:func:`serving_examples`, the export's warm-up requests and checks): texts cut
out of the test windows and written with the run's vocabulary (:func:`client_texts`); ``score``
expects the model's log-likelihood of their ids after ``<bos>`` (NumPy arithmetic on the model's
logits), ``serving_default`` with temperature 0 the greedy continuation of 20 tokens by a
Python loop that calls the model on the growing ids.

Presets: ``tiny`` (tests, seconds), ``default`` (char level, Adam, 2 CPU cores within 10 minutes;
measured results in the README / report) and ``paper`` (d2l's settings, [REF d2l] §32/§36–§38:
batch 32, 35 steps, plain SGD learning rate 1 (2 for the deep LSTM), θ = 1, 500 epochs on the
first 10,000 characters; 512 hidden units for the from-scratch RNN, 256 for GRU, LSTM and the two
LSTM layers of ``deep_lstm_lm``).

The count-based n-gram model is a MODEL of its own, ``ngram_lm`` (:mod:`tfmodels.recipes.ngram_lm`),
trained on the same trainer by a ``train_step`` that counts; n-gram models are also the baselines
of every report here.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines import sources
from pipelines.splits import Splits
from pipelines.text import corpus
from pipelines.text.ngrams import ngram_counts, plot_zipf, zipf_exponent
from pipelines.text.vocabulary import BOS_ID, PAD_ID, RESERVED_TOKENS, Vocabulary, tokenized
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.metrics.perplexity import Perplexity
from tfmodels.models.generation import generate
from tfmodels.models.ngram_lm import NgramLanguageModel
from tfmodels.models.rnn_lm import build_rnn_lm
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import asset_path, run_asset

# n-gram baselines: the orders tried per level (§23) and the Laplace ε grid picked on validation.
NGRAM_ORDERS = {"char": 5, "word": 3}
EPSILONS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
SAMPLE_TOKENS = {"char": 120, "word": 30}
# Tokens are joined into text with "" (characters: spaces are tokens) or " " (words).
SEPARATORS = {"char": "", "word": " "}
VOCABULARY = "vocabulary.txt"  # the run asset
SERVING_EXAMPLE_TEXTS, SERVING_EXAMPLE_TOKENS = 3, 20  # texts per serving example, tokens generated


@dataclasses.dataclass
class LanguageModelConfig(TrainConfig):
    """Recurrent language-model config (the cell comes from the MODEL name).

    Args:
        level: ``char`` (the notes' character-level LM, §32) or ``word`` tokens.
        num_steps: tokens per training subsequence (time steps; [REF d2l] 35).
        hidden_units: width of every recurrent layer.
        num_layers: stacked recurrent layers (§38).
        embedding_dim: 0 feeds one-hot vectors as the notes do; > 0 a learned embedding (set it
            for word level: a one-hot input of thousands of words is slow).
        dropout: dropout after every recurrent layer.
        min_freq: training tokens seen fewer times map to ``<unk>`` (§21).
        max_tokens: keep the first tokens of each split's stream (0 = all; d2l: 10,000).
        max_new_tokens: the most tokens one generation request may ask for.
        sample_prefix: the prefix the report continues.
    """

    level: str = "char"
    num_steps: int = 35
    hidden_units: int = 256
    num_layers: int = 1
    embedding_dim: int = 0
    dropout: float = 0.0
    min_freq: int = 2
    max_tokens: int = 0
    max_new_tokens: int = 500
    sample_prefix: str = "the value of the"
    clip_global_norm: float = 1.0

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "level": ("char", "word")}
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # set per MODEL below

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_steps < 2 or self.hidden_units < 1 or self.num_layers < 1 or self.max_new_tokens < 0:
            raise ConfigError("num_steps must be >= 2, hidden_units and num_layers >= 1, max_new_tokens >= 0")


def _presets(default: Mapping[str, Any], paper: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    tiny = {"epochs": 2, "batch_size": 16, "num_steps": 16, "hidden_units": 24, "max_tokens": 3000,
            "learning_rate": 1e-2, "max_new_tokens": 50, "verbose": 0}
    # [REF d2l] §32/§36/§37: batch 32, 35 steps, SGD with learning rate 1 on the mean loss,
    # θ = 1, 500 epochs on load_data_time_machine(max_tokens=10000).
    notes = {"batch_size": 32, "num_steps": 35, "optimizer": "sgd", "learning_rate": 1.0,
             "clip_global_norm": 1.0, "epochs": 500, "max_tokens": 10_000}
    # Adam with a cosine decay; batches of 32 (d2l's) make more progress per CPU second than
    # larger ones (measured on lstm_lm, 5 epochs at a constant rate: validation perplexity 3.52
    # at batch 32 and 3.71 at 64 with 5e-3, 4.56 at 128 with 1e-2).
    fast = {"batch_size": 32, "learning_rate": 5e-3, "lr_schedule": "cosine", "verbose": 2}
    return {"tiny": tiny, "default": {**fast, **default}, "paper": {**notes, **paper}}


@dataclasses.dataclass
class RnnLmConfig(LanguageModelConfig):
    """``rnn_lm``: a tanh RNN (§32)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _presets(
        {"epochs": 40},
        {"hidden_units": 512},  # [REF d2l] §32: the from-scratch RNN's num_hiddens
    )


@dataclasses.dataclass
class GruLmConfig(LanguageModelConfig):
    """``gru_lm``: GRU (§36)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _presets(
        {"epochs": 15},
        {"hidden_units": 256},
    )


@dataclasses.dataclass
class LstmLmConfig(LanguageModelConfig):
    """``lstm_lm``: LSTM (§37)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _presets(
        {"epochs": 15},
        {"hidden_units": 256},
    )


@dataclasses.dataclass
class DeepLstmLmConfig(LanguageModelConfig):
    """``deep_lstm_lm``: two stacked LSTM layers (§38)."""

    num_layers: int = 2
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _presets(
        {"epochs": 8},
        {"hidden_units": 256, "learning_rate": 2.0},  # [REF d2l] §38: nn.LSTM(V, 256, num_layers=2), lr 2
    )


@dataclasses.dataclass(frozen=True)
class TokenCorpus:
    """A corpus as id streams: the vocabulary of its training documents and one stream per split.

    Args:
        vocabulary: the run's vocabulary (:func:`run_vocabulary`).
        streams: ``{"train" | "validation" | "test": int32 ids}``, each document preceded by ``<bos>``.
        info: facts for ``Splits.info`` and the report.
    """

    vocabulary: Vocabulary
    streams: Mapping[str, np.ndarray]
    info: Mapping[str, Any]


def token_stream(documents: tf.data.Dataset, vocabulary: Vocabulary, level: str, max_tokens: int = 0) -> np.ndarray:
    """All documents as one int32 id stream, each preceded by ``<bos>``; the first ``max_tokens`` (0 = all).

    Example:
        >>> vocab = Vocabulary.from_counts({"a": 2, "b": 1})
        >>> token_stream(tf.data.Dataset.from_tensor_slices(["A b!", "c"]), vocab, "word").tolist()
        [2, 4, 5, 2, 1]
    """
    bos = tf.constant([BOS_ID], tf.int32)
    ids = tokenized(documents, level).map(lambda tokens: tf.concat([bos, tf.cast(vocabulary.lookup(tokens), tf.int32)], 0))
    stream = np.concatenate([np.zeros(0, np.int32), *ids.as_numpy_iterator()])
    return stream[:max_tokens] if max_tokens else stream


def run_vocabulary(cfg: LanguageModelConfig, documents: Splits | None = None) -> Vocabulary:
    """The run's vocabulary, the asset ``<run>/assets/vocabulary.txt`` (one token per line, in id order).

    Counted on the training documents (``level``, ``min_freq``; the split drawn with
    ``data_seed``) during the run's data stage, read from the run folder afterwards.

    Args:
        cfg: the run's config.
        documents: the corpus' document splits where they are loaded already; else they are
            loaded from ``cfg.data`` if the vocabulary has to be counted.
    """

    def count() -> Vocabulary:
        splits = documents if documents is not None else corpus.load(cfg.data, seed=cfg.data_seed)
        return Vocabulary.from_texts(splits.train, cfg.level, cfg.min_freq)

    return run_asset(cfg, VOCABULARY, count, Vocabulary.save, Vocabulary.load)


def token_corpus(cfg: LanguageModelConfig) -> TokenCorpus:
    """The config's corpus (read from ``cfg.data``) as id streams of the run's vocabulary."""
    splits = corpus.load(cfg.data, seed=cfg.data_seed)
    vocabulary = run_vocabulary(cfg, splits)
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    streams = {name: token_stream(docs, vocabulary, cfg.level, cfg.max_tokens) for name, docs in parts.items()}
    info = {
        "source": splits.info["source"],
        "documents": splits.info["sizes"],
        "tokens": {name: int(len(stream)) for name, stream in streams.items()},
        "level": cfg.level,
        "vocab_size": vocabulary.size,
    }
    return TokenCorpus(vocabulary, streams, info)


def windows(stream: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Subsequences ``X`` of ``length`` tokens every ``stride`` tokens and their labels ``Y`` (X shifted by one, §32).

    Example:
        >>> x, y = windows(np.arange(10), 3, 3)
        >>> x.tolist(), y.tolist()
        ([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    """
    count = (len(stream) - length - 1) // stride + 1
    if count < 1:
        raise sources.DataSourceError(
            f"a stream of {len(stream)} tokens cannot fill one subsequence of {length} tokens plus its label: "
            "use more data, a larger max_tokens or a smaller num_steps"
        )
    index = (np.arange(count) * stride)[:, None] + np.arange(length)
    return stream[index], stream[index + 1]


def datasets(cfg: LanguageModelConfig) -> Splits:
    """Training chunks of ``2·num_steps − 1`` tokens (cut by :func:`train_transform`) and held-out windows of ``num_steps``."""
    data = token_corpus(cfg)
    n = cfg.num_steps
    train = windows(data.streams["train"], 2 * n - 1, n)
    held_out = {name: windows(data.streams[name], n, n) for name in ("validation", "test")}
    sizes = {"train": len(train[0]), **{name: len(x) for name, (x, _) in held_out.items()}}
    return Splits(
        tf.data.Dataset.from_tensor_slices(train),
        tf.data.Dataset.from_tensor_slices(held_out["validation"]),
        tf.data.Dataset.from_tensor_slices(held_out["test"]),
        {**data.info, "sizes": sizes},
    )


def train_transform(cfg: LanguageModelConfig):
    """Per training batch: a random window of ``num_steps`` out of every chunk (§25's random offset).

    The offsets are ``stateless_uniform`` draws seeded by ``cfg.seed`` and a fingerprint of the
    batch, so they differ from epoch to epoch (the trainer reshuffles with ``(seed, epoch)``) and
    repeat exactly on a resumed run.
    """
    n = cfg.num_steps

    def crop(chunks, labels):
        batch_key = tf.bitcast(tf.fingerprint(tf.reshape(chunks, [1, -1]))[0], tf.int64)
        seed = tf.stack([tf.constant(cfg.seed, tf.int64), batch_key])
        offsets = tf.random.stateless_uniform([tf.shape(chunks)[0]], seed, 0, n, dtype=tf.int32)
        index = offsets[:, None] + tf.range(n)
        return tf.gather(chunks, index, batch_dims=1), tf.gather(labels, index, batch_dims=1)

    return crop


def compile_args(cfg: LanguageModelConfig) -> dict:
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), Perplexity()],
    }


def _model_builder(cell: str, name: str):
    def model(cfg: LanguageModelConfig) -> keras.Model:
        return build_rnn_lm(
            run_vocabulary(cfg).size, cell, cfg.hidden_units, cfg.num_layers,
            cfg.embedding_dim or None, cfg.dropout, name=name,
        )

    return model


class TextCodec:
    """Text ↔ ids for serving: the training normalisation and vocabulary, in core TensorFlow ops.

    Args:
        vocabulary: the training vocabulary.
        level: ``char`` or ``word``.
    """

    def __init__(self, vocabulary: Vocabulary, level: str):
        self.text_to_ids = vocabulary.text_layer(level, name="text_to_ids")
        self.tokens = vocabulary.tokens
        self.separator = SEPARATORS[level]

    def documents(self, texts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``[B]`` strings → (ids ``[B, 1 + T + 1]`` int32: ``<bos>``, the tokens, ``<pad>``…; lengths ``[B]`` with ``<bos>``).

        The trailing ``<pad>`` column keeps the ids of an all-empty batch two columns wide, so
        scoring always has an input and a label position.
        """
        ids = tf.cast(self.text_to_ids(texts), tf.int32)
        batch = tf.shape(ids)[0]
        lengths = tf.reduce_sum(tf.cast(ids != PAD_ID, tf.int32), axis=1) + 1
        ids = tf.concat([tf.fill([batch, 1], BOS_ID), ids, tf.fill([batch, 1], PAD_ID)], axis=1)
        return ids, lengths

    def join(self, ids: tf.Tensor) -> tf.Tensor:
        """``[B, N]`` ids → ``[B]`` strings: the tokens joined (``""`` for characters, ``" "`` for words)."""
        return tf.strings.reduce_join(tf.gather(tf.constant(self.tokens), ids), axis=1, separator=self.separator)


def generate_function(model: keras.Model, codec: TextCodec, max_new_tokens: int, context=None):
    """The ``serving_default`` computation as a ``tf.function``: continue each prefix (see the module docstring).

    A ``tf.function`` also outside the export: run eagerly, the loop would re-run the Keras
    model op by op at every step (about 0.1 s per token for the report's samples and the
    export's recorded answers).

    Args:
        model: the language model.
        codec: its vocabulary's text ↔ ids codec.
        max_new_tokens: the largest ``num_tokens`` a request may ask for.
        context: for a model with a bounded context (a GPT's position table), a function of the
            prefix lengths that returns the callable :func:`~tfmodels.models.generation.generate`
            runs (e.g. :func:`tfmodels.models.gpt.context_window`); ``None`` runs ``model``.

    Returns:
        ``fn(prefix [B] string, temperature float32, num_tokens int32, seed int64) -> dict``
        with ``continuation``, ``continuation_ids`` and ``prefix_tokens``.
    """

    @tf.function
    def generate_text(prefix, temperature, num_tokens, seed):
        check = tf.debugging.assert_less_equal(
            num_tokens, max_new_tokens, message=f"num_tokens must be at most {max_new_tokens} (max_new_tokens)"
        )
        with tf.control_dependencies([check]):
            ids, lengths = codec.documents(prefix)
        new = generate(context(lengths) if context else model, ids, lengths, num_tokens, temperature, seed)
        return {"continuation": codec.join(new), "continuation_ids": new, "prefix_tokens": lengths - 1}

    return generate_text


def score_text(model: keras.Model, codec: TextCodec, text) -> dict[str, tf.Tensor]:
    """The ``score`` computation: per-text perplexity of the tokens after ``<bos>`` (§33)."""
    ids, lengths = codec.documents(text)
    logits = tf.cast(model(ids[:, :-1], training=False), tf.float32)
    labels = ids[:, 1:]
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    num_tokens = lengths - 1
    counted = tf.cast(tf.range(tf.shape(labels)[1])[None, :] < num_tokens[:, None], tf.float32)
    nll = tf.reduce_sum(cross_entropy * counted, axis=1)
    return {
        "perplexity": tf.exp(tf.math.divide_no_nan(nll, tf.cast(num_tokens, tf.float32))),
        "log_likelihood": -nll,
        "num_tokens": num_tokens,
    }


def checked_vocabulary(cfg: LanguageModelConfig, model: keras.Model) -> Vocabulary:
    """The run's vocabulary, checked against the model's output width."""
    vocabulary = run_vocabulary(cfg)
    if model.output_shape[-1] != vocabulary.size:
        raise ConfigError(
            f"the model predicts {model.output_shape[-1]} tokens but the vocabulary of {cfg.data!r} at "
            f"level={cfg.level!r}, min_freq={cfg.min_freq} has {vocabulary.size}: use the model's own run folder"
        )
    return vocabulary


def text_codec(cfg: LanguageModelConfig, model: keras.Model) -> TextCodec:
    """The codec of the run's vocabulary (checked against the model's output width)."""
    return TextCodec(checked_vocabulary(cfg, model), cfg.level)


def serving(cfg: LanguageModelConfig, model: keras.Model, context=None, score_model=None) -> Serving:
    """``serving_default`` (generate) and ``score``.

    Args:
        cfg: the run's config.
        model: the language model.
        context: for generation, as in :func:`generate_function`.
        score_model: the callable ``score`` runs (default ``model``), e.g. one that rejects texts
            longer than a bounded context.
    """
    codec = text_codec(cfg, model)
    # The export tracks the model's objects only; as an attribute of the model, the lookup
    # table of the text layer is saved with the SavedModel.
    model.text_to_ids = codec.text_to_ids
    limit = cfg.max_new_tokens

    return Serving(
        {
            "serving_default": Endpoint(
                generate_function(model, codec, limit, context),
                {
                    "prefix": tf.TensorSpec([None], tf.string),
                    "temperature": tf.TensorSpec([], tf.float32),
                    "num_tokens": tf.TensorSpec([], tf.int32),
                    "seed": tf.TensorSpec([], tf.int64),
                },
                {
                    "continuation": "string [B]: the generated tokens, joined ('' for characters, ' ' for words)",
                    "continuation_ids": "int32 [B, num_tokens]: the generated token ids",
                    "prefix_tokens": "int32 [B]: tokens read from the prefix (after normalisation)",
                },
            ),
            "score": Endpoint(
                lambda text: score_text(score_model or model, codec, text),
                {"text": tf.TensorSpec([None], tf.string)},
                {
                    "perplexity": "float32 [B]: exp of the mean negative log-likelihood per token (1 for an empty text)",
                    "log_likelihood": "float32 [B]: natural-log likelihood of the tokens after <bos>",
                    "num_tokens": "int32 [B]: tokens scored",
                },
            ),
        }
    )


def client_texts(test: tf.data.Dataset, vocabulary: Vocabulary, level: str, count: int, max_tokens: int) -> list[list[int]]:
    """The token ids of ``count`` texts a client could send, cut out of the first test windows.

    From each window: its longest run of corpus tokens (no ``<bos>`` or ``<unk>``, which no text
    reads as), its first ``max_tokens``, without spaces at the ends (normalisation strips them).
    Written with :data:`SEPARATORS`, such a text reads back as exactly these ids.

    Example:
        >>> vocab = Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", " ", "a", "b"])
        >>> windows = tf.data.Dataset.from_tensor_slices(([[5, 2, 6, 4, 5, 1], [4, 4, 4, 4, 4, 4]], [[0] * 6] * 2))
        >>> client_texts(windows, vocab, "char", 2, 5)
        [[6, 4, 5]]
    """
    blank = vocabulary.tokens.index(" ") if level == "char" and " " in vocabulary.tokens else None
    texts = []
    for window, _ in test.as_numpy_iterator():
        runs = [[]]
        for token in window.tolist():
            if token < len(RESERVED_TOKENS):
                runs.append([])
            else:
                runs[-1].append(token)
        ids = max(runs, key=len)[:max_tokens]
        while ids and blank in (ids[0], ids[-1]):
            ids = ids[1:] if ids[0] == blank else ids[:-1]
        if ids:
            texts.append(ids)
        if len(texts) == count:
            return texts
    if not texts:
        raise ValueError("no test window holds a run of corpus tokens to serve as a text")
    return texts


def serving_examples(cfg: LanguageModelConfig, model: keras.Model, test: tf.data.Dataset, max_positions: int | None = None):
    """Texts from the test windows (:func:`client_texts`) and the evaluation path's answers for them.

    ``score``: the model called on ``<bos>`` and each text's ids, the log-likelihood of the ids
    summed in NumPy. ``serving_default`` (temperature 0): greedy continuations of
    :data:`SERVING_EXAMPLE_TOKENS` tokens by a Python loop that calls the model on the growing
    ids and takes NumPy's argmax.

    Args:
        cfg: the run's config.
        model: the language model.
        test: the unbatched test split of ``(ids, labels)`` windows.
        max_positions: a model with a bounded context (a GPT) reads each step's newest
            ``max_positions`` ids; ``None`` reads them all.
    """
    vocabulary = checked_vocabulary(cfg, model)
    texts = client_texts(test, vocabulary, cfg.level, SERVING_EXAMPLE_TEXTS, cfg.num_steps - 1)

    def logits(ids: list[int]) -> np.ndarray:
        return np.asarray(model(np.array([ids], np.int32), training=False), np.float64)[0]

    def text(ids: list[int]) -> bytes:
        return SEPARATORS[cfg.level].join(vocabulary.tokens[i] for i in ids).encode()

    log_likelihood = []
    for ids in texts:
        scores = logits([BOS_ID, *ids[:-1]])  # position t predicts ids[t]
        log_probs = scores - scores.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        log_likelihood.append(log_probs[np.arange(len(ids)), ids].sum())
    num_tokens = np.array([len(ids) for ids in texts], np.int32)
    log_likelihood = np.array(log_likelihood)
    length = min(cfg.max_new_tokens, SERVING_EXAMPLE_TOKENS)
    continuations = []
    for ids in texts:
        sequence = [BOS_ID, *ids]
        for _ in range(length):
            context = sequence[-max_positions:] if max_positions else sequence
            sequence.append(int(np.argmax(logits(context)[-1])))
        continuations.append(sequence[len(ids) + 1 :])
    prefix = np.array([text(ids) for ids in texts], object)
    return {
        "serving_default": ServingExample(
            {"prefix": prefix, "temperature": np.float32(0.0), "num_tokens": np.int32(length), "seed": np.int64(0)},
            {
                "continuation": np.array([text(ids) for ids in continuations], object),
                "continuation_ids": np.array(continuations, np.int32).reshape(len(texts), length),
                "prefix_tokens": num_tokens,
            },
        ),
        "score": ServingExample(
            {"text": prefix},
            {
                "perplexity": np.exp(-log_likelihood / num_tokens).astype(np.float32),
                "log_likelihood": log_likelihood.astype(np.float32),
                "num_tokens": num_tokens,
            },
        ),
    }


def model_perplexity(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """``exp`` of the mean cross-entropy of ``model`` over every label token of ``(x, y)`` (§33)."""
    metric = Perplexity()
    for start in range(0, len(x), batch_size):
        metric.update_state(y[start : start + batch_size], model(x[start : start + batch_size], training=False))
    return float(metric.result())


def ngram_window_perplexity(lm: NgramLanguageModel, x: np.ndarray, y: np.ndarray) -> float:
    """Perplexity of an n-gram model on the label tokens of windows, each window's history starting at its first token.

    This is what the recurrent model sees: ``y[t]`` is predicted from ``x[0..t]`` of its window.
    """
    nll = 0.0
    for first, labels in zip(x[:, 0].tolist(), y.tolist()):
        sequence = [first, *labels]
        for t in range(1, len(sequence)):
            p = lm.probability(sequence[t], sequence[max(0, t - lm.order + 1) : t])
            if p == 0.0:
                return math.inf
            nll -= math.log(p)
    return math.exp(nll / y.size)


def ngram_baselines(counts: list, vocab_size: int, validation, test) -> dict:
    """Uniform, unigram and n-gram perplexities on the test windows; ε and the order picked on validation (§22–§23, §33).

    Args:
        counts: ``[unigram, …, max_order-gram]`` counts of the training ids
            (:func:`pipelines.text.ngrams.ngram_counts`); every order up to ``len(counts)`` is tried.
        vocab_size: ``m`` of the smoothing and the uniform baseline.
        validation: ``(x, y)`` windows that pick ε per order and the best order.
        test: ``(x, y)`` windows that are scored.
    """
    by_order = {}
    for order in range(1, len(counts) + 1):
        scored = []
        for epsilon in EPSILONS:
            lm = NgramLanguageModel(vocab_size, order, epsilon).fit(counts[:order])
            scored.append((ngram_window_perplexity(lm, *validation), epsilon, lm))
        val_ppl, epsilon, lm = min(scored, key=lambda s: s[0])
        by_order[order] = {"epsilon": epsilon, "validation_perplexity": val_ppl, "test_perplexity": ngram_window_perplexity(lm, *test)}
    best = min(by_order, key=lambda order: by_order[order]["validation_perplexity"])
    return {
        "uniform_perplexity": float(vocab_size),
        "unigram_perplexity": by_order[1]["test_perplexity"],
        "best_ngram": {"order": best, **by_order[best]},
        "ngram_by_order": {str(order): result for order, result in by_order.items()},
    }


def report(cfg: LanguageModelConfig, model: keras.Model, splits: Splits, run_dir, context=None) -> dict:
    """Test perplexity beside the n-gram baselines, Zipf's law, samples; ``context`` as in :func:`generate_function`."""
    data = token_corpus(cfg)
    n = cfg.num_steps
    validation, test = (windows(data.streams[name], n, n) for name in ("validation", "test"))
    # The training ids counted as one sequence, as d2l counts a whole book (§23, §24).
    counts = ngram_counts(tf.data.Dataset.from_tensors(data.streams["train"]), NGRAM_ORDERS[cfg.level])
    generate_fn = generate_function(model, text_codec(cfg, model), cfg.max_new_tokens, context)
    length = tf.constant(min(SAMPLE_TOKENS[cfg.level], cfg.max_new_tokens))
    samples = {
        name: generate_fn(tf.constant([cfg.sample_prefix]), tf.constant(temperature), length, tf.constant(0, tf.int64))
        ["continuation"][0].numpy().decode()
        for name, temperature in (("greedy", 0.0), ("temperature_0.8", 0.8))
    }
    return {
        "test_perplexity": model_perplexity(model, *test, batch_size=64),
        "baselines": ngram_baselines(counts, data.vocabulary.size, validation, test),
        "zipf_exponent": zipf_exponent(counts[0]),
        "zipf_plot": str(plot_zipf(dict(zip(("unigram", "bigram", "trigram"), counts)), Path(run_dir) / "zipf.png",
                                   f"Zipf's law: {cfg.level} n-grams of the training split")),
        "sample_prefix": cfg.sample_prefix,
        "samples": samples,
        "vocab_size": data.vocabulary.size,
        "vocabulary": str(asset_path(cfg, VOCABULARY)),
    }


def _register(name: str, cell: str, config: type[LanguageModelConfig], description: str) -> Recipe:
    return register(
        Recipe(
            name=name,
            description=description,
            config=config,
            datasets=datasets,
            model=_model_builder(cell, name),
            compile_args=compile_args,
            serving=serving,
            serving_examples=serving_examples,
            report=report,
            train_transform=train_transform,
        )
    )


RNN_LM = _register("rnn_lm", "rnn", RnnLmConfig, "character-level tanh RNN language model, generate/score serving (notes-002-part2 §32-35)")
GRU_LM = _register("gru_lm", "gru", GruLmConfig, "character-level GRU language model, the notes' gates (reset_after=False) (notes-002-part2 §36)")
LSTM_LM = _register("lstm_lm", "lstm", LstmLmConfig, "character-level LSTM language model (notes-002-part2 §37)")
DEEP_LSTM_LM = _register("deep_lstm_lm", "lstm", DeepLstmLmConfig, "two stacked LSTM layers, character-level language model (notes-002-part2 §38)")
