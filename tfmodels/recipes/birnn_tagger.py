"""``birnn_tagger``: a bidirectional LSTM restores the word boundaries of text written without spaces.

Spec: notes-002-part2.md §39 (seed 002 L3283–3336) and notes-001.md §6 (seed 001 L246–269):
bidirectional RNNs suit tasks where the whole sequence is known and each position is labelled
from both sides — token annotation (L3311–3315) — and cannot be next-token language models
(the reason is in :mod:`tfmodels.models.birnn_tagger`). The model is
:func:`tfmodels.models.birnn_tagger.build_birnn_tagger`.

Task: each document is normalised as the notes do (§21: non-letters → space, lower case), its
spaces are removed, and every letter is tagged 1 if it starts a word, else 0: ``"thevalueof"`` →
``1001000010``. Whether ``v`` starts a word depends on what follows it (``the value`` vs.
``thev…``), so looking ahead helps: the report trains the **same model unidirectional** (the
forward layer only, same data, epochs and optimizer) as the baseline, beside always answering 0
(the majority tag).

Data (``DATA=embedded``; ``file:<path>`` and ``tfds:<name>`` work too): the pydoc help texts of
:mod:`pipelines.text.corpus`, split by document with ``data_seed``; each split is one letter stream
cut into consecutive windows of ``num_steps`` letters (each window read on its own, so its first
letters lack left context and its last letters right context, for both models). ``max_tokens``
keeps the first letters of every stream.

Run asset (:mod:`tfmodels.training.run_assets`): ``vocabulary.txt``, the letters of the training
documents by frequency after the reserved tokens (one per line, id = line), counted at the data
stage and read from the run folder by every later stage, a copied run and ``tfmodels export|evaluate``.

Serving: ``serving_default`` takes ``text`` string [B] (any text; it is normalised and its spaces
dropped, as in training) and returns ``segmented`` string [B] (the letters with a space before each
predicted word start), ``word_start_probability`` float32 [B, T] (padded with 0 after each text's
``num_letters``) and ``num_letters`` int32 [B]. An empty text gives ``""`` and 0 letters. Its
examples (:func:`serving_examples`) are test windows written as unspaced text with the run's
vocabulary, answered by the Keras model on the window's ids (softmax and threshold in NumPy).

Presets: ``tiny`` (tests), ``default`` (a bidirectional LSTM with 64 units per direction, Adam;
both models well within 10 minutes on 2 CPU cores) and ``paper`` (the network of d2l's
bidirectional example, [REF d2l] §39: two bidirectional LSTM layers of 256 units, trained with its
SGD learning rate 1 and θ = 1; the notes give no tagging recipe).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.splits import Splits
from pipelines.text import corpus
from pipelines.text.vocabulary import PAD_ID, RESERVED_TOKENS, Vocabulary, count_tokens, normalize
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.models.birnn_tagger import build_birnn_tagger
from tfmodels.models.rnn_lm import CELLS
from tfmodels.registry import Recipe, register
from tfmodels.training.optimization import make_optimizer
from tfmodels.training.run_assets import lines_asset

TAGS = ("inside", "word_start")
SPLITS = ("train", "validation", "test")
VOCABULARY_FILE = "vocabulary.txt"


@dataclasses.dataclass
class BirnnTaggerConfig(TrainConfig):
    """Word-boundary tagger config.

    Args:
        cell: ``rnn``, ``gru`` or ``lstm``.
        bidirectional: ``False`` trains the forward-only model (the report then trains the
            bidirectional one as the comparison).
        num_steps: letters per window.
        hidden_units: units per direction.
        embedding_dim: letter embedding width.
        num_layers: stacked (bidirectional) layers.
        dropout: dropout after every recurrent layer.
        max_tokens: keep the first letters of each split (0 = all).
    """

    cell: str = "lstm"
    bidirectional: bool = True
    num_steps: int = 64
    hidden_units: int = 64
    embedding_dim: int = 16
    num_layers: int = 1
    dropout: float = 0.0
    max_tokens: int = 0
    clip_global_norm: float = 1.0
    monitor: str = "val_accuracy"

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "cell": CELLS}
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 2, "batch_size": 16, "num_steps": 32, "hidden_units": 16, "embedding_dim": 8,
                 "max_tokens": 4000, "learning_rate": 1e-2, "verbose": 0},
        "default": {"epochs": 8, "batch_size": 32, "learning_rate": 5e-3, "lr_schedule": "cosine", "verbose": 2},
        "paper": {"num_layers": 2, "hidden_units": 256, "optimizer": "sgd", "learning_rate": 1.0, "batch_size": 32,
                  "epochs": 20, "verbose": 2},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_steps < 2 or self.hidden_units < 1 or self.embedding_dim < 1 or self.num_layers < 1:
            raise ConfigError("num_steps must be >= 2; hidden_units, embedding_dim and num_layers >= 1")


def letters_and_word_starts(texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """``[B]`` texts → (letters ``[B, None]`` strings, tags ``[B, None]`` int32: 1 where a word starts).

    The text is normalised (§21) and its spaces dropped; core TensorFlow ops only, so training
    data and the serving graph are made by the same function.

    Example:
        >>> letters, tags = letters_and_word_starts(tf.constant(["The value-of!"]))
        >>> b"".join(letters[0].numpy()), tags[0].numpy().tolist()
        (b'thevalueof', [1, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    """
    chars = tf.strings.bytes_split(normalize(texts))
    space = tf.fill([tf.shape(texts)[0], 1], " ")
    previous = tf.concat([tf.RaggedTensor.from_tensor(space), chars], axis=1)[:, :-1]
    is_letter = tf.not_equal(chars, " ")
    starts = tf.cast(tf.equal(previous, " "), tf.int32)
    return tf.ragged.boolean_mask(chars, is_letter), tf.ragged.boolean_mask(starts, is_letter)


def _training_letters(cfg: BirnnTaggerConfig) -> list[str]:
    counts = count_tokens(corpus.load(cfg.data, seed=cfg.data_seed).train, "char")
    return Vocabulary.from_counts({token: n for token, n in counts.items() if token != " "}).tokens


def vocabulary(cfg: BirnnTaggerConfig) -> Vocabulary:
    """The run's letter vocabulary (``vocabulary.txt``), counted on the training documents at the data stage."""
    return Vocabulary(lines_asset(cfg, VOCABULARY_FILE, lambda: _training_letters(cfg)))


def letter_streams(documents: tf.data.Dataset, vocabulary: Vocabulary, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The letter ids and word-start tags of all ``documents`` in order (the first ``max_tokens``; 0 = all)."""
    pairs = documents.map(lambda doc: tuple(part[0] for part in letters_and_word_starts(doc[None])))
    pairs = pairs.map(lambda letters, tags: (tf.cast(vocabulary.lookup(letters), tf.int32), tags))
    ids, tags = (np.concatenate([np.zeros(0, np.int32), *parts]) for parts in zip(*pairs.as_numpy_iterator()))
    return (ids[:max_tokens], tags[:max_tokens]) if max_tokens else (ids, tags)


def windows(ids: np.ndarray, tags: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows of ``length`` letters and their tags (the remainder is dropped)."""
    count = len(ids) // length
    if count < 1:
        raise ConfigError(f"{len(ids)} letters cannot fill one window of {length}: use more data or a smaller num_steps")
    return ids[: count * length].reshape(count, length), tags[: count * length].reshape(count, length)


def datasets(cfg: BirnnTaggerConfig) -> Splits:
    """Unbatched ``(letter ids [num_steps], tags [num_steps])`` windows of each split."""
    documents, vocab = corpus.load(cfg.data, seed=cfg.data_seed), vocabulary(cfg)
    streams = {name: letter_streams(getattr(documents, name), vocab, cfg.max_tokens) for name in SPLITS}
    parts = {name: windows(*streams[name], cfg.num_steps) for name in SPLITS}
    info = {
        "source": documents.info["source"],
        "documents": documents.info["sizes"],
        "letters": {name: int(len(ids)) for name, (ids, _) in streams.items()},
        "vocab_size": vocab.size,
        "tags": list(TAGS),
        "sizes": {name: len(x) for name, (x, _) in parts.items()},
    }
    return Splits(*(tf.data.Dataset.from_tensor_slices(parts[name]) for name in SPLITS), info)


def _build(cfg: BirnnTaggerConfig, bidirectional: bool) -> keras.Model:
    return build_birnn_tagger(
        vocabulary(cfg).size, len(TAGS), cfg.cell, cfg.hidden_units, cfg.embedding_dim,
        cfg.num_layers, bidirectional, cfg.dropout, name="birnn_tagger" if bidirectional else "unirnn_tagger",
    )


def model(cfg: BirnnTaggerConfig) -> keras.Model:
    return _build(cfg, cfg.bidirectional)


def compile_args(cfg: BirnnTaggerConfig) -> dict:
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    }


def tag_scores(net: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
    """Accuracy over all letters and precision / recall / F1 of the word-start tag."""
    predicted = np.argmax(net.predict(x, batch_size=batch_size, verbose=0), axis=-1)
    hits = int(((predicted == 1) & (y == 1)).sum())
    precision = hits / max(int((predicted == 1).sum()), 1)
    recall = hits / max(int((y == 1).sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((predicted == y).mean()), "word_start_precision": precision,
            "word_start_recall": recall, "word_start_f1": f1}


def _arrays(split: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All ``(ids, tags)`` windows of an unbatched split."""
    ids, tags = zip(*split.batch(4096).as_numpy_iterator())
    return np.concatenate(ids), np.concatenate(tags)


def report(cfg: BirnnTaggerConfig, net: keras.Model, splits: Splits, run_dir) -> dict:
    """This run's model beside the other direction setting, trained the same way, and the majority tag."""
    x_test, y_test = _arrays(splits.test)
    train = _arrays(splits.train)
    batch = cfg.batch_size or len(train[0])
    other = _build(cfg, not cfg.bidirectional)
    other.compile(optimizer=make_optimizer(cfg, -(-len(train[0]) // batch)), **compile_args(cfg))
    other.fit(
        tf.data.Dataset.from_tensor_slices(train).shuffle(len(train[0]), seed=cfg.seed).batch(batch),
        epochs=cfg.epochs, shuffle=False, verbose=0,  # shuffled above, once per epoch
    )
    scores = {cfg.bidirectional: tag_scores(net, x_test, y_test, batch), not cfg.bidirectional: tag_scores(other, x_test, y_test, batch)}
    return {
        "bidirectional": scores[True],
        "unidirectional": scores[False],
        "majority_tag_accuracy": float((y_test == 0).mean()),
        "word_start_share": float(y_test.mean()),
    }


def serving(cfg: BirnnTaggerConfig, net: keras.Model) -> Serving:
    vocab = vocabulary(cfg)
    if net.output_shape[-1] != len(TAGS) or net.get_layer("embedding").input_dim != vocab.size:
        raise ConfigError(f"the model does not match the run's {VOCABULARY_FILE} of {vocab.size} letters: the run folder's assets do not belong to its model")
    text_to_ids = vocab.text_layer("char", name="text_to_ids")
    # The export tracks the model's objects only; as an attribute of the model, the lookup table
    # of the text layer is saved with the SavedModel.
    net.text_to_ids = text_to_ids

    def tag(text):
        letters, _ = letters_and_word_starts(text)
        ids = tf.cast(text_to_ids(tf.strings.reduce_join(letters, axis=1)), tf.int32)
        probability = tf.nn.softmax(tf.cast(net(ids, training=False), tf.float32))[..., 1]
        probability *= tf.cast(ids != PAD_ID, tf.float32)
        starts = tf.RaggedTensor.from_tensor(probability > 0.5, lengths=letters.row_lengths())
        first = tf.ragged.range(letters.row_lengths()) == 0
        spaced = tf.where(starts.flat_values & ~first.flat_values, tf.strings.join([" ", letters.flat_values]), letters.flat_values)
        return {
            "segmented": tf.strings.reduce_join(letters.with_flat_values(spaced), axis=1),
            "word_start_probability": probability,
            "num_letters": tf.cast(letters.row_lengths(), tf.int32),
        }

    return Serving(
        {
            "serving_default": Endpoint(
                tag,
                {"text": tf.TensorSpec([None], tf.string)},
                {
                    "segmented": "string [B]: the normalised letters with a space before each predicted word start",
                    "word_start_probability": "float32 [B, T]: P(letter starts a word), 0 after num_letters",
                    "num_letters": "int32 [B]: letters read (normalised text without spaces)",
                },
            )
        }
    )


def serving_examples(cfg: BirnnTaggerConfig, net: keras.Model, test: tf.data.Dataset, count: int = 3) -> dict:
    """``count`` test windows as unspaced text (the run's vocabulary), and the Keras model's tags for their ids."""
    tokens = np.array(vocabulary(cfg).tokens, object)
    # A window with a reserved id (a letter unseen in training) has no text that reads back to it.
    ids = np.stack(list(itertools.islice((x for x, _ in test.as_numpy_iterator() if x.min() >= len(RESERVED_TOKENS)), count)))
    logits = np.asarray(net(ids, training=False), np.float64)
    probability = 1 / (1 + np.exp(logits[..., 0] - logits[..., 1]))  # softmax over the two tags
    segmented = [
        "".join(f" {letter}" if p > 0.5 and i > 0 else letter for i, (letter, p) in enumerate(zip(row, row_p)))
        for row, row_p in zip(tokens[ids], probability)
    ]
    return {
        "serving_default": ServingExample(
            {"text": np.array(["".join(row).encode() for row in tokens[ids]], object)},
            {
                "segmented": np.array([text.encode() for text in segmented], object),
                "word_start_probability": probability.astype(np.float32),
                "num_letters": np.full(len(ids), ids.shape[1], np.int32),
            },
        )
    }


RECIPE = register(
    Recipe(
        name="birnn_tagger",
        description="bidirectional LSTM restores word boundaries in unspaced text, vs. forward-only (notes-002-part2 §39)",
        config=BirnnTaggerConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
    )
)
