"""bert_classifier (notes-002-part2 §54 "Case 1: sentiment analysis"): pre-trained encoder, new [CLS] head, raw-string serving."""

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.text import sentiment
from pipelines.text.wordpiece_vocabulary import RESERVED_TOKENS, save_vocabulary
from tfmodels.config import ConfigError, resolve
from tfmodels.models import bert
from tfmodels.recipes import bert_classifier as recipe
from tfmodels.recipes.bert_mlm import VOCABULARY_FILE, encoder_inputs


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A bert_mlm run directory as the trainer leaves it: model.keras (tiny BertPretrainer) and vocabulary.txt."""
    run_dir = tmp_path_factory.mktemp("bert_mlm_run")
    words = sorted({w for group in (sentiment.SUBJECTS, sentiment.VERBS, sentiment.NEGATIONS) for s in group for w in s.split()})
    words += [*sentiment.POSITIVE, *sentiment.NEGATIVE, "but", "although", ",", "."]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocabulary = [*RESERVED_TOKENS, *dict.fromkeys(words + letters), *[f"##{c}" for c in letters]]
    save_vocabulary(vocabulary, run_dir / VOCABULARY_FILE)
    model = bert.build_bert_pretraining(len(vocabulary), **bert.PRESETS["tiny"], name="bert_mlm")
    model.save(run_dir / "model.keras")
    return run_dir


@pytest.fixture(scope="module")
def cfg(pretrained_run):
    return resolve(recipe.BertClassifierConfig, "tiny", {"pretrained": str(pretrained_run)})


@pytest.fixture(scope="module")
def run(pretrained_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("bert_classifier")
    return tfmodels.train(
        "bert_classifier", preset="tiny", overrides={"pretrained": str(pretrained_run)},
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


def test_bag_of_words_baseline_fits_a_separable_toy_task():
    train = (["good code", "bad code", "good", "bad"], np.array([1, 0, 1, 0]))
    test = (["code good", "bad bad"], np.array([1, 0]))
    assert recipe.bag_of_words_accuracy(train, test, ngram=1) == 1.0
