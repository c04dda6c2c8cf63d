"""Sentence splitting of documents, with core TensorFlow ops (usable in a ``tf.data`` map).

BERT's next-sentence prediction needs the sentences of each document in order (notes-001.md §25,
seed 001 L660-666; notes-002-part2.md §54). The rule is deliberately simple and documented:

1. a blank line (paragraph break) ends a sentence;
2. ``.``, ``!`` or ``?`` (possibly repeated, possibly followed by closing quotes or brackets)
   ends a sentence when whitespace follows and the next character is not a lower-case letter —
   so "e.g. this" and "i.e. that" stay whole, "Dr. Smith" does not;
3. inside a sentence every run of whitespace (line breaks included) becomes one space; empty
   sentences are dropped.

Example: ``"One. Two?\\n\\nThree e.g. four"`` → ``["One.", "Two?", "Three e.g. four"]``.
"""

from __future__ import annotations

import tensorflow as tf

# ASCII record separator: marks sentence ends between the regex passes (whitespace to the split).
_BREAK = "\x1e"


def split_sentences(documents) -> tf.RaggedTensor:
    """Splits each document into sentences by the rule of the module docstring.

    Args:
        documents: a 1-D string tensor (UTF-8); a record separator (U+001E) inside a document is
            treated as a sentence end.

    Returns:
        ``tf.RaggedTensor`` of strings, ``[num_documents, (num_sentences)]``.

    Example:
        >>> split_sentences(["One. Two?\\n\\nThree e.g. four", ""]).to_list()
        [[b'One.', b'Two?', b'Three e.g. four'], []]
    """
    text = tf.convert_to_tensor(documents, tf.string)
    text = tf.strings.regex_replace(text, r"\n[ \t\r\f\v]*\n", _BREAK)
    text = tf.strings.regex_replace(text, r"([.!?]+[\"')\]]*)\s+([^\p{Ll}])", "\\1" + _BREAK + "\\2")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    sentences = tf.strings.strip(tf.strings.split(text, _BREAK))
    return tf.ragged.boolean_mask(sentences, tf.strings.length(sentences) > 0)
