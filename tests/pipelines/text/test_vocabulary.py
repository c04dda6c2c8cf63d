"""The notes' text preprocessing and vocabulary (notes-002-part2 §21) on hand-made text."""

import base64
import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from pydoc_data.topics import topics

from pipelines.text import vocabulary as V

TEXTS = ["The cat sat on the mat.", "the CAT ate the rat!"]
# the 4, cat 2; the count-1 ties in descending token order: sat > rat > on > mat > ate.
WORD_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "sat", "rat", "on", "mat", "ate"]


def _dataset(texts):
    return tf.data.Dataset.from_tensor_slices(texts)


def _strings(tensor):
    return [b.decode() for b in np.asarray(tensor).reshape(-1)]


def test_normalization_is_the_notes_regex():
    cases = {
        "Hello, World!\n": "hello world",
        "  The Time-Machine (1895), by H. G. Wells\n\n": "the time machine by h g wells",
        "it's 42 o'clock": "it s o clock",
        "naïve café": "na ve caf",  # non-ASCII letters are non-letters for [^A-Za-z]
        "1234 !?": "",
    }
    got = V.normalize(tf.constant(list(cases)))
    assert _strings(got) == list(cases.values())
    # The same as d2l's Python rule.
    assert list(cases.values()) == [re.sub("[^A-Za-z]+", " ", s).strip().lower() for s in cases]


def test_word_and_character_tokens():
    assert _strings(V.tokenize(V.normalize(tf.constant("The Time-Machine!")), "word")) == ["the", "time", "machine"]
    assert _strings(V.tokenize(tf.constant("ab c"), "char")) == ["a", "b", " ", "c"]
    assert V.tokenize(V.normalize(tf.constant(["a b", "!!"])), "word").to_list() == [[b"a", b"b"], []]
    with pytest.raises(ValueError, match="level"):
        V.tokenize(tf.constant("a"), "sentence")


def test_counts_in_tf_data_equal_counter():
    counts = V.count_tokens(_dataset(TEXTS), "word")
    words = [w for text in TEXTS for w in re.sub("[^A-Za-z]+", " ", text).lower().split()]
    assert counts == collections.Counter(words)
    assert V.count_tokens(_dataset(["Ab a!"]), "char") == {"a": 2, "b": 1, " ": 1}


def test_frequency_order_reserved_ids_and_min_freq():
    vocab = V.Vocabulary.from_texts(_dataset(TEXTS), "word")
    assert vocab.tokens == WORD_TOKENS
    assert vocab.size == len(vocab) == 11
    assert (V.PAD_ID, V.UNK_ID, V.BOS_ID, V.EOS_ID) == (0, 1, 2, 3)
    assert vocab.lookup(tf.constant(["<pad>", "<unk>", "<bos>", "<eos>"])).numpy().tolist() == [0, 1, 2, 3]

    rare_dropped = V.Vocabulary.from_texts(_dataset(TEXTS), "word", min_freq=2)
    assert rare_dropped.tokens == WORD_TOKENS[:6]
    ids = rare_dropped.lookup(tf.constant(["the", "cat", "sat", "dog"]))
    assert ids.numpy().tolist() == [4, 5, V.UNK_ID, V.UNK_ID]


def test_character_vocabulary_keeps_spaces():
    vocab = V.Vocabulary.from_texts(_dataset(["Ab a!"]), "char")
    assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", " "]
    assert vocab.lookup(V.tokenize(tf.constant("ba z"), "char")).numpy().tolist() == [5, 4, 6, V.UNK_ID]


def test_lookup_and_tokens_of_round_trip_with_ragged_batches():
    vocab = V.Vocabulary(WORD_TOKENS)
    tokens = tf.ragged.constant([["the", "cat"], ["zebra"]])
    ids = vocab.lookup(tokens)
    assert ids.to_list() == [[4, 5], [V.UNK_ID]]
    assert vocab.tokens_of(ids).to_list() == [[b"the", b"cat"], [b"<unk>"]]
    assert _strings(vocab.tokens_of(tf.constant([[6, 0]]))) == ["sat", "<pad>"]


def test_vocabulary_order_equals_keras_string_lookup_adapt_on_pydoc():
    # An independent implementation of frequency ordering with ties: Keras' adapt.
    texts = [topics[k] for k in sorted(topics)[:20]]
    ours = V.Vocabulary.from_texts(_dataset(texts), "word")
    words = [w for text in texts for w in re.sub("[^A-Za-z]+", " ", text).lower().split()]
    adapted = keras.layers.StringLookup()
    adapted.adapt(tf.constant(words))
    assert [str(t) for t in adapted.get_vocabulary()[1:]] == ours.tokens[len(V.RESERVED_TOKENS) :]


def test_bad_vocabularies_are_rejected():
    with pytest.raises(ValueError, match="starts with"):
        V.Vocabulary(["the", "<pad>", "<unk>", "<bos>", "<eos>"])
    with pytest.raises(ValueError, match="duplicated"):
        V.Vocabulary([*V.RESERVED_TOKENS, "a", "a"])


def test_save_and_load_text_file(tmp_path):
    for vocab in (V.Vocabulary(WORD_TOKENS), V.Vocabulary.from_texts(_dataset(["Ab a!"]), "char")):
        path = tmp_path / "vocab.txt"
        vocab.save(path)
        assert path.read_text().split("\n")[:4] == list(V.RESERVED_TOKENS)
        assert V.Vocabulary.load(path).tokens == vocab.tokens
    with pytest.raises(ValueError, match="newline"):
        V.Vocabulary([*V.RESERVED_TOKENS, "a\nb"]).save(tmp_path / "bad.txt")


def test_text_layer_pads_truncates_and_maps_unknown_words():
    layer = V.Vocabulary(WORD_TOKENS).text_layer()
    ids = layer(tf.constant(["The cat!", "a cat sat on the mat", ""]))
    assert ids.dtype == tf.int64
    assert ids.numpy().tolist() == [[4, 5, 0, 0, 0, 0], [1, 5, 6, 8, 4, 9], [0, 0, 0, 0, 0, 0]]
    fixed = V.TextToTokenIds(WORD_TOKENS, sequence_length=3)
    assert fixed(tf.constant(["The cat!", "a cat sat on the mat"])).numpy().tolist() == [[4, 5, 0], [1, 5, 6]]
    chars = V.TextToTokenIds(["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", " "], level="char")
    assert chars(tf.constant(["Ab, c"])).numpy().tolist() == [[4, 5, 6, 1]]


def _text_model(sequence_length=None):
    texts = keras.Input(shape=(), dtype="string", name="text")
    ids = V.TextToTokenIds(WORD_TOKENS, sequence_length=sequence_length, name="text_to_ids")(texts)
    return keras.Model(texts, ids)


def test_keras_file_round_trip(tmp_path):
    model = _text_model(sequence_length=5)
    assert model.output.shape == (None, 5)
    path = tmp_path / "text.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("text_to_ids")
    assert isinstance(layer, V.TextToTokenIds)
    assert layer.get_config()["vocabulary"] == WORD_TOKENS
    batch = tf.constant(["The rat sat.", "dogs and cats"])
    np.testing.assert_array_equal(loaded(batch), model(batch))
    assert loaded(batch).numpy().tolist() == [[4, 7, 6, 0, 0], [1, 1, 1, 0, 0]]


def test_serving_graph_has_core_ops_only_and_answers_in_stock_tensorflow(tmp_path):
    """Exports the layer and runs tfmodels/export/stock_tf_check.py in a fresh TF-only process."""
    model = _text_model()
    export_dir = tmp_path / "export"
    model.export(export_dir, format="tf_saved_model", verbose=False)
    batch = np.array([b"The cat, the mat!", b"zebra"], dtype=object)
    proto = tf.make_tensor_proto(batch).SerializeToString()
    requests = [{"signature_name": "serving_default", "inputs": {"text": base64.b64encode(proto).decode()}}]
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    checker = Path(__file__).parents[3] / "tfmodels" / "export" / "stock_tf_check.py"
    result_path = tmp_path / "result.json"
    subprocess.run(
        [sys.executable, str(checker), str(export_dir), str(tmp_path / "requests.json"), str(result_path)],
        check=False, capture_output=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
    )
    result = json.loads(result_path.read_text())
    assert result["unknown_ops"] == [] and result["custom_modules_loaded"] == []
    assert "error" not in result
    for loader in ("tf2", "session"):  # the TF2 loader and TF-Serving's TF1 Session path
        (answer,) = result["outputs"][loader][0].values()
        assert answer["shape"] == [2, 4]
        assert answer["values"] == [4, 5, 4, 9, 1, 0, 0, 0]
