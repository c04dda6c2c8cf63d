"""Translation pairs for the seq2seq models: sources, normalisation, vocabularies and teacher-forcing examples.

Specs: notes-002-part2.md §41 (seed 002 L3381–3433: machine translation, ``<bos>``/``<eos>``,
teacher forcing: the decoder reads ``<bos>`` + the target without ``<eos>``) and its [REF d2l]
pipeline (``preprocess_nmt``, word tokens, ``<eos>`` appended, ``truncate_pad`` to ``num_steps``,
vocabulary with ``min_freq``); §21 for the vocabulary (:class:`pipelines.text.vocabulary.Vocabulary`).

``DATA=`` specs (:func:`load_pairs`):

* ``embedded`` (default, offline, deterministic): **English number words → digits** for 12,101
  distinct numbers 0–999,999 drawn with a fixed seed (:func:`number_pairs`: a digit count 1–6
  uniformly, then a number of that length), e.g. ``"three hundred thousand and five" → "3 0 0 0 0 5"``
  and ``"forty-two" → "4 2"`` (British English: "and" before the tens and units). Why this task:
  it is real English with real translation difficulties at a size that trains in minutes on a
  CPU. The source has 103 word types (the 72 compound tens such as ``forty-two`` are one token
  each, as d2l's tokenisation keeps hyphenated words whole) and up to 9 tokens; the target has 10
  types and up to 6 tokens. Word order and digit order mostly agree, but lengths differ and the
  model must *write* tokens the source never names — the zeros of "three hundred thousand and
  five" — which needs to know where in the number it is. Each number is one pair, so the seeded
  split (80 / 10 / 10 %) leaves 1,210 test numbers the model never saw. The notes name no
  translation corpus (§41 [REF d2l] uses Tatoeba English–French, which needs a download).
* ``file:<path>``: a UTF-8 text file of tab-separated pairs, one per line — d2l's ``fra.txt``
  (Tatoeba/ManyThings format: ``English\\tFrench\\tattribution``; columns after the second are
  ignored).
* ``tfds:<name>[:<split>]``: a TensorFlow Datasets translation set read ``as_supervised`` (a
  ``(source, target)`` pair per example) from one split (default ``train``), e.g.
  ``tfds:ted_hrlr_translate/pt_to_en``. All its pairs are split here the same way as the others.

Splits (:func:`split_data`, :func:`split_pairs`) are by **distinct source sentence**: pairs that
share a source (fra.txt has several translations of ``go .``) land in the same split, so no test
source is seen in training. Both vocabularies are counted on the training pairs only
(:func:`count_vocabulary`); a training run keeps them as run assets, so nothing here is cached.

Normalisation (:func:`normalize`): d2l's ``preprocess_nmt`` — non-breaking spaces become spaces,
lower case (Unicode, so ``É`` → ``é``), and a space is inserted before every ``, . ! ?`` that
follows a non-space character (``"quoi ?!"`` → ``"quoi ? !"``, as d2l does), so that punctuation
marks are tokens; tokens are split on whitespace. It is idempotent: the tokens joined with
spaces normalise to the same tokens, so a source can be rebuilt from its ids. The notes'
language-model rule (:func:`pipelines.text.vocabulary.normalize`: every non-letter → space)
cannot be used here: it deletes the digits of the embedded target language and the accents and
apostrophes of French (``j'ai``), and translation needs punctuation as output tokens. Everything
is core TensorFlow, so the serving graph normalises exactly as training did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from pipelines import sources
from pipelines.splits import Splits, split_indices
from pipelines.text.vocabulary import BOS_ID, EOS_ID, PAD_ID, Vocabulary

SOURCES = ("embedded", "file:*", "tfds:*")
EMBEDDED_SOURCE = "English number words -> digits, 0-999,999 (embedded, generated with a fixed seed)"

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
MAX_NUMBER = 999_999
NUMBER_DRAWS = 24_000


def _below_hundred(n: int) -> str:
    return _UNITS[n] if n < 20 else _TENS[n // 10] + ("" if n % 10 == 0 else f"-{_UNITS[n % 10]}")


def _below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_UNITS[hundreds], "hundred"] if hundreds else []
    if rest:
        words += (["and"] if hundreds else []) + [_below_hundred(rest)]
    return words


def number_words(n: int) -> str:
    """``n`` (0–999,999) written out in British English ("and" before the tens and units).

    Example:
        >>> [number_words(n) for n in (0, 42, 305, 3005, 342105)]
        ['zero', 'forty-two', 'three hundred and five', 'three thousand and five', 'three hundred and forty-two thousand one hundred and five']
    """
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"number_words covers 0..{MAX_NUMBER}, got {n}")
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [*_below_thousand(thousands), "thousand"] if thousands else []
    if rest:
        # "three thousand and five": the "and" of a part below a hundred that follows "thousand"
        words += (["and"] if thousands and rest < 100 else []) + _below_thousand(rest)
    return " ".join(words)


def number_pairs(count: int = NUMBER_DRAWS, seed: int = 0) -> list[tuple[str, str]]:
    """The embedded task: ``(number_words(n), "d d d")`` for distinct numbers drawn with a fixed seed.

    Each draw picks a digit count 1–6 uniformly, then a number with that many digits uniformly, so
    short and long numbers are equally common; repeated draws are dropped (all 100 numbers below
    100 are in the set). Sorted by number.

    Example:
        >>> number_pairs(5, seed=1)[:2]
        [('three', '3'), ('two hundred and twenty-nine', '2 2 9')]
    """
    rng = np.random.default_rng(seed)
    digits = rng.integers(1, 7, count)
    low = np.where(digits == 1, 0, 10 ** (digits - 1))
    numbers = sorted(set(rng.integers(low, 10**digits).tolist()))
    return [(number_words(n), " ".join(str(n))) for n in numbers]


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Tab-separated pairs of a UTF-8 file (d2l's ``fra.txt`` format); blank lines are skipped.

    Raises:
        DataSourceError: the file is missing, not UTF-8, or a line has no tab.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise sources.DataSourceError(f"translation file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise sources.DataSourceError(f"{path} is not UTF-8 text ({err})") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise sources.DataSourceError(f"{path}:{number}: expected 'source<TAB>target', got {line[:60]!r}")
        pairs.append((columns[0], columns[1]))
    if not pairs:
        raise sources.DataSourceError(f"{path} holds no pairs")
    return pairs


def _tfds_pairs(argument: str) -> list[tuple[str, str]]:
    name, _, split = argument.partition(":")
    examples = sources.tfds_load(name, split or "train", as_supervised=True)
    spec = examples.element_spec
    if not (isinstance(spec, tuple) and all(s.dtype == tf.string for s in spec)):
        raise sources.DataSourceError(f"TFDS dataset {name!r} is not a translation set: its supervised pairs are {spec}")
    return [(s.decode("utf-8"), t.decode("utf-8")) for s, t in examples.as_numpy_iterator()]


def load_pairs(spec: str = "embedded") -> list[tuple[str, str]]:
    """The raw ``(source, target)`` string pairs of a ``DATA=`` spec (see the module docstring)."""
    kind, argument = sources.parse(spec, SOURCES)
    if kind == "embedded":
        return number_pairs()
    if kind == "file":
        return read_pairs(argument)
    return _tfds_pairs(argument)


def normalize(text: tf.Tensor) -> tf.Tensor:
    """d2l's ``preprocess_nmt`` in core ops: no-break spaces → space, Unicode lower case, space before ``, . ! ?``.

    d2l puts a space before each of ``, . ! ?`` whose preceding character is not a space; a
    space before every one of them, with runs of spaces collapsed, is the same text.

    Example:
        >>> normalize(tf.constant("Va\\u202f!  J'ai PERDU?!")).numpy().decode()
        "va ! j'ai perdu ? !"
    """
    text = tf.strings.regex_replace(text, "[\u00a0\u202f]", " ")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"([,.!?])", r" \1")
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


def tokenize(texts: tf.Tensor) -> tf.RaggedTensor:
    """``[B]`` raw strings → ragged ``[B, None]`` word tokens after :func:`normalize`."""
    return tf.strings.split(normalize(texts))


def pad_ids(ids: tf.RaggedTensor, length: int) -> tf.Tensor:
    """Ragged ids → ``[B, length]`` int32, truncated or padded with ``<pad>`` (d2l's ``truncate_pad``)."""
    return tf.cast(ids.to_tensor(default_value=PAD_ID, shape=[None, length]), tf.int32)


def teacher_forcing(target_ids: tf.RaggedTensor, length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Target ids → (decoder input, label), both ``[B, length]`` int32 (§41, seed L3423–3426).

    The label is the target with ``<eos>`` appended, truncated/padded to ``length``; the decoder
    input is ``<bos>`` followed by the label without its last position.

    Example:
        >>> inputs, labels = teacher_forcing(tf.ragged.constant([[7, 8]]), 4)
        >>> inputs.numpy().tolist(), labels.numpy().tolist()
        ([[2, 7, 8, 3]], [[7, 8, 3, 0]])
    """
    target_ids = tf.cast(target_ids, tf.int32)
    eos = tf.fill([target_ids.nrows(), 1], EOS_ID)
    labels = pad_ids(tf.concat([target_ids, tf.cast(eos, tf.int32)], axis=1), length)
    inputs = tf.concat([tf.fill([tf.shape(labels)[0], 1], BOS_ID), labels[:, :-1]], axis=1)
    return inputs, labels


def split_pairs(pairs: Sequence[tuple[str, str]], fractions=(0.1, 0.1), seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """Seeded train / validation / test split by distinct (normalised) source: a source's pairs share a split.

    Example:
        >>> parts = split_pairs([("Go.", "Va !"), ("go .", "Bouge !"), ("Hi.", "Salut !"), ("Run!", "Cours !")], (0.34, 0.34))
        >>> sorted(len(p) for p in parts.values())
        [1, 1, 2]
    """
    keys = [key.decode() for key in normalize(tf.constant([s for s, _ in pairs])).numpy()]
    distinct = sorted(set(keys))
    parts = split_indices(len(distinct), fractions, seed)
    part_of = {distinct[i]: name for name, indices in zip(("train", "validation", "test"), parts) for i in indices}
    split = {"train": [], "validation": [], "test": []}
    for key, pair in zip(keys, pairs):
        split[part_of[key]].append(pair)
    return split


def count_vocabulary(texts: Sequence[str], min_freq: int = 0) -> Vocabulary:
    """The vocabulary of ``texts`` (the training sources or targets) after :func:`tokenize`.

    Example:
        >>> count_vocabulary(["Go.", "go on!"], min_freq=2).tokens
        ['<pad>', '<unk>', '<bos>', '<eos>', 'go']
    """
    tokens = tokenize(tf.constant(list(texts))).flat_values.numpy()
    values, counts = np.unique(tokens, return_counts=True)
    return Vocabulary.from_counts({value.decode("utf-8"): int(count) for value, count in zip(values, counts)}, min_freq)


@dataclasses.dataclass(frozen=True)
class TranslationData:
    """A translation task ready for training: vocabularies of the training pairs and the pairs per split.

    Args:
        source_vocabulary: counted on the training sources.
        target_vocabulary: counted on the training targets.
        pairs: ``{"train" | "validation" | "test": [(source, target), ...]}`` raw strings
            (:func:`split_data`).
        spec: the ``DATA=`` spec the pairs come from.
    """

    source_vocabulary: Vocabulary
    target_vocabulary: Vocabulary
    pairs: dict[str, list[tuple[str, str]]]
    spec: str

    @property
    def info(self) -> dict[str, Any]:
        """Facts for ``Splits.info`` and the report."""
        return {
            "source": EMBEDDED_SOURCE if self.spec == "embedded" else self.spec,
            "sizes": {name: len(part) for name, part in self.pairs.items()},
            "source_vocab_size": self.source_vocabulary.size,
            "target_vocab_size": self.target_vocabulary.size,
        }

    def examples(self, split: str, num_steps: int) -> tf.data.Dataset:
        """Unbatched teacher-forcing examples of a split (§41).

        Returns:
            ``({"source_ids": [num_steps], "decoder_input_ids": [num_steps]}, label [num_steps])``,
            int32, padded with ``<pad>`` (0); the label is the target + ``<eos>`` (truncated).
        """
        sources_, targets = zip(*self.pairs[split])
        source_ids = pad_ids(self.source_vocabulary.lookup(tokenize(tf.constant(sources_))), num_steps)
        decoder_input, label = teacher_forcing(self.target_vocabulary.lookup(tokenize(tf.constant(targets))), num_steps)
        return tf.data.Dataset.from_tensor_slices(({"source_ids": source_ids, "decoder_input_ids": decoder_input}, label))

    def splits(self, num_steps: int) -> Splits:
        """:class:`pipelines.splits.Splits` of :meth:`examples` for train / validation / test."""
        return Splits(*(self.examples(name, num_steps) for name in ("train", "validation", "test")), self.info)


def split_data(spec: str = "embedded", seed: int = 0, num_examples: int = 0, fractions=(0.1, 0.1)) -> dict[str, list[tuple[str, str]]]:
    """The raw pairs of ``spec`` split by source (:func:`split_pairs`).

    Args:
        spec: ``embedded``, ``file:<path>`` or ``tfds:<name>[:<split>]``.
        seed: the split's seed.
        num_examples: keep the first pairs of the source before splitting (0 = all; d2l's
            ``num_examples``).
        fractions: validation and test shares of the distinct sources.

    Raises:
        DataSourceError: the source cannot be read, or has too few pairs for three splits.
    """
    pairs = load_pairs(spec)
    pairs = pairs[:num_examples] if num_examples else pairs
    split = split_pairs(pairs, fractions, seed)
    if not all(split.values()):
        raise sources.DataSourceError(f"{spec}: {len(pairs)} pairs are too few for a train / validation / test split")
    return split


def load(spec: str = "embedded", min_freq: int = 0, seed: int = 0, num_examples: int = 0, fractions=(0.1, 0.1)) -> TranslationData:
    """:func:`split_data` with vocabularies counted on the training pairs (``min_freq``: rarer
    training tokens map to ``<unk>``; d2l uses 2 for fra.txt).

    Example:
        >>> data = load("embedded")
        >>> data.info["sizes"], data.source_vocabulary.size, data.target_vocabulary.size
        ({'train': 9681, 'validation': 1210, 'test': 1210}, 107, 14)
    """
    split = split_data(spec, seed, num_examples, fractions)
    train_sources, train_targets = zip(*split["train"])
    return TranslationData(count_vocabulary(train_sources, min_freq), count_vocabulary(train_targets, min_freq), split, spec)
