"""Text corpora: documents as a ``tf.data.Dataset`` of strings, and document-level splits.

A corpus feeds language models (BERT pre-training here, RNN/Transformer language models later),
so it is plain documents — one scalar string per element — and knows nothing of tokenisation.
``DATA=`` specs (:func:`documents`):

* ``embedded`` (default, offline): the help texts that CPython ships in ``pydoc_data.topics``
  (79 topics of the language reference on Python 3.11, about 465,000 characters), one document per
  topic in sorted topic order. reStructuredText heading underlines (``*****``, ``=====``) are
  dropped. No natural-language corpus is named by the notes (notes-001.md "Not named anywhere";
  notes-002-part2.md §54 suggests a bundled small text), and this one ships with Python itself.
* ``file:<path>``: a UTF-8 text file, documents separated by blank lines.
* ``timemachine`` (online once, then cached): H. G. Wells' *The Time Machine*, the notes' corpus
  (notes-002-part2.md §21, seed 002 L2531–2561; d2l's ``timemachine.txt``), downloaded from d2l's
  URL, checked against d2l's SHA-1 and cached (:func:`pipelines.sources.cached_download`); one
  document per paragraph (blocks separated by blank lines, as ``file:<path>``).
* ``tfds:<name>[:<split>]``: one document per example of a TensorFlow Datasets split (default
  ``train``), taken from its text feature: the one named by ``text_feature``, else ``text``, else
  the only string feature. E.g. ``tfds:imdb_reviews``, ``tfds:imdb_reviews:unsupervised``.

:func:`split_documents` splits at the document level (seeded), so that no sentence of a
validation or test document is seen in training.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines import sources
from pipelines.splits import Splits, split_indices

SOURCES = ("embedded", "timemachine", "file:*", "tfds:*")
# d2l's DATA_HUB["time_machine"] ([REF d2l] §8.2): the notes' text and its published SHA-1.
TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIME_MACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
# A reStructuredText heading underline: a line of one repeated punctuation character.
_UNDERLINE = re.compile(r"^([*=~^#-])\1{2,}[ \t]*$", re.MULTILINE)


def pydoc_topics() -> list[str]:
    """CPython's ``pydoc_data.topics.topics`` texts in sorted topic order, heading underlines removed."""
    from pydoc_data.topics import topics

    return [_UNDERLINE.sub("", topics[name]).strip() for name in sorted(topics)]


def read_documents(path: str | Path) -> list[str]:
    """Documents of a UTF-8 text file: blocks separated by blank (or whitespace-only) lines.

    Raises:
        DataSourceError: the file is missing, is not UTF-8 or holds no text.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise sources.DataSourceError(f"text file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise sources.DataSourceError(f"{path} is not UTF-8 text ({err})") from None
    blocks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))
    docs = [block.strip() for block in blocks if block.strip()]
    if not docs:
        raise sources.DataSourceError(f"{path} holds no text: expected documents separated by blank lines")
    return docs


def _tfds_documents(argument: str, text_feature: str | None) -> tf.data.Dataset:
    name, _, split = argument.partition(":")
    examples = sources.tfds_load(name, split or "train")
    spec = examples.element_spec
    strings = [k for k, s in spec.items() if s.dtype == tf.string and s.shape.rank == 0] if isinstance(spec, dict) else []
    if text_feature is None:
        candidates = ["text"] if "text" in strings else strings
        if len(candidates) != 1:
            raise sources.DataSourceError(
                f"TFDS dataset {name!r}: cannot tell which feature holds the text among its scalar string "
                f"features {strings}; name it with text_feature=..."
            )
        text_feature = candidates[0]
    elif text_feature not in strings:
        raise sources.DataSourceError(
            f"TFDS dataset {name!r} has no scalar string feature {text_feature!r}; it has {strings}"
        )
    return examples.map(lambda example: example[text_feature], num_parallel_calls=tf.data.AUTOTUNE)


def documents(spec: str = "embedded", text_feature: str | None = None) -> tf.data.Dataset:
    """The documents of a ``DATA=`` spec, one scalar ``tf.string`` per element, in a fixed order.

    Args:
        spec: ``embedded``, ``timemachine``, ``file:<path>`` or ``tfds:<name>[:<split>]`` (see the
            module docstring).
        text_feature: the TFDS feature that holds the text (detected when ``None``).

    Example:
        >>> docs = documents("embedded")
        >>> int(docs.cardinality()) > 50
        True
    """
    kind, argument = sources.parse(spec, SOURCES)
    if kind == "embedded":
        return tf.data.Dataset.from_tensor_slices(pydoc_topics())
    if kind == "file":
        return tf.data.Dataset.from_tensor_slices(read_documents(argument))
    if kind == "timemachine":
        path = sources.cached_download(TIME_MACHINE_URL, TIME_MACHINE_SHA1)
        return tf.data.Dataset.from_tensor_slices(read_documents(path))
    return _tfds_documents(argument, text_feature)


def split_documents(
    docs: tf.data.Dataset, fractions: tuple[float, float] = (0.1, 0.1), seed: int = 0, **info
) -> Splits:
    """Seeded train / validation / test split at the document level.

    Args:
        docs: a finite dataset of documents (counted once if its cardinality is unknown).
        fractions: the validation and test shares of the documents.
        seed: the split's seed (:func:`pipelines.splits.split_indices`).
        **info: extra facts for ``Splits.info``.

    Returns:
        :class:`pipelines.splits.Splits` whose elements are documents (scalar strings), each split
        in the original document order; ``info["sizes"]`` counts documents.

    Example:
        >>> splits = split_documents(tf.data.Dataset.from_tensor_slices(["a", "b", "c", "d"]), (0.25, 0.25))
        >>> splits.info["sizes"]
        {'train': 2, 'validation': 1, 'test': 1}
    """
    n = int(docs.cardinality())
    if n < 0:
        n = int(docs.reduce(np.int64(0), lambda count, _: count + 1))
    parts = split_indices(n, fractions, seed)
    part_of = np.zeros(n, np.int32)
    for part, indices in enumerate(parts):
        part_of[indices] = part
    part_of = tf.constant(part_of)

    def take(part: int) -> tf.data.Dataset:
        selected = docs.enumerate().filter(lambda i, _: tf.gather(part_of, i) == part)
        return selected.map(lambda _, doc: doc).apply(tf.data.experimental.assert_cardinality(len(parts[part])))

    sizes = {"train": len(parts[0]), "validation": len(parts[1]), "test": len(parts[2])}
    return Splits(take(0), take(1), take(2), {**info, "sizes": sizes})


def load(
    spec: str = "embedded", fractions: tuple[float, float] = (0.1, 0.1), seed: int = 0, text_feature: str | None = None
) -> Splits:
    """:func:`documents` of ``spec`` split by :func:`split_documents`; ``info["source"]`` names it.

    Example:
        >>> splits = load("embedded", seed=0)
        >>> sorted(splits.info["sizes"])
        ['test', 'train', 'validation']
    """
    source = "pydoc_data.topics (CPython help texts, embedded)" if spec == "embedded" else spec
    return split_documents(documents(spec, text_feature), fractions, seed, source=source)
