"""Perplexity (notes-002-part2 §33): uniform → |V|, perfect → 1, token-weighted streaming mean."""

import doctest

import keras
import numpy as np
import pytest

from tfmodels.metrics import perplexity
from tfmodels.metrics.perplexity import Perplexity


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _manual_perplexity(labels, logits, weights):
    """exp(Σ w·CE / Σ w) in float64 numpy."""
    log_p = np.take_along_axis(_log_softmax(logits.astype(np.float64)), labels[..., None], -1)[..., 0]
    return np.exp(-(weights * log_p).sum() / weights.sum())


def _random_batch(rng, batch, steps=6, vocabulary=11):
    labels = rng.integers(0, vocabulary, (batch, steps))
    logits = rng.normal(0, 2, (batch, steps, vocabulary)).astype("float32")
    weights = (rng.random((batch, steps)) < 0.7).astype("float32")
    weights[:, 0] = 1.0  # every row has a token
    return labels, logits, weights


@pytest.mark.parametrize("vocabulary", [28, 30522])
def test_uniform_logits_score_the_vocabulary_size(vocabulary):
    metric = Perplexity()
    labels = np.random.default_rng(0).integers(0, vocabulary, (4, 9))
    metric.update_state(labels, np.full((4, 9, vocabulary), 3.7, "float32"))
    np.testing.assert_allclose(float(metric.result()), vocabulary, rtol=1e-6)


def test_perfect_predictions_score_one():
    labels = np.array([[0, 3, 2], [1, 1, 4]])
    logits = 50.0 * np.eye(5, dtype="float32")[labels]
    metric = Perplexity()
    metric.update_state(labels, logits)
    np.testing.assert_allclose(float(metric.result()), 1.0, rtol=1e-6)


def test_matches_exp_of_weighted_mean_cross_entropy():
    labels, logits, weights = _random_batch(np.random.default_rng(1), batch=5)
    metric = Perplexity()
    metric.update_state(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(float(metric.result()), _manual_perplexity(labels, logits, weights), rtol=1e-5)
    # Keras may pass [B, P, 1] weights; the result is the same.
    metric.reset_state()
    metric.update_state(labels, logits, sample_weight=weights[..., None])
    np.testing.assert_allclose(float(metric.result()), _manual_perplexity(labels, logits, weights), rtol=1e-5)


def test_streaming_is_token_weighted_over_all_batches_not_a_mean_of_batches():
    rng = np.random.default_rng(2)
    batches = [_random_batch(rng, batch=size) for size in (1, 4, 2)]
    metric = Perplexity()
    for labels, logits, weights in batches:
        metric.update_state(labels, logits, sample_weight=weights)
    labels, logits, weights = (np.concatenate(parts) for parts in zip(*batches))
    expected = _manual_perplexity(labels, logits, weights)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)
    per_batch = np.mean([_manual_perplexity(*batch) for batch in batches])
    assert abs(per_batch - expected) > 1e-3 * expected  # the wrong average would be detected
    metric.reset_state()
    assert float(metric.result()) == 1.0


def test_per_sequence_weights_and_mask_token():
    labels, logits, _ = _random_batch(np.random.default_rng(3), batch=3)
    labels[:, -2:] = 0  # padding id 0 at the end of every row
    sequence_weights = np.array([1.0, 0.0, 2.0], "float32")
    metric = Perplexity(mask_token_id=0)
    metric.update_state(labels, logits, sample_weight=sequence_weights)
    token_weights = sequence_weights[:, None] * (labels != 0)
    np.testing.assert_allclose(float(metric.result()), _manual_perplexity(labels, logits, token_weights), rtol=1e-5)


def test_probabilities_input():
    labels, logits, weights = _random_batch(np.random.default_rng(4), batch=2)
    metric = Perplexity(from_logits=False)
    metric.update_state(labels, np.exp(_log_softmax(logits)), sample_weight=weights)
    np.testing.assert_allclose(float(metric.result()), _manual_perplexity(labels, logits, weights), rtol=1e-4)


def test_as_a_weighted_compile_metric_and_config_round_trip():
    labels, logits, weights = _random_batch(np.random.default_rng(5), batch=4)
    inputs = keras.Input(logits.shape[1:])
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[Perplexity(mask_token_id=3, name="ppl")])
    result = model.evaluate(logits, labels, sample_weight=weights, batch_size=3, return_dict=True, verbose=0)
    expected = _manual_perplexity(labels, logits, weights * (labels != 3))
    np.testing.assert_allclose(result["ppl"], expected, rtol=1e-5)
    clone = Perplexity.from_config(Perplexity(from_logits=False, mask_token_id=3, name="ppl").get_config())
    assert (clone.from_logits, clone.mask_token_id, clone.name) == (False, 3, "ppl")


def test_docstring_example():
    result = doctest.testmod(perplexity)
    assert result.attempted == 4 and result.failed == 0
