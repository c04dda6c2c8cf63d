"""pipelines.text.wordpiece: WordPiece in core TF, equal to tensorflow-text's tokenizers.

References (tensorflow-text 2.21), both with the same vocabulary file:

* ``tensorflow_text.BertTokenizer(vocab_path, lower_case=True, token_out_type=tf.int64)`` — all
  other arguments at their defaults: suffix ``##``, ``max_bytes_per_word=100``,
  ``unknown_token="[UNK]"``, ``split_unknown_characters=False`` — its ``[batch, words, pieces]``
  output merged to ``[batch, pieces]``;
* ``tensorflow_text.FastWordpieceTokenizer(vocab, token_out_type=tf.int64,
  no_pretokenization=True)`` (defaults otherwise: ``##``, 100 bytes, ``[UNK]``) on the words of
  tensorflow-text's ``BasicTokenizer(lower_case=True)``.

Not compared: invalid UTF-8 and code points unknown to Python's Unicode database (see
``pipelines/text/bert_normalize.py`` and ``test_bert_normalize.py``).
"""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

from pipelines.text import corpus
from pipelines.text.sentences import split_sentences
from pipelines.text.wordpiece import WordPieceTokenizer
from pipelines.text.wordpiece_vocabulary import learn_vocabulary, save_vocabulary

REPO = Path(__file__).resolve().parents[3]
NASTY = [
    "",
    " ",
    "\t\n\r\x0b\x0c  \u00a0\u3000",
    "Café déjà vu: naïve coöperation, résumé — ÉCOLE.",
    "Ñandú, Åsa, Ærøskøbing, Øresund; ﬁﬂ ligatures ﬃ ǅungla ß",
    "İstanbul ΣΊΣΥΦΟΣ ς Ω ǰ",
    "中文分词测试，日本語のテキスト。한국어 텍스트!",
    "emoji 🙂🙃 👩‍👩‍👧 👍🏽 🇫🇷 ok",
    "punctuation!!!??? ... --- ((([[[{}]]])))  «quotes» „low“ ¿qué? ¡sí!",
    "control\x00chars\x01\x02\x1f\x7f and \u200bzero\u200cwidth\u200d joiners\ufeff",
    "tabs\tand\nnewlines\r\nand\u2028separators\u2029too",
    "x" * 100,
    "x" * 101,
    "ж" * 50,  # 100 bytes: still a word
    "ж" * 51,  # 102 bytes: [UNK]
    "ab" * 60 + " " + "supercalifragilisticexpialidocious" * 3,
    "deoxyribonucleic antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "UPPER lower MiXeD 12345 3.14159 1e-10 0x1F x=y+z*w/2 a_b c-d e.f",
    "Ｆｕｌｌｗｉｄｔｈ ＡＳＣＩＩ ①②③ ㍻ ℡ ™ ½",
    "Ελληνικά Русский текст עברית العربية हिन्दी ไทย",
    "\u0301\u0301\u0301 combining marks alone e\u0301\u0302",
]


@pytest.fixture(scope="module")
def vocabulary_path(tmp_path_factory) -> Path:
    """A vocabulary learned from 20 embedded documents: the other 59 need splits and [UNK]s."""
    vocabulary = learn_vocabulary(corpus.documents().take(20), 1000, min_frequency=5)
    return save_vocabulary(vocabulary, tmp_path_factory.mktemp("vocab") / "vocab.txt")


@pytest.fixture(scope="module")
def tokenizer(vocabulary_path) -> WordPieceTokenizer:
    return WordPieceTokenizer(vocabulary_path)


@pytest.fixture(scope="module")
def sample() -> tf.Tensor:
    docs = corpus.pydoc_topics()
    return tf.constant(docs + split_sentences(docs).flat_values.numpy().tolist() + [s.encode() for s in NASTY])


def test_ids_equal_tensorflow_text_bert_tokenizer(tokenizer, vocabulary_path, sample):
    reference = tf_text.BertTokenizer(str(vocabulary_path), lower_case=True, token_out_type=tf.int64)
    expected = reference.tokenize(sample).merge_dims(-2, -1)
    ours = tokenizer.tokenize(sample)
    assert ours.dtype == tf.int32
    assert ours.to_list() == expected.to_list()
    pieces = ours.flat_values.numpy()
    assert (pieces == tokenizer.unknown_id).sum() > 10 and len(pieces) > 200_000  # the sample is not trivial


def test_ids_equal_fast_wordpiece_on_the_same_words(tokenizer, vocabulary_path, sample):
    vocabulary = vocabulary_path.read_text(encoding="utf-8").splitlines()
    words = BasicTokenizer(lower_case=True).tokenize(sample).flat_values
    reference = tf_text.FastWordpieceTokenizer(vocabulary, token_out_type=tf.int64, no_pretokenization=True)
    assert tokenizer.tokenize_words(words).to_list() == reference.tokenize(words).to_list()


def test_greedy_longest_match_first_on_a_hand_made_vocabulary():
    vocabulary = ["[PAD]", "[UNK]", "un", "unaff", "##aff", "##able", "##a", "##b", "a", ",", "##", "ж", "##ж"]
    tokenizer = WordPieceTokenizer(vocabulary)
    ids = tokenizer.tokenize(["Unaffable, unab", "aab xyz", "a" * 100, "a" * 101, "Ж" * 60]).to_list()
    assert ids[0] == [3, 5, 9, 2, 6, 7]  # unaff ##able , | un ##a ##b (longest first piece wins)
    assert ids[1] == [8, 6, 7, 1]  # a ##a ##b | xyz cannot be split: [UNK] as a whole
    assert ids[2] == [8] + [6] * 99 and ids[3] == [1]  # 100 bytes is still a word, 101 is not
    assert ids[4] == [1]  # 60 characters, 120 bytes
    by_chars = WordPieceTokenizer(vocabulary, word_length_unit="UTF8_CHAR")
    assert by_chars.tokenize(["Ж" * 60]).to_list() == [[11] + [12] * 59]
    words = ["", "##", "##aff", "unaffa"]
    reference = tf_text.FastWordpieceTokenizer(vocabulary, token_out_type=tf.int64, no_pretokenization=True)
    assert tokenizer.tokenize_words(words).to_list() == reference.tokenize(words).to_list() == [[], [10], [4], [3, 6]]
    whole_words = WordPieceTokenizer(["[UNK]", "cat", "s"])  # no continuation pieces at all
    assert whole_words.tokenize(["cats cat s"]).to_list() == [[0, 1, 2]]


def test_detokenize_glues_continuations():
    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "un", "##aff", "##able", ","])
    ids = tokenizer.tokenize(["Unaffable, unaffable"])
    assert tokenizer.detokenize(ids).numpy().tolist() == [b"unaffable , unaffable"]


def test_bad_vocabularies_are_rejected():
    with pytest.raises(ValueError, match="repeats"):
        WordPieceTokenizer(["[UNK]", "a", "a"])
    with pytest.raises(ValueError, match="unknown token"):
        WordPieceTokenizer(["a", "b"])


def test_config_round_trip_and_dataset_map(tokenizer):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tokenizer))
    assert isinstance(restored, WordPieceTokenizer) and restored.vocabulary == tokenizer.vocabulary
    texts = ["The assignment statement.", "", "Ünïcode ﬁne"]
    mapped = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(restored.tokenize)
    assert [r for batch in mapped for r in batch.to_list()] == tokenizer.tokenize(texts).to_list()


def traced_op_types(fn) -> set[str]:
    graph = fn.get_concrete_function().graph.as_graph_def()
    types = {node.op for node in graph.node}
    for function in graph.library.function:
        types |= {node.op for node in function.node_def}
    return types - {f.signature.name for f in graph.library.function}


def test_traced_graph_uses_core_tensorflow_ops_only(tokenizer):
    spec = tf.TensorSpec([None], tf.string)
    tokenize = tf.function(lambda s: tokenizer.tokenize(s).to_tensor(), input_signature=[spec])
    words = tf.function(lambda s: tokenizer.tokenize_words(s).to_tensor(), input_signature=[spec])
    detokenize = tf.function(tokenizer.detokenize, input_signature=[tf.RaggedTensorSpec([None, None], tf.int32)])
    types = traced_op_types(tokenize) | traced_op_types(words) | traced_op_types(detokenize)
    assert "LookupTableFindV2" in types and "Substr" in types
    # tf.raw_ops holds core TensorFlow's ops only; tensorflow-text's are registered elsewhere.
    assert sorted(t for t in types if not hasattr(tf.raw_ops, t)) == []


def test_saved_model_runs_in_a_process_that_imports_only_tensorflow(tokenizer, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(text):
        ids = tokenizer.tokenize(text)
        return {"token_ids": ids.to_tensor(), "lengths": ids.row_lengths()}

    tf.saved_model.save(module, str(tmp_path / "export"), signatures={"serving_default": serve})
    text = tf.constant(["Héllo, wörld!", "", "ﬁne 中文"])
    request = {"signature_name": "serving_default", "inputs": {"text": _proto(text)}}
    (tmp_path / "requests.json").write_text(json.dumps([request]))
    checker = REPO / "tfmodels" / "export" / "stock_tf_check.py"
    args = [sys.executable, str(checker), str(tmp_path / "export"), str(tmp_path / "requests.json"), str(tmp_path / "out.json")]
    subprocess.run(args, check=False, capture_output=True, env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": ""}, timeout=300)
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["unknown_ops"] == [] and result["custom_modules_loaded"] == []
    expected = tokenizer.tokenize(text)
    for loader in ("tf2", "session"):  # the TF2 loader and TF-Serving's TF1 Session path
        outputs = result["outputs"][loader][0]
        assert outputs["lengths"]["values"] == expected.row_lengths().numpy().tolist()
        assert outputs["token_ids"]["values"] == expected.to_tensor().numpy().reshape(-1).tolist()


def _proto(tensor: tf.Tensor) -> str:
    import base64

    return base64.b64encode(tf.make_tensor_proto(tensor.numpy()).SerializeToString()).decode()
