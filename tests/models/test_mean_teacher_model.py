"""Mean Teacher: the sigmoid ramp-up, the consistency MSE, the total loss and the EMA teacher."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from semi_supervised_batches import hand_made_batch

from tfmodels.models.mean_teacher import MeanTeacher, consistency_loss, sigmoid_rampup


@pytest.mark.parametrize("step, length", [(0, 10), (3, 10), (7, 40), (10, 10), (25, 10), (5, 0)])
def test_rampup_is_the_papers_sigmoid(step, length):
    expected = 1.0 if step >= length else np.exp(-5.0 * (1.0 - step / length) ** 2)
    assert float(sigmoid_rampup(step, length)) == pytest.approx(expected, rel=1e-6)


def test_consistency_is_the_mse_of_softmaxes_with_no_gradient_to_the_teacher():
    student = np.array([[1.0, 0.0, -1.0], [0.2, 0.3, 2.0]])
    teacher = np.array([[0.0, 2.0, 0.0], [0.2, 0.3, 2.0]])
    softmax = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    expected = np.mean((softmax(student) - softmax(teacher)) ** 2)
    assert float(consistency_loss(tf.constant(student), tf.constant(teacher))) == pytest.approx(expected, rel=1e-6)
    assert float(consistency_loss(tf.constant(teacher), tf.constant(teacher))) == 0.0
    s, t = tf.Variable(student), tf.Variable(teacher)
    with tf.GradientTape() as tape:
        loss = consistency_loss(s, t)
    grad_s, grad_t = tape.gradient(loss, [s, t])
    assert grad_t is None and np.any(grad_s.numpy())


def _batch(rng):
    return hand_made_batch(rng, batch=3, mu=2)


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    model = MeanTeacher(network, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def test_total_is_cross_entropy_plus_ramped_weight_times_consistency():
    x, y = _batch(np.random.default_rng(0))
    model = _model(consistency_weight=8.0, rampup_steps=4)
    # perturb the student so that it differs from its teacher
    model.network.set_weights([w + 0.3 for w in model.network.get_weights()])
    student = lambda images: model.network(tf.reshape(images, [-1, 4, 4, 1])).numpy().astype(np.float64)  # noqa: E731
    teacher = model.ema_network(tf.reshape(x["teacher_view"], [-1, 4, 4, 1])).numpy().astype(np.float64)
    softmax = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)  # noqa: E731
    logits = student(x["labelled"])
    ce = np.mean(-np.log(softmax(logits)[np.arange(3), y["label"].numpy()]))
    mse = np.mean((softmax(student(x["student_view"])) - softmax(teacher)) ** 2)
    weight = 8.0 * np.exp(-5.0)  # step 0 of a 4-step ramp-up
    np.testing.assert_allclose(float(model.losses_of((x, y))["total"]), ce + weight * mse, rtol=1e-5)


def test_teacher_is_the_ema_with_the_rampup_decay_then_the_final_decay():
    x, y = _batch(np.random.default_rng(1))
    model = _model(rampup_steps=1, ema_decay=0.9, rampup_ema_decay=0.5)
    assert not model.ema_network.trainable_weights  # the teacher gets no gradient
    np.testing.assert_array_equal(model.ema_network.get_weights()[0], model.network.get_weights()[0])  # starts equal
    for decay in (0.5, 0.9):  # step 0 is in the ramp-up, step 1 after it
        old = [w.numpy() for w in model.ema_network.weights]
        logs = model.train_step((x, y))
        for before, ema, student in zip(old, model.ema_network.weights, model.network.weights):
            np.testing.assert_allclose(ema.numpy(), decay * before + (1 - decay) * student.numpy(), rtol=1e-6, atol=1e-7)
    # the logged weight is the mean over both steps of w(t) at the step's t: w(0) = 100 e⁻⁵, w(1) = 100
    assert float(logs["consistency_weight"]) == pytest.approx((100.0 * np.exp(-5.0) + 100.0) / 2, rel=1e-6)


@pytest.mark.parametrize("decay, same_as", [(0.0, "student"), (0.999999, "old teacher")])
def test_decay_zero_copies_the_student_and_decay_one_freezes_the_teacher(decay, same_as):
    x, y = _batch(np.random.default_rng(2))
    model = _model(rampup_steps=0, ema_decay=decay)
    old = model.ema_network.get_weights()
    model.train_step((x, y))
    expected = model.network.get_weights() if same_as == "student" else old
    for a, b in zip(model.ema_network.get_weights(), expected):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(model.network.get_weights()[0], old[0])  # the student did move


def test_the_teacher_is_evaluated_and_survives_a_keras_file(tmp_path):
    x, y = _batch(np.random.default_rng(3))
    model = _model(consistency_weight=3.0, rampup_steps=7, ema_decay=0.5, rampup_ema_decay=0.5)
    model.train_step((x, y))
    pixels = x["labelled"]
    np.testing.assert_array_equal(model(pixels).numpy(), model.ema_network(pixels).numpy())
    logs = model.evaluate(pixels, y["label"], verbose=0, return_dict=True)
    teacher_hits = np.mean(model.ema_network(pixels).numpy().argmax(1) == y["label"].numpy())
    assert logs["accuracy"] == pytest.approx(teacher_hits) and "student_accuracy" in logs
    model.save(tmp_path / "mean_teacher.keras")
    loaded = keras.saving.load_model(tmp_path / "mean_teacher.keras")
    assert (loaded.consistency_weight, loaded.rampup_steps, loaded.rampup_ema_decay) == (3.0, 7, 0.5)
    np.testing.assert_allclose(loaded(pixels), model(pixels), rtol=1e-6)
    assert not np.allclose(loaded(pixels), loaded.network(pixels))
