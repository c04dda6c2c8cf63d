"""bert_classifier (notes-002-part2 §54 "Case 1: sentiment analysis"): pre-trained encoder, new [CLS] head, raw-string serving."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.text import sentiment
from pipelines.text.wordpiece_vocabulary import load_vocabulary
from tfmodels.config import ConfigError, resolve
from tfmodels.models import bert
from tfmodels.recipes import bert_classifier as recipe
from tfmodels.recipes.bert_mlm import TOKENIZER_FILE, VOCABULARY_FILE, encoder_inputs


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A tiny bert_mlm run (not exported) on documents of the task's sentences, so its vocabulary covers them."""
    root = tmp_path_factory.mktemp("bert_mlm")
    texts, _ = sentiment.sentences(600, seed=1)
    corpus = root / "sentences.txt"
    sentences = [text.capitalize() for text in texts]  # a sentence ends where an upper-case letter follows
    corpus.write_text("\n\n".join(" ".join(sentences[i : i + 20]) for i in range(0, len(sentences), 20)))
    return tfmodels.train("bert_mlm", preset="tiny", data=f"file:{corpus}", runs_root=root / "runs", export_root=None).run_dir


@pytest.fixture(scope="module")
def cfg(pretrained_run):
    return resolve(recipe.BertClassifierConfig, "tiny", {"pretrained": str(pretrained_run)})


@pytest.fixture(scope="module")
def pretrained_copy(pretrained_run, tmp_path_factory):
    """A copy of the bert_mlm run that the classifier ``run`` starts from: a test deletes it."""
    return Path(shutil.copytree(pretrained_run, tmp_path_factory.mktemp("bert_mlm_copy") / "run"))


@pytest.fixture(scope="module")
def run(pretrained_copy, tmp_path_factory):
    root = tmp_path_factory.mktemp("bert_classifier")
    return tfmodels.train(
        "bert_classifier", preset="tiny", overrides={"pretrained": str(pretrained_copy)},
        runs_root=root / "runs", export_root=root / "saved_models",
    )


def test_without_a_pretrained_run_the_error_says_what_to_run(tmp_path):
    with pytest.raises(ConfigError, match="make train MODEL=bert_mlm"):
        recipe.datasets(resolve(recipe.BertClassifierConfig, "tiny"))
    with pytest.raises(ConfigError, match="finished bert_mlm run"):
        recipe.model(resolve(recipe.BertClassifierConfig, "tiny", {"pretrained": str(tmp_path)}))


def test_the_encoder_is_the_pretrained_one_and_the_head_is_new(cfg, pretrained_run):
    import keras

    source = keras.saving.load_model(pretrained_run / "model.keras")
    model = recipe.model(cfg)
    encoder = model.get_layer("bert_encoder")
    assert len(encoder.weights) == len(source.encoder.weights) > 0
    for ours, theirs in zip(encoder.weights, source.encoder.weights):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    kernel, bias = model.get_layer("classifier").weights
    assert kernel.shape == (bert.PRESETS["tiny"]["hidden_dim"], 2) and not np.any(bias.numpy())
    assert model.count_params() == source.encoder.count_params() + kernel.shape[0] * 2 + 2


def test_fine_tunes_reports_baselines_and_serves_raw_strings(run, cfg):
    history = np.genfromtxt(run.run_dir / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    report = run.metrics["report"]
    assert report["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"], rel=1e-5)
    assert set(report["baselines"]) == {"majority_class_accuracy", "bag_of_words_accuracy", "bag_of_words_and_bigrams_accuracy"}
    assert report["pretrained"].endswith("model.keras")

    texts = ["the parser is not reliable.", "", "although the module was slow, the new syntax is elegant. " * 10]
    answer = tf.saved_model.load(str(run.export_path)).signatures["serving_default"](text=tf.constant(texts))
    inputs = encoder_inputs(recipe.tokenizer(cfg), tf.constant(texts), cfg.seq_length)
    truncated = inputs.pop("truncated")
    expected = tf.nn.softmax(run.model.predict(inputs, verbose=0)).numpy()
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)
    assert answer["truncated"].numpy().tolist() == truncated.numpy().tolist() == [False, False, True]
    assert [n.decode() for n in answer["class_name"].numpy()] == [sentiment.CLASS_NAMES[i] for i in expected.argmax(1)]


def test_export_verifies_with_stock_tensorflow(run):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["serving_default"]


def test_the_run_holds_copies_of_the_pretraining_runs_vocabulary_and_tokenizer_settings(run, pretrained_run):
    ours, theirs = run.run_dir / "assets", pretrained_run / "assets"
    assert load_vocabulary(ours / VOCABULARY_FILE) == load_vocabulary(theirs / VOCABULARY_FILE)
    settings = json.loads((theirs / TOKENIZER_FILE).read_text())
    assert json.loads((ours / TOKENIZER_FILE).read_text()) == {**settings, "seq_length": 48} and settings["seq_length"] == 32
    assert json.loads((ours / recipe.CLASS_NAMES_FILE).read_text()) == list(sentiment.CLASS_NAMES)


def test_a_copied_run_exports_and_evaluates_the_same_after_the_pretraining_run_is_deleted(
    run, pretrained_copy, export_copied_run, assert_same_answers
):
    shutil.rmtree(pretrained_copy)
    export = export_copied_run(run)
    texts = tf.constant(["the parser is not reliable.", "", "although the module was slow, the new syntax is elegant."])
    assert_same_answers(export, run.export_path, "serving_default", text=texts)


def test_bag_of_words_baseline_fits_a_separable_toy_task():
    train = (["good code", "bad code", "good", "bad"], np.array([1, 0, 1, 0]))
    test = (["code good", "bad bad"], np.array([1, 0]))
    assert recipe.bag_of_words_accuracy(train, test, ngram=1) == 1.0
