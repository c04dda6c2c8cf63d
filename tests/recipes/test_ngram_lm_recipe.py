"""ngram_lm (notes-002-part2 §22–§23): a model fitted by counting in train_step, on the one trainer.

Expected values come from an independent path: ``collections.Counter`` over the training ids,
:class:`~tfmodels.models.ngram_lm.NgramLanguageModel` (dictionaries, float64) for probabilities
and perplexity, and :func:`pipelines.text.ngrams.ngram_counts` (tf.unique) for the counts.
"""

import collections
import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

import tfmodels
from pipelines.text.ngrams import ngram_counts
from pipelines.text.vocabulary import BOS_ID
from tfmodels.config import ConfigError, resolve
from tfmodels.models.ngram_lm import CountingNgramLM, NgramLanguageModel
from tfmodels.recipes import language_models as lm
from tfmodels.recipes import ngram_lm


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ngram_lm")
    return tfmodels.train("ngram_lm", preset="tiny", runs_root=root / "runs", export_root=root / "saved_models")


@pytest.fixture(scope="module")
def cfg(run):
    return dataclasses.replace(resolve(ngram_lm.NgramLmConfig, "tiny"), run_dir=str(run.run_dir))


@pytest.fixture(scope="module")
def streams(cfg):
    return lm.token_corpus(cfg).streams


@pytest.fixture(scope="module")
def counters(streams, cfg):
    train = streams["train"].tolist()
    return [collections.Counter(zip(*(train[i:] for i in range(k)))) for k in range(1, cfg.order + 1)]


@pytest.fixture(scope="module")
def reference(counters, cfg, run):
    return NgramLanguageModel(run.metrics["data"]["vocab_size"], cfg.order, cfg.epsilon).fit(counters)


def table_counts(model, k: int) -> dict:
    table = model.counts.tables[k - 1].numpy().reshape(-1)
    m = model.counts.vocab_size
    return {tuple(int(i) for i in np.unravel_index(index, [m] * k)): float(table[index]) for index in np.flatnonzero(table)}


def test_one_pass_of_train_step_counts_the_training_ids(run, counters, streams, cfg):
    assert (cfg.epochs, run.metrics["epochs"], run.model.trainable_weights) == (1, 1, [])
    assert run.model.count_params() == 31 + 31**2 + 31**3
    in_tf = ngram_counts(tf.data.Dataset.from_tensors(streams["train"]), cfg.order)
    for k in range(1, cfg.order + 1):
        assert table_counts(run.model, k) == dict(counters[k - 1]) == dict(in_tf[k - 1])
    assert sum(counters[0].values()) == len(streams["train"]) == run.metrics["data"]["tokens"]["train"]


def test_test_perplexity_is_the_closed_form_models_on_the_same_windows(run, reference, streams, cfg):
    x, y = lm.windows(streams["test"], cfg.num_steps, cfg.num_steps)
    expected = lm.ngram_window_perplexity(reference, x, y)
    assert run.metrics["test"]["perplexity"] == pytest.approx(expected, rel=1e-5)
    assert run.metrics["test"]["loss"] == pytest.approx(math.log(expected), rel=1e-5)
    report = run.metrics["report"]
    assert report["test_perplexity"] == pytest.approx(expected, rel=1e-5)
    assert (report["order"], report["epsilon"]) == (3, 1.0)
    assert report["test_perplexity"] < report["baselines"]["unigram_perplexity"] < report["baselines"]["uniform_perplexity"] == 31


def test_export_verifies_with_stock_tensorflow_and_scores_like_the_closed_form(run, reference, cfg):
    assert tfmodels.verify_export(run.export_path)["signatures"] == ["score", "serving_default"]
    signatures = tf.saved_model.load(str(run.export_path)).signatures
    ids = [BOS_ID, *lm.run_vocabulary(cfg).text_layer(cfg.level)(tf.constant(["the value of x"])).numpy()[0].tolist()]
    scored = signatures["score"](text=tf.constant(["The value of x!", ""]))
    log_likelihood = reference.log_probability(ids) - math.log(reference.probability(BOS_ID))  # <bos> is given
    assert scored["num_tokens"].numpy().tolist() == [len(ids) - 1, 0]
    np.testing.assert_allclose(scored["log_likelihood"].numpy()[0], log_likelihood, rtol=1e-5)

    answer = signatures["serving_default"](prefix=tf.constant(["the value"]), temperature=tf.constant(0.0),
                                           num_tokens=tf.constant(12), seed=tf.constant(0, tf.int64))
    sequence = ids[: 1 + len("the value")]
    for _ in range(12):
        sequence.append(int(np.argmax(reference.distribution(sequence))))
    assert answer["continuation_ids"].numpy()[0].tolist() == sequence[-12:]


def test_a_copied_run_exports_and_evaluates_alike(run, export_copied_run):
    export_copied_run(run)


def test_every_epoch_adds_the_counts_again_and_no_gradient_is_applied():
    model = CountingNgramLM(vocab_size=5, order=2, epsilon=1.0)
    model.compile(optimizer="sgd", **ngram_lm.compile_args(None))
    x, y = ngram_lm.counting_chunks(np.array([2, 4, 3, 4, 4, 1], np.int32), order=2, stride=2)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0)
    assert table_counts(model, 2) == {(2, 4): 2.0, (4, 3): 2.0, (3, 4): 2.0, (4, 4): 2.0, (4, 1): 2.0}
    assert int(model.optimizer.iterations) == 0


def test_tables_beyond_the_limit_stop_with_a_message(tmp_path):
    with pytest.raises(ConfigError, match="dense counts"):
        tfmodels.train("ngram_lm", preset="tiny", overrides={"order": 6}, runs_root=tmp_path, export_root=None)


def test_counting_under_two_replicas_gives_the_same_tables(run, tmp_path):
    mirrored = tfmodels.train("ngram_lm", preset="tiny", strategy="mirrored", runs_root=tmp_path, export_root=None)
    assert mirrored.metrics["replicas"] == 2
    for k in range(1, run.model.counts.order + 1):
        assert table_counts(mirrored.model, k) == table_counts(run.model, k)
