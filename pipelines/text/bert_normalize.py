"""BERT's basic tokenizer (uncased) with core TensorFlow ops only, so it can live in a serving graph.

The reference is tensorflow-text's ``BertTokenizer(..., lower_case=True)``, whose basic step is
(``tensorflow_text/python/ops/bert_tokenizer.py``): ICU NFKC_Casefold (``case_fold_utf8``), NFD,
delete ``\\p{Mn}`` (accents), ``\\p{Cc}|\\p{Cf}`` → space, then split on whitespace and make every
punctuation character (ASCII ``!-/ :-@ [-``` ``{-~`` and ``\\p{P}``) and every CJK ideograph a
word of its own. Google's original ``tokenization.BasicTokenizer`` does the same for the uncased
models (paper default, Devlin et al. 2019).

Core TensorFlow has no Unicode normalisation (``normalize_utf8`` and ``case_fold_utf8`` are
tensorflow-text ops). Everything before the split is, however, a function of each code point on
its own — ``NFD(NFKC_Casefold(s))`` is the concatenation of the per-code-point results up to the
canonical reordering of combining marks, and the marks are deleted — so it is computed once per
code point in Python with :mod:`unicodedata` and applied in the graph as a table lookup over code
points. Pure-ASCII strings (most of English text) skip the table: ``tf.strings.lower`` and a regex
do the same for them. The split uses the same RE2 patterns as tensorflow-text.

Exactness (checked against tensorflow-text 2.21 for every code point, see the tests): identical
words for every code point that Python's Unicode database knows (Unicode 14.0 on Python 3.11).
Known differences: (1) code points assigned after that version (180 on Python 3.11, e.g. U+1C89,
U+A7CB: ICU knows their case folding, Python does not); (2) runs of two of the 25 *spacing*
combining marks (``Mc`` with a non-zero combining class, e.g. U+1D16D then U+1D165), which NFD
reorders and which are not deleted; (3) invalid UTF-8, which tensorflow-text passes through
untouched and which is decoded here with U+FFFD replacement (``errors="replace"``) or rejected
(``errors="strict"``).
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import tensorflow as tf

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt): NFKC_Casefold deletes them.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# A word of its own: ASCII punctuation, Unicode punctuation and the CJK blocks that BERT isolates
# (tensorflow-text's _DELIM_REGEX; Google's _is_punctuation and _is_chinese_char).
ISOLATED_PATTERN = (
    r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]|"
    r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]|"
    r"[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]"
)
_PAGE = 256  # code points per page of the two-level table
_NUM_CODE_POINTS = 0x110000


def _ignorable(code_point: int) -> bool:
    return any(lo <= code_point <= hi for lo, hi in _DEFAULT_IGNORABLE)


def _nfkc_casefold(text: str) -> str:
    """ICU's NFKC_Casefold: NFKC, full case folding and NFKC again until stable, ignorables deleted."""
    previous = None
    while text != previous:
        previous = text
        text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        text = "".join(c for c in text if not _ignorable(ord(c)))
    return text


def normalize_code_point(code_point: int) -> str:
    """What the uncased basic tokenizer makes of one code point, before splitting into words.

    ``NFKC_Casefold`` → NFD → accents (``Mn``) deleted → ``Cc``/``Cf`` characters become spaces.

    Example:
        >>> [normalize_code_point(ord(c)) for c in "Éﬁ\\t"]
        ['e', 'fi', ' ']
    """
    text = unicodedata.normalize("NFD", _nfkc_casefold(chr(code_point)))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


@functools.cache
def code_point_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`normalize_code_point` for every code point, as arrays (built once per process, ~1 s).

    ``entry(cp) = pages[page_of_block[cp // 256] * 256 + cp % 256]`` is ``-1`` for a code point
    that stays as it is, else the row of its replacement in ``values`` (rows of ``lengths``).

    Returns:
        ``(page_of_block [4352], pages [num_pages * 256], lengths [rows], values [sum(lengths)])``,
        all int32.
    """
    ignorable = np.zeros(_NUM_CODE_POINTS, bool)
    for lo, hi in _DEFAULT_IGNORABLE:
        ignorable[lo : hi + 1] = True
    entries = np.full(_NUM_CODE_POINTS, -1, np.int32)
    lengths, values = [], []
    for code_point in range(_NUM_CODE_POINTS):
        char = chr(code_point)
        category = unicodedata.category(char)
        if category in ("Mn", "Cc", "Cf") or ignorable[code_point] or (
            category not in ("Cn", "Cs")
            and (char.casefold() != char or not unicodedata.is_normalized("NFKD", char))
        ):
            replacement = [ord(c) for c in normalize_code_point(code_point)]
            entries[code_point] = len(lengths)
            lengths.append(len(replacement))
            values.extend(replacement)
    page_numbers: dict[bytes, int] = {}
    page_of_block = [page_numbers.setdefault(b.tobytes(), len(page_numbers)) for b in entries.reshape(-1, _PAGE)]
    pages = np.frombuffer(b"".join(page_numbers), np.int32)
    return tuple(np.asarray(a, np.int32) for a in (page_of_block, pages, lengths, values))


def _normalize_code_points(strings: tf.Tensor, errors: str) -> tf.Tensor:
    """The table applied to every code point of ``strings``: decode, look up, expand, encode."""
    page_of_block, pages, lengths, values = (tf.constant(t) for t in code_point_tables())
    chars = tf.strings.unicode_decode(strings, "UTF-8", errors=errors, replacement_char=0xFFFD)
    code_points = chars.flat_values
    entry = tf.gather(pages, tf.gather(page_of_block, code_points // _PAGE) * _PAGE + code_points % _PAGE)
    replaced = entry >= 0
    row = tf.maximum(entry, 0)
    out_lengths = tf.where(replaced, tf.gather(lengths, row), 1)
    # One slot per output code point, pointing back at the input code point it comes from.
    source = tf.repeat(tf.range(tf.size(code_points)), out_lengths)
    offset = tf.range(tf.size(source)) - tf.repeat(tf.cumsum(out_lengths, exclusive=True), out_lengths)
    starts = tf.cumsum(lengths, exclusive=True)
    from_table = tf.gather(values, tf.gather(tf.gather(starts, row), source) + offset)
    out = tf.where(tf.gather(replaced, source), from_table, tf.gather(code_points, source))
    row_lengths = tf.reduce_sum(chars.with_flat_values(out_lengths), axis=1)
    return tf.strings.unicode_encode(tf.RaggedTensor.from_row_lengths(out, row_lengths), "UTF-8")


def _normalize(strings, errors: str, controls: str) -> tf.Tensor:
    strings = tf.convert_to_tensor(strings, tf.string)
    ascii_only = tf.strings.regex_full_match(strings, r"[\x00-\x7f]*")
    others = tf.where(~ascii_only)
    strings = tf.tensor_scatter_nd_update(strings, others, _normalize_code_points(tf.gather_nd(strings, others), errors))
    # ASCII: the table would lower-case A-Z and turn the controls into spaces, nothing else.
    return tf.strings.regex_replace(tf.strings.lower(strings), controls, " ")


def normalize(strings, errors: str = "replace") -> tf.Tensor:
    """Lower-cases, strips accents and turns control/format characters into spaces.

    The text that tensorflow-text's ``BasicTokenizer(lower_case=True)`` splits into words.

    Args:
        strings: a 1-D string tensor (UTF-8).
        errors: what to do with invalid UTF-8: ``"replace"`` (U+FFFD), ``"ignore"`` or ``"strict"``
            (an ``InvalidArgumentError``), as in ``tf.strings.unicode_decode``.

    Returns:
        A 1-D string tensor of the same size.

    Example:
        >>> normalize(["Ça\\tVA, Ñandú!"]).numpy().tolist()
        [b'ca va, nandu!']
    """
    return _normalize(strings, errors, r"[\x00-\x1f\x7f]")


def basic_tokenize(strings, errors: str = "replace") -> tf.RaggedTensor:
    """Splits text into BERT's words: :func:`normalize`, then whitespace and punctuation/CJK splits.

    Args:
        strings: a 1-D string tensor (UTF-8); empty and whitespace-only strings give no words.
        errors: invalid UTF-8 handling, as in :func:`normalize`.

    Returns:
        A ``tf.RaggedTensor`` of strings, shape ``[num_strings, (num_words)]``.

    Example:
        >>> basic_tokenize(["Héllo, WORLD!", "", "中文"]).to_list()
        [[b'hello', b',', b'world', b'!'], [], [b'\\xe4\\xb8\\xad', b'\\xe6\\x96\\x87']]
    """
    # The split treats \t \n \v \f \r as spaces already: only the other controls are replaced
    # (far fewer regex matches in text with many line breaks).
    normalized = _normalize(strings, errors, r"[\x00-\x08\x0e-\x1f\x7f]")
    return tf.strings.split(tf.strings.regex_replace(normalized, ISOLATED_PATTERN, r" \0 "))
