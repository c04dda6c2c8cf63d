"""birnn_tagger (notes-002-part2 §39, notes-001 §6): the bidirectional model, the word-boundary task and its export."""

import base64
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.text.vocabulary import RESERVED_TOKENS, Vocabulary
from tfmodels.models.birnn_tagger import build_birnn_tagger, tagger_parameter_count
from tfmodels.recipes import birnn_tagger as recipe
from tfmodels.training.run_assets import saved_test_split


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("birnn_tagger")
    return tfmodels.train("birnn_tagger", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


@pytest.fixture(scope="module")
def serve(run):
    return tf.saved_model.load(str(run.export_path)).signatures["serving_default"]


def test_letters_and_word_start_tags():
    letters, tags = recipe.letters_and_word_starts(tf.constant(["The value-of 2 objects!", "", "  a"]))
    assert [b"".join(row).decode() for row in letters.numpy()] == ["thevalueofobjects", "", "a"]
    assert tags.to_list() == [[1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0], [], [1]]


@pytest.mark.parametrize("bidirectional, num_layers", [(True, 1), (True, 2), (False, 2)])
def test_shapes_and_closed_form_parameter_count(bidirectional, num_layers):
    model = build_birnn_tagger(20, 3, "lstm", hidden_units=6, embedding_dim=5, num_layers=num_layers, bidirectional=bidirectional)
    assert model(np.ones((2, 7), np.int32)).shape == (2, 7, 3)
    assert model.count_params() == tagger_parameter_count(20, 3, "lstm", 6, 5, num_layers, bidirectional)
    if bidirectional:  # §39: [→H; ←H] is 2h wide
        assert model.get_layer("bidirectional_1").output.shape[-1] == 12


def test_only_the_bidirectional_model_reads_later_tokens():
    a, b = np.array([[3, 4, 5, 6, 7]]), np.array([[3, 4, 5, 9, 7]])
    for bidirectional in (True, False):
        model = build_birnn_tagger(12, 2, hidden_units=4, embedding_dim=3, bidirectional=bidirectional)
        early_changes = not np.allclose(model(a).numpy()[0, :3], model(b).numpy()[0, :3], atol=1e-7)
        assert early_changes == bidirectional


def test_backward_half_is_a_forward_lstm_on_the_reversed_sequence():
    """§39 L3296: run a reversed copy, flip its outputs back, concatenate."""
    model = build_birnn_tagger(12, 2, hidden_units=4, embedding_dim=3)
    backward = model.get_layer("bidirectional_1").backward_layer
    forward_twin = keras.layers.LSTM(4, return_sequences=True)
    forward_twin.build((None, None, 3))
    forward_twin.set_weights(backward.get_weights())
    ids = np.array([[3, 4, 5, 6, 7]])
    embedded = model.get_layer("embedding")(ids)
    both = model.get_layer("bidirectional_1")(embedded).numpy()
    np.testing.assert_allclose(both[..., 4:], forward_twin(embedded[:, ::-1]).numpy()[:, ::-1], atol=1e-6)


def test_padding_does_not_change_the_tags_of_a_shorter_sequence():
    model = build_birnn_tagger(12, 2, hidden_units=4, embedding_dim=3)
    alone = model(np.array([[3, 4, 5]])).numpy()
    padded = model(np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])).numpy()
    np.testing.assert_allclose(padded[0, :3], alone[0], atol=1e-6)


def test_overfits_one_batch_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_birnn_tagger(10, 2, hidden_units=16, embedding_dim=8)
    x = np.random.default_rng(0).integers(1, 10, (8, 12))
    y = (np.roll(x, -1, axis=1) > 5).astype(np.int32)  # the tag depends on the next token
    model.compile(keras.optimizers.Adam(0.03), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = model.evaluate(x, y, verbose=0)
    for _ in range(60):
        model.train_on_batch(x, y)
    assert model.evaluate(x, y, verbose=0) < 0.2 * initial
    model.save(tmp_path / "tagger.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "tagger.keras")(x), model(x), atol=1e-6)


def test_tiny_run_reports_both_directions_and_the_majority_baseline(run):
    report = run.metrics["report"]
    assert report["bidirectional"]["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], abs=1e-6)
    assert 0 < report["unidirectional"]["accuracy"] <= 1
    assert report["majority_tag_accuracy"] == pytest.approx(1 - report["word_start_share"])
    assert 0.1 < report["word_start_share"] < 0.3  # English words are a few letters long
    assert run.metrics["data"]["vocab_size"] == 30  # 26 letters and 4 reserved tokens


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]


def test_the_letter_vocabulary_is_a_run_asset_and_the_serving_examples_are_test_windows(run, serve):
    vocabulary = Vocabulary.load(run.run_dir / "assets" / recipe.VOCABULARY_FILE)
    assert vocabulary.tokens[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)
    assert sorted(vocabulary.tokens[len(RESERVED_TOKENS) :]) == [chr(c) for c in range(ord("a"), ord("z") + 1)]
    windows = {"".join(vocabulary.tokens[i] for i in x) for x, _ in saved_test_split(run.run_dir).as_numpy_iterator()}
    request = json.loads((run.export_path / "assets.extra" / "rest_requests" / "serving_default.json").read_text())
    texts = [base64.b64decode(t["b64"]).decode() for t in request["inputs"]["text"]]
    assert len(texts) == 3 and set(texts) <= windows
    assert [s.decode().replace(" ", "") for s in serve(text=tf.constant(texts))["segmented"].numpy()] == texts


def test_a_copied_run_exports_and_evaluates_the_same_without_reading_the_corpus(
    run, monkeypatch, export_copied_run, assert_same_answers
):
    def unavailable(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    monkeypatch.setattr(recipe.corpus, "load", unavailable)
    export = export_copied_run(run)
    texts = tf.constant(["The value of an object!", "", "selfisreturned"])
    assert_same_answers(export, run.export_path, "serving_default", text=texts)


def test_serving_segments_raw_text_like_the_keras_model(run, serve):
    letters = "thevalueofanobject"
    answer = serve(text=tf.constant(["The value of an object!", "", "self"]))
    assert answer["num_letters"].numpy().tolist() == [18, 0, 4]
    assert answer["word_start_probability"].shape == (3, 18)
    vocabulary = Vocabulary.load(run.run_dir / "assets" / recipe.VOCABULARY_FILE)
    ids = vocabulary.lookup(tf.constant(list(letters))).numpy()[None]
    expected = tf.nn.softmax(run.model.predict(ids, verbose=0))[0, :, 1].numpy()
    probability = answer["word_start_probability"].numpy()
    np.testing.assert_allclose(probability[0], expected, atol=1e-5)
    assert (probability[1] == 0).all() and (probability[2, 4:] == 0).all()
    segmented = [s.decode() for s in answer["segmented"].numpy()]
    assert segmented[0] == "".join((" " if p > 0.5 and i > 0 else "") + c for i, (c, p) in enumerate(zip(letters, expected)))
    assert segmented[1] == "" and segmented[2].replace(" ", "") == "self"
