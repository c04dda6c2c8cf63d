"""Learning a WordPiece vocabulary from documents, and saving/loading it one token per line.

The learner is tensorflow-text's WordPiece vocabulary learner (``wordpiece_tokenizer_learner_lib``,
the one behind its ``bert_vocab_from_dataset`` and keras-hub's ``compute_word_piece_vocabulary``:
a frequency-threshold search over candidate pieces). tensorflow-text is needed at training time
only: the tokenizer that uses the vocabulary (:class:`pipelines.text.wordpiece.WordPieceTokenizer`)
is core TensorFlow. The words it counts come from our own basic tokenizer
(:func:`pipelines.text.bert_normalize.basic_tokenize`, the same words as tensorflow-text's), inside
a ``tf.data`` map. BERT's vocabulary has 30,522 entries (paper default).
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from pipelines.text.bert_normalize import basic_tokenize
from pipelines.text.wordpiece import read_vocabulary

# BERT's special tokens, at ids 0..4 in this order.
PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
RESERVED_TOKENS = (PAD, UNK, CLS, SEP, MASK)


def learn_vocabulary(
    documents: tf.data.Dataset,
    vocabulary_size: int,
    reserved_tokens: tuple[str, ...] = RESERVED_TOKENS,
    min_frequency: int = 10,
    batch_size: int = 64,
) -> list[str]:
    """Learns a WordPiece vocabulary of at most ``vocabulary_size`` tokens from documents.

    The reserved tokens come first (ids ``0..len(reserved_tokens)-1``), then the corpus'
    characters (up to 1,000, the most frequent), then the learned pieces by frequency, which
    include every character as a ``##`` continuation, so that a word of known characters can
    always be split. A small corpus can give fewer tokens than asked for. The learner is pure
    Python and quadratic in word length: about 10 s for the embedded corpus on 2 CPU cores.

    Args:
        documents: a dataset of scalar strings (one document, sentence or line per element).
        vocabulary_size: the maximum number of tokens, reserved tokens included.
        reserved_tokens: tokens placed first, in this order.
        min_frequency: a piece seen fewer times is never learned (the learner's ``lower_thresh``;
            its default, 10).
        batch_size: documents per tokenisation batch.

    Returns:
        The tokens; a token's id is its index.

    Example:
        >>> docs = tf.data.Dataset.from_tensor_slices(["The cat sat on the mat."] * 20)
        >>> vocabulary = learn_vocabulary(docs, 40)
        >>> vocabulary[:5], "cat" in vocabulary
        (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'], True)
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    words = documents.batch(batch_size).map(
        lambda batch: basic_tokenize(batch).flat_values, num_parallel_calls=tf.data.AUTOTUNE
    )
    vocabulary = learner.learn(
        learner.count_words(words), vocabulary_size, list(reserved_tokens), lower_thresh=min_frequency, joiner="##"
    )
    return vocabulary[:vocabulary_size]


def save_vocabulary(vocabulary: list[str], path: str | os.PathLike) -> Path:
    """Writes one token per line (UTF-8, ``\\n``), the format BERT's ``vocab.txt`` uses."""
    if any("\n" in token or "\r" in token for token in vocabulary):
        raise ValueError("a token contains a line break and cannot be saved one per line")
    path = Path(path)
    path.write_text("".join(f"{token}\n" for token in vocabulary), encoding="utf-8")
    return path


def load_vocabulary(path: str | os.PathLike) -> list[str]:
    """Reads a one-token-per-line vocabulary file (the format of :func:`save_vocabulary`)."""
    return read_vocabulary(Path(path))
