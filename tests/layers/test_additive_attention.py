"""Masked softmax and additive (Bahdanau) attention (notes-002-part2 §45–§46)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers.additive_attention import AdditiveAttention, masked_softmax


def test_masked_softmax_on_d2ls_example_zeroes_positions_beyond_the_valid_length():
    """[REF d2l] §45: masked_softmax(rand(2, 2, 4), valid_lens=[2, 3])."""
    scores = tf.random.stateless_uniform([2, 2, 4], seed=[1, 2])
    weights = masked_softmax(scores, tf.sequence_mask([2, 3], 4)[:, None, :]).numpy()
    assert (weights[0, :, 2:] == 0).all() and (weights[1, :, 3:] == 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    expected = tf.nn.softmax(scores[0, :, :2]).numpy()
    np.testing.assert_allclose(weights[0, :, :2], expected, rtol=1e-6)


def test_masked_softmax_full_length_is_softmax_and_all_masked_is_uniform():
    scores = tf.random.stateless_normal([3, 5], seed=[0, 1])
    np.testing.assert_allclose(masked_softmax(scores, tf.ones([3, 5], tf.bool)), tf.nn.softmax(scores), rtol=1e-6)
    np.testing.assert_allclose(masked_softmax(scores), tf.nn.softmax(scores), rtol=1e-6)
    np.testing.assert_allclose(masked_softmax(scores, tf.zeros([3, 5], tf.bool)), np.full([3, 5], 0.2), rtol=1e-6)


def test_additive_attention_equals_the_formula_and_masks_keys():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 6)), rng.normal(size=(2, 5, 7))
    mask = tf.sequence_mask([2, 5], 5)
    layer = AdditiveAttention(8)
    out, weights = layer(tf.constant(q, tf.float32), tf.constant(k, tf.float32), tf.constant(v, tf.float32), mask)
    w_q, w_k, w_v = (x.numpy() for x in (layer.query_dense.kernel, layer.key_dense.kernel, layer.score_dense.kernel))
    scores = np.tanh((q @ w_q)[:, :, None, :] + (k @ w_k)[:, None, :, :]) @ w_v[:, 0]  # w_vᵀ tanh(W_q q + W_k k)
    scores = np.where(mask.numpy()[:, None, :], scores, -1e6)
    expected_w = np.exp(scores - scores.max(-1, keepdims=True))
    expected_w /= expected_w.sum(-1, keepdims=True)
    np.testing.assert_allclose(weights.numpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), expected_w @ v, rtol=1e-4, atol=1e-5)
    assert (weights.numpy()[0, :, 2:] == 0).all()
    assert out.shape == (2, 3, 7) and weights.shape == (2, 3, 5)


def test_constant_keys_give_uniform_weights_over_the_valid_positions():
    layer = AdditiveAttention(4)
    _, weights = layer(tf.random.normal([1, 2, 3]), tf.ones([1, 6, 3]), tf.random.normal([1, 6, 2]), tf.sequence_mask([4], 6))
    np.testing.assert_allclose(weights.numpy(), [[[0.25] * 4 + [0, 0]] * 2], rtol=1e-6)


def test_with_identity_projections_it_equals_keras_additive_attention():
    """keras.layers.AdditiveAttention scores ``Σ scale · tanh(q + k)``: ours with W_q = W_k = I and w_v = scale."""
    rng = np.random.default_rng(1)
    q, k, v = (tf.constant(rng.normal(size=s), tf.float32) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 4)))
    mask = tf.sequence_mask([3, 5], 5)
    reference = keras.layers.AdditiveAttention(use_scale=True)
    expected = reference([q, v, k], mask=[None, mask])
    ours = AdditiveAttention(4)
    ours(q, k, v, mask)
    ours.query_dense.kernel.assign(np.eye(4))
    ours.key_dense.kernel.assign(np.eye(4))
    ours.score_dense.kernel.assign(reference.scale.numpy()[:, None])
    np.testing.assert_allclose(ours(q, k, v, mask)[0].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_on_weights_only_in_training_and_config_round_trip():
    layer = AdditiveAttention(4, dropout=0.5)
    args = (tf.ones([1, 1, 2]), tf.random.normal([1, 8, 2]), tf.ones([1, 8, 1]))
    inference = layer(*args)[0]
    np.testing.assert_allclose(inference.numpy(), [[[1.0]]], rtol=1e-6)  # weights sum to 1 over ones
    trained = [float(layer(*args, training=True)[0][0, 0, 0]) for _ in range(5)]
    assert any(abs(t - 1.0) > 1e-3 for t in trained)
    clone = AdditiveAttention.from_config(layer.get_config())
    assert (clone.units, clone.dropout) == (4, 0.5)


def test_gradients_flow_to_all_three_projections():
    layer = AdditiveAttention(3)
    q, k, v = tf.random.normal([2, 2, 3]), tf.random.normal([2, 4, 3]), tf.random.normal([2, 4, 3])
    with tf.GradientTape() as tape:
        out, _ = layer(q, k, v, tf.sequence_mask([2, 4], 4))
        loss = tf.reduce_sum(out**2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == 3 and all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


@pytest.mark.parametrize("units", [1, 16])
def test_output_shapes(units):
    out, weights = AdditiveAttention(units)(tf.ones([3, 4, 5]), tf.ones([3, 7, 2]), tf.ones([3, 7, 9]))
    assert out.shape == (3, 4, 9) and weights.shape == (3, 4, 7)
