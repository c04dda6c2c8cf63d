"""The notes' text preprocessing and vocabulary (notes-002-part2 §21, seed lines 2531–2561).

Three steps, as the notes list them:

1. **Normalise** each text: every character that is not an ASCII letter becomes a space (runs of
   them one space), the ends are stripped and everything is lower-cased — d2l's
   ``re.sub('[^A-Za-z]+', ' ', line).strip().lower()`` ([REF d2l] §21). Newlines are non-letters,
   so they become spaces too (the notes' "remove newlines").
2. **Tokenise** into words (split on spaces) or characters (every character, spaces included).
3. **Vocabulary**: count the tokens of the training corpus and give ids by frequency; tokens
   seen fewer than ``min_freq`` times are left out and map to ``<unk>``.

Id order (:data:`RESERVED_TOKENS`): ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3,
then the corpus tokens by descending count. ``<pad>`` is 0 so that Keras' ``mask_zero`` and
zero-padding agree with it. d2l puts ``<unk>`` first; the notes only ask for ids from 0, an
``<unk>`` token and optional reserved tokens, so the order here is a free choice. Ties in count
are broken by descending token (UTF-8 byte) order: the order ``keras.layers.StringLookup.adapt``
gives (``np.lexsort((tokens, counts))[::-1]``), so an adapted Keras lookup and this vocabulary
agree, and the order does not depend on the order documents are read (d2l's first-occurrence
order would).

Counting runs in ``tf.data`` (:func:`count_tokens`); lookups are core TensorFlow ops
(``keras.layers.StringLookup`` builds a ``StaticHashTable``; ids back to tokens is ``tf.gather``),
so :class:`TextToTokenIds` can sit inside a serving graph that stock TF-Serving runs.

Why not ``keras.layers.TextVectorization``: its ``standardize`` callable and ``split="character"``
would do steps 1–2, but it hard-codes its lookup's special tokens to ``""`` (mask, id 0) and
``"[UNK]"`` (id 1), so its ids could not be named ``<pad>``/``<unk>``, and its ``adapt`` has no
``min_freq``. :class:`TextToTokenIds` is the same pipeline with Keras' ``StringLookup`` configured
for the notes' tokens.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Iterable, Mapping

import keras
import tensorflow as tf

from pipelines.text.ngrams import count_ngrams

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
RESERVED_TOKENS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
LEVELS = ("word", "char")


def normalize(text: tf.Tensor) -> tf.Tensor:
    """The notes' normalisation (§21 step 1): non-letters → one space, strip, lower-case.

    Core ops only (``RegexReplace``, ``StringStrip``, ``StringLower``); works on string tensors
    of any shape.

    Args:
        text: a string tensor.

    Example:
        >>> normalize(tf.constant("Hello, World!\\n")).numpy()
        b'hello world'
    """
    text = tf.strings.regex_replace(text, "[^A-Za-z]+", " ")
    return tf.strings.lower(tf.strings.strip(text))


def tokenize(text: tf.Tensor, level: str = "word") -> tf.Tensor | tf.RaggedTensor:
    """Splits normalised text into tokens (§21 step 2): words, or characters with spaces kept.

    Args:
        text: a normalised string tensor: a scalar gives a 1-D token tensor, a batch ``[B]`` a
            ragged ``[B, None]`` one.
        level: ``"word"`` (d2l's ``line.split()``) or ``"char"`` (d2l's ``list(line)``). After
            :func:`normalize` every character is one byte, so characters are bytes.

    Example:
        >>> tokenize(tf.constant("the time"), "char").numpy().tolist()
        [b't', b'h', b'e', b' ', b't', b'i', b'm', b'e']
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return tf.strings.split(text) if level == "word" else tf.strings.bytes_split(text)


def tokenized(texts: tf.data.Dataset, level: str = "word") -> tf.data.Dataset:
    """A dataset of strings (documents or lines) → a dataset of their token sequences.

    Args:
        texts: a dataset of scalar strings.
        level: ``"word"`` or ``"char"`` (see :func:`tokenize`).
    """
    return texts.map(lambda text: tokenize(normalize(text), level), num_parallel_calls=tf.data.AUTOTUNE)


def count_tokens(texts: tf.data.Dataset, level: str = "word") -> collections.Counter:
    """Token counts of a corpus (§21 step 3), computed in ``tf.data``: document → tokens → counts.

    Args:
        texts: a dataset of scalar strings (documents or lines).
        level: ``"word"`` or ``"char"``.

    Returns:
        A ``Counter`` mapping token (str) → count, equal to ``collections.Counter`` over the
        same tokens.
    """
    unigrams = count_ngrams(tokenized(texts, level), 1)
    return collections.Counter({token: count for (token,), count in unigrams.items()})


class Vocabulary:
    """Token ↔ id mapping: reserved tokens first, then corpus tokens by frequency (§21).

    Build it with :meth:`from_counts` or :meth:`from_texts`; ids follow the module's order
    (``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3, then by descending count, ties by
    descending token).

    Args:
        tokens: the full id → token list; it must start with :data:`RESERVED_TOKENS`.

    Example:
        >>> vocab = Vocabulary.from_counts({"b": 1, "a": 3, "c": 1}, min_freq=2)
        >>> vocab.tokens
        ['<pad>', '<unk>', '<bos>', '<eos>', 'a']
        >>> vocab.lookup(tf.constant(["a", "c"])).numpy().tolist()
        [4, 1]
    """

    def __init__(self, tokens: Iterable[str]):
        tokens = list(tokens)
        if tuple(tokens[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
            raise ValueError(f"a vocabulary starts with {RESERVED_TOKENS}, got {tokens[:4]}")
        if len(set(tokens)) != len(tokens):
            duplicated = sorted(t for t, c in collections.Counter(tokens).items() if c > 1)
            raise ValueError(f"duplicated tokens in the vocabulary: {duplicated[:10]}")
        self.tokens = tokens
        self._lookup = string_lookup(tokens)
        self._tokens_tensor = tf.constant(tokens)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_freq: int = 0) -> Vocabulary:
        """Orders counted tokens by frequency after the reserved tokens, dropping rare ones.

        Args:
            counts: token → count (e.g. from :func:`count_tokens`).
            min_freq: tokens counted fewer times are left out (they map to ``<unk>``);
                d2l's default 0 keeps all ([REF d2l] §21).
        """
        kept = [(t, c) for t, c in counts.items() if c >= min_freq and t not in RESERVED_TOKENS]
        kept.sort(key=lambda tc: (tc[1], tc[0].encode("utf-8")), reverse=True)
        return cls([*RESERVED_TOKENS, *(t for t, _ in kept)])

    @classmethod
    def from_texts(cls, texts: tf.data.Dataset, level: str = "word", min_freq: int = 0) -> Vocabulary:
        """Counts the tokens of a dataset of strings in ``tf.data`` and builds the vocabulary.

        Args:
            texts: a dataset of scalar strings (the training documents or lines).
            level: ``"word"`` or ``"char"``.
            min_freq: see :meth:`from_counts`.
        """
        return cls.from_counts(count_tokens(texts, level), min_freq)

    @property
    def size(self) -> int:
        """The number of ids, reserved tokens included."""
        return len(self.tokens)

    def __len__(self) -> int:
        return self.size

    def lookup(self, tokens) -> tf.Tensor | tf.RaggedTensor:
        """Tokens (a string tensor of any shape, or ragged) → int64 ids; unknown tokens → ``<unk>``."""
        return self._lookup(tokens)

    def tokens_of(self, ids) -> tf.Tensor | tf.RaggedTensor:
        """Ids (an int tensor of any shape, or ragged) → their token strings (``tf.gather``)."""
        return tf.gather(self._tokens_tensor, ids)

    def text_layer(self, level: str = "word", sequence_length: int | None = None, **kwargs) -> TextToTokenIds:
        """A :class:`TextToTokenIds` layer that carries this vocabulary into a model."""
        return TextToTokenIds(self.tokens, level=level, sequence_length=sequence_length, **kwargs)

    def save(self, path: str | Path) -> None:
        """Writes the tokens to a UTF-8 text file, one per line, in id order."""
        if any("\n" in token for token in self.tokens):
            raise ValueError("a token holds a newline: it cannot be saved one token per line")
        Path(path).write_text("".join(f"{token}\n" for token in self.tokens), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Reads a file written by :meth:`save` (a character vocabulary's ``" "`` line included)."""
        # split("\n"), not splitlines(): a token may be a lone space, and no token holds "\n".
        return cls(Path(path).read_text(encoding="utf-8").split("\n")[:-1])


def string_lookup(tokens: list[str], **kwargs) -> keras.layers.StringLookup:
    """Keras' ``StringLookup`` over a full token list, with ``<pad>`` as its mask and ``<unk>`` as OOV.

    Keras recognises the leading ``["<pad>", "<unk>"]`` as its own special tokens, so ids equal
    the positions in ``tokens``; ``<pad>`` → 0 and any unknown string → 1.
    """
    return keras.layers.StringLookup(vocabulary=tokens, mask_token=PAD, oov_token=UNK, num_oov_indices=1, **kwargs)


@keras.saving.register_keras_serializable(package="tfmodels")
class TextToTokenIds(keras.layers.Layer):
    """Raw strings ``[B]`` → padded int64 token ids ``[B, length]``, the notes' preprocessing in a model (§21).

    :func:`normalize`, :func:`tokenize` and a ``StringLookup`` over the stored vocabulary, all
    core TensorFlow ops, so a SavedModel that contains this layer tokenises on stock TF-Serving
    exactly as in training. The vocabulary is part of the config: ``.keras`` files round-trip
    and exports carry it as graph constants.

    Args:
        vocabulary: the id → token list (``Vocabulary.tokens``).
        level: ``"word"`` or ``"char"``.
        sequence_length: pad with ``<pad>`` (0) or truncate to this length; ``None`` pads to the
            longest text of the batch.

    Example:
        >>> layer = TextToTokenIds(["<pad>", "<unk>", "<bos>", "<eos>", "the", "time"])
        >>> layer(tf.constant(["The Time!", "the time-machine"])).numpy().tolist()
        [[4, 5, 0], [4, 5, 1]]
    """

    def __init__(self, vocabulary, level: str = "word", sequence_length: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.vocabulary = list(vocabulary)
        self.level = level
        self.sequence_length = sequence_length
        self.lookup = string_lookup(self.vocabulary, name="lookup")

    def build(self, input_shape):
        self.lookup.build((*input_shape, None))  # the lookup sees [batch, tokens]
        super().build(input_shape)

    def call(self, texts):
        ids = self.lookup(tokenize(normalize(texts), self.level))
        shape = None if self.sequence_length is None else [None, self.sequence_length]
        return ids.to_tensor(default_value=PAD_ID, shape=shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.sequence_length)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "level": self.level,
            "sequence_length": self.sequence_length,
        }
