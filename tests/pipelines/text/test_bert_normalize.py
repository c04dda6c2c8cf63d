"""pipelines.text.bert_normalize: BERT's uncased basic tokenizer in core TF vs tensorflow-text.

Reference: ``tensorflow_text.python.ops.bert_tokenizer.BasicTokenizer(lower_case=True)`` (what
``tensorflow_text.BertTokenizer(vocab, lower_case=True)`` runs before WordPiece), tensorflow-text
2.21, all other arguments at their defaults. Its ``lower_case`` step followed by its
``\\p{Cc}|\\p{Cf}`` → space replacement is the reference of ``normalize``.
"""

import unicodedata

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

from pipelines.text import bert_normalize
from pipelines.text.bert_normalize import basic_tokenize, normalize

REFERENCE = BasicTokenizer(lower_case=True)
CODE_POINTS = np.array([c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
# Spacing combining marks (Mc with a non-zero combining class): NFD reorders runs of them.
REORDERED_MARKS = {c for c in range(0x110000) if unicodedata.combining(chr(c)) and unicodedata.category(chr(c)) != "Mn"}


def unassigned_in_python(code_points) -> set[int]:
    return {int(c) for c in code_points if unicodedata.category(chr(int(c))) == "Cn"}


def rows_differ(ours: tf.RaggedTensor, reference: tf.RaggedTensor) -> np.ndarray:
    ours, reference = ours.to_list(), reference.to_list()
    return np.array([a != b for a, b in zip(ours, reference)])


def test_every_code_point_gives_the_words_of_tensorflow_text():
    # "a<c>a": shows whether c joins its neighbours, is dropped, is a word or splits them.
    strings = tf.constant(["a" + chr(c) + "a" for c in CODE_POINTS])
    differ = rows_differ(basic_tokenize(strings), REFERENCE.tokenize(strings))
    different = CODE_POINTS[differ]
    # Only code points that Python's Unicode database (14.0 on Python 3.11) does not know yet.
    assert set(different.tolist()) <= unassigned_in_python(different)
    assert len(different) < 400


def test_normalize_equals_tensorflow_texts_lower_case_and_control_replacement():
    strings = tf.constant(["A" + chr(c) + "b" for c in CODE_POINTS])
    reference = tf.strings.regex_replace(REFERENCE.lower_case(strings), r"\p{Cc}|\p{Cf}", " ")
    different = CODE_POINTS[(normalize(strings) != reference).numpy()]
    assert set(different.tolist()) <= unassigned_in_python(different)


def test_random_strings_of_assigned_code_points_match_tensorflow_text():
    rng = np.random.default_rng(0)
    assigned = np.array(
        [c for c in CODE_POINTS if unicodedata.category(chr(int(c))) != "Cn" and c not in REORDERED_MARKS]
    )
    ascii_ = np.arange(0x20, 0x7F)
    strings = []
    for _ in range(3000):
        length = rng.integers(0, 25)
        chars = np.where(rng.random(length) < 0.6, rng.choice(ascii_, length), rng.choice(assigned, length))
        strings.append("".join(map(chr, chars)))
    strings = tf.constant(strings)
    assert not rows_differ(basic_tokenize(strings), REFERENCE.tokenize(strings)).any()


@pytest.mark.parametrize(
    "text, words",
    [
        ("Héllo, WORLD!", ["hello", ",", "world", "!"]),
        ("ﬁne Straße İstanbul Ångström ÑANDÚ", ["fine", "strasse", "istanbul", "angstrom", "nandu"]),
        ("Ｆｕｌｌ\u3000width！", ["full", "width", "!"]),  # NFKC: full-width forms, ideographic space
        # CJK ideographs are words; kana are letters and lose their voicing mark (a Mn) like BERT's.
        ("中文字 한국어 日本語です", ["中", "文", "字", "한국어", "日", "本", "語", "てす"]),
        ("zero\u200bwidth soft\u00adhyphen", ["zerowidth", "softhyphen"]),  # ignorables deleted
        ("tab\there\nnew\r\nline\x00nul\x7fdel", ["tab", "here", "new", "line", "nul", "del"]),
        ("...!!?? ---", [".", ".", ".", "!", "!", "?", "?", "-", "-", "-"]),
        ("emoji 🙂👍🏽 ok", ["emoji", "🙂👍🏽", "ok"]),  # symbols (So) are not punctuation
        ("", []),
        (" \t\n\u00a0\u2003 ", []),
        ("a\u2028b", ["a\u2028b"]),  # a line separator is neither \s nor Cc/Cf: tensorflow-text keeps it
    ],
)
def test_hand_made_examples(text, words):
    ours = basic_tokenize([text]).to_list()[0]
    reference = REFERENCE.tokenize([text]).to_list()[0]
    if "한" in text:  # NFD splits Hangul syllables into Jamo (in both)
        words = [unicodedata.normalize("NFD", w) for w in words]
    assert [w.decode() for w in ours] == words
    assert ours == reference


def test_invalid_utf8_is_replaced_or_rejected():
    assert basic_tokenize([b"ab\xffCD"]).to_list() == [["ab\ufffdcd".encode()]]
    assert basic_tokenize([b"ab\xffCD"], errors="ignore").to_list() == [[b"abcd"]]
    with pytest.raises(tf.errors.InvalidArgumentError):
        basic_tokenize([b"ab\xffCD"], errors="strict")


def test_works_in_a_traced_function_on_any_batch_and_empty_batches():
    fn = tf.function(basic_tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    assert fn(tf.constant([], tf.string)).to_list() == []
    assert fn(tf.constant(["", "  "])).to_list() == [[], []]
    assert fn(tf.constant(["Ça va?", "OK"])).to_list() == [[b"ca", b"va", b"?"], [b"ok"]]


def test_tables_cover_every_code_point_once():
    page_of_block, pages, lengths, values = bert_normalize.code_point_tables()
    assert page_of_block.shape == (0x110000 // 256,) and pages.size % 256 == 0
    assert lengths.sum() == values.size
    entry = pages[page_of_block[ord("É") // 256] * 256 + ord("É") % 256]
    start = lengths[:entry].sum()
    assert values[start : start + lengths[entry]].tolist() == [ord("e")]
