"""FixMatch: L_u against the paper's formula in NumPy, masking, stop-gradient, EMA, hidden labels."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from semi_supervised_batches import hand_made_batch

from tfmodels.models.fixmatch import FixMatch, unlabelled_loss

TAU = 0.95


def _numpy_unlabelled_loss(weak, strong, tau):
    """Sohn et al. 2020 eq. 4, written from the paper: (1/μB) Σ 1[max q ≥ τ] H(argmax q, softmax(strong))."""
    q = np.exp(weak - weak.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    mask = q.max(1) >= tau
    log_p = strong - strong.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    return np.sum(mask * -log_p[np.arange(len(weak)), q.argmax(1)]) / len(weak), mask


WEAK = np.array([[6.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 4.0], [1.0, 2.0, 0.0]])  # max q: .995, .45, .965, .67
STRONG = np.array([[0.5, 1.0, -1.0], [3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]])


def test_unlabelled_loss_is_the_papers_formula():
    out = unlabelled_loss(tf.constant(WEAK), tf.constant(STRONG), TAU)
    expected, mask = _numpy_unlabelled_loss(WEAK, STRONG, TAU)
    np.testing.assert_allclose(float(out["loss"]), expected, rtol=1e-6)
    assert out["mask"].numpy().tolist() == mask.astype(float).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out["pseudo_labels"].numpy().tolist()[::2] == [0, 2]


def test_unconfident_images_contribute_nothing_and_no_gradient_flows_through_the_weak_view():
    weak, strong = tf.constant(WEAK), tf.Variable(STRONG)
    perturbed = STRONG.copy()
    perturbed[[1, 3]] = [[-9.0, 4.0, 2.0], [7.0, -3.0, 1.0]]
    assert float(unlabelled_loss(weak, tf.constant(perturbed), TAU)["loss"]) == pytest.approx(float(unlabelled_loss(weak, strong, TAU)["loss"]))
    weak_var = tf.Variable(WEAK)
    with tf.GradientTape() as tape:
        loss = unlabelled_loss(weak_var, strong, TAU)["loss"]
    grad_weak, grad_strong = tape.gradient(loss, [weak_var, strong])
    assert grad_weak is None or not np.any(grad_weak.numpy())
    assert not np.any(grad_strong.numpy()[[1, 3]]) and np.any(grad_strong.numpy()[[0, 2]])
    assert float(unlabelled_loss(weak, strong, 1.0)["loss"]) == 0.0  # τ = 1: pure supervised


def _network():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])


def _batch(rng):
    return hand_made_batch(rng, batch=4, mu=2)


def _model(**kwargs):
    model = FixMatch(_network(), **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def test_total_loss_is_supervised_plus_lambda_times_unlabelled():
    x, y = _batch(np.random.default_rng(1))
    model = _model(threshold=0.4, unlabelled_weight=0.7)
    net = lambda images: model.network(tf.reshape(images, [-1, 4, 4, 1])).numpy().astype(np.float64)  # noqa: E731
    logits = net(x["labelled"])
    supervised = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(4), y["label"].numpy()])
    unlabelled, _ = _numpy_unlabelled_loss(net(x["teacher_view"]), net(x["student_view"]), 0.4)
    losses = model.losses_of((x, y))
    np.testing.assert_allclose(float(losses["total"]), supervised + 0.7 * unlabelled, rtol=1e-5)


def test_one_step_updates_the_ema_and_logs_mask_rate_and_pseudo_label_accuracy():
    x, y = _batch(np.random.default_rng(2))
    model = _model(threshold=0.6, ema_decay=0.9)
    before = model.losses_of((x, y))
    old_ema = [w.numpy() for w in model.ema_network.weights]
    logs = model.train_step((x, y))
    for old, ema, new in zip(old_ema, model.ema_network.weights, model.network.weights):
        np.testing.assert_allclose(ema.numpy(), 0.9 * old + 0.1 * new.numpy(), rtol=1e-6, atol=1e-7)
    mask = before["mask"].numpy()
    correct = before["pseudo_labels"].numpy() == y["hidden_labels"].numpy().ravel()
    assert 0 < mask.sum() < len(mask)  # the hand-made batch has both kinds
    np.testing.assert_allclose(float(logs["mask_rate"]), mask.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(logs["pseudo_label_accuracy"]), (correct * mask).sum() / mask.sum(), rtol=1e-6)
    assert not model.ema_network.trainable_weights  # the EMA gets no gradient


def test_hidden_labels_never_reach_the_loss():
    x, y = _batch(np.random.default_rng(3))
    permuted = {**y, "hidden_labels": tf.constant((y["hidden_labels"].numpy() + 1) % 3)}
    a, b = _model(threshold=0.4), _model(threshold=0.4)
    logs_a, logs_b = a.train_step((x, y)), b.train_step((x, permuted))
    assert float(logs_a["loss"]) == float(logs_b["loss"])
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())


def test_evaluation_and_keras_file_use_the_ema_network(tmp_path):
    x, y = _batch(np.random.default_rng(4))
    model = _model(threshold=0.4, ema_decay=0.5)
    model.train_step((x, y))
    pixels = x["labelled"]
    np.testing.assert_array_equal(model(pixels).numpy(), model.ema_network(pixels).numpy())
    assert not np.allclose(model.ema_network(pixels), model.network(pixels))
    model.save(tmp_path / "fixmatch.keras")
    loaded = keras.saving.load_model(tmp_path / "fixmatch.keras")
    assert (loaded.threshold, loaded.ema_decay) == (0.4, 0.5)
    np.testing.assert_allclose(loaded(pixels), model(pixels), rtol=1e-6)
    np.testing.assert_allclose(loaded.network(pixels), model.network(pixels), rtol=1e-6)
