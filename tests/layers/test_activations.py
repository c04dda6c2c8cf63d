"""Keras' own activations against the notes' formulas (notes-003-004.md C3, notes-002-part2 §55).

Keras has every activation the notes list (Sigmoid, Tanh, ReLU, Leaky ReLU, PReLU, ELU, Swish),
so the zoo uses them directly; these tests pin their values, gradients and the defaults that
differ from the notes.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

POINTS = np.array([-10.0, -4.0, -1.0, -0.5, 0.0, 0.5, 1.0, 4.0, 10.0], np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))  # seed 003 L204


def _value_and_gradient(function, x=POINTS):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
    return y.numpy(), tape.gradient(y, x).numpy()


def test_sigmoid_value_and_derivative():
    """σ'(x) = e^-x / (1 + e^-x)^2 (L208); its maximum 0.25 is at 0, not 0 as the seed says (L210)."""
    y, grad = _value_and_gradient(keras.activations.sigmoid)
    np.testing.assert_allclose(y, _sigmoid(POINTS), rtol=1e-6)
    np.testing.assert_allclose(grad, np.exp(-POINTS) / (1 + np.exp(-POINTS)) ** 2, rtol=1e-4, atol=1e-7)
    assert grad[POINTS == 0] == pytest.approx(0.25)
    np.testing.assert_allclose(grad[[0, -1]], 4.54e-5, rtol=1e-2)  # saturation at |x| = 10 [verified]


def test_tanh_is_a_rescaled_sigmoid():
    y, grad = _value_and_gradient(keras.activations.tanh)
    np.testing.assert_allclose(y, 2 * _sigmoid(2 * POINTS) - 1, atol=1e-6)
    np.testing.assert_allclose(grad, 1 - y**2, atol=1e-6)
    assert grad.max() == grad[POINTS == 0] == pytest.approx(1.0)


def test_relu_value_gradient_and_sparsity():
    y, grad = _value_and_gradient(keras.activations.relu)
    np.testing.assert_array_equal(y, np.where(POINTS >= 0, POINTS, 0))  # L216-219
    np.testing.assert_array_equal(grad[POINTS > 0], 1.0)
    np.testing.assert_array_equal(grad[POINTS < 0], 0.0)
    active = keras.activations.relu(tf.random.normal([100_000], seed=0)) > 0
    assert float(tf.reduce_mean(tf.cast(active, tf.float32))) == pytest.approx(0.5, abs=0.01)  # L221


@pytest.mark.parametrize("slope", [0.01, 0.001, 0.1])
def test_leaky_relu_with_the_notes_slopes(slope):
    """f(x) = α x for x < 0 (seed 004 L171's 'small constant' is wrong); α = 0.01 or 0.001."""
    layer = keras.layers.LeakyReLU(negative_slope=slope)
    y, grad = _value_and_gradient(layer)
    np.testing.assert_allclose(y, np.where(POINTS > 0, POINTS, slope * POINTS), rtol=1e-6)
    np.testing.assert_allclose(grad[POINTS < 0], slope, rtol=1e-6)
    np.testing.assert_allclose(grad[POINTS > 0], 1.0)
    y, _ = _value_and_gradient(lambda x: keras.activations.leaky_relu(x, negative_slope=slope))
    np.testing.assert_allclose(y, np.where(POINTS > 0, POINTS, slope * POINTS), rtol=1e-6)


def test_leaky_relu_keras_defaults_differ_from_the_notes():
    """C3 [verified] pitfall: layer default 0.3, function default 0.2; the notes' 0.01 must be set."""
    assert float(keras.layers.LeakyReLU()(tf.constant(-1.0))) == pytest.approx(-0.3)
    assert float(keras.activations.leaky_relu(tf.constant(-1.0))) == pytest.approx(-0.2)


def test_dead_relu_neurons_and_leaky_fix():
    """S3:L235: with a large negative bias ReLU passes no gradient; Leaky ReLU still does."""
    x = tf.random.normal([64, 4], seed=1)
    dense = keras.layers.Dense(3, bias_initializer=keras.initializers.Constant(-100.0))
    dense(x)
    for activation, alive in ((keras.activations.relu, False), (keras.layers.LeakyReLU(negative_slope=0.01), True)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(activation(dense(x)))
        kernel_grad = tape.gradient(loss, dense.kernel)
        assert bool(tf.reduce_any(kernel_grad != 0)) is alive


def test_elu():
    """ELU(x) = x (x > 0), α(e^x − 1) (x ≤ 0), α = 1 (notes-002-part2 §55); ELU(−1) ≈ −0.6321."""
    y, grad = _value_and_gradient(keras.activations.elu)
    np.testing.assert_allclose(y, np.where(POINTS > 0, POINTS, np.expm1(POINTS)), rtol=1e-6, atol=1e-7)
    assert float(keras.activations.elu(tf.constant(-1.0))) == pytest.approx(-0.6321, abs=1e-4)
    np.testing.assert_allclose(grad[POINTS < 0], np.exp(POINTS[POINTS < 0]), atol=1e-6)
    tiny = tf.constant([-1e-4, 1e-4])
    np.testing.assert_allclose(keras.activations.elu(tiny), tiny, atol=1e-7)  # continuous at 0
    y = keras.layers.ELU(alpha=0.5)(tf.constant(-1.0))
    assert float(y) == pytest.approx(0.5 * (np.exp(-1) - 1))


def test_prelu_learns_alpha():
    """PReLU(x) = x (x > 0), α x otherwise, α learnable (§55): PReLU(−4) = −1 at α = 0.25."""
    x = tf.constant(POINTS.reshape(1, 3, 3, 1))
    assert tf.reduce_all(keras.layers.PReLU()(x) == keras.activations.relu(x))  # Keras: α starts at 0
    # PyTorch-like: one α per channel, shared over H and W, initialised to 0.25.
    layer = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2])
    with tf.GradientTape() as tape:
        y = layer(x)
        total = tf.reduce_sum(y)
    np.testing.assert_allclose(y.numpy().ravel(), np.where(POINTS > 0, POINTS, 0.25 * POINTS))
    assert float(y[0, 0, 1, 0]) == -1.0  # PReLU(-4)
    assert layer.count_params() == 1
    np.testing.assert_allclose(tape.gradient(total, layer.alpha).numpy().ravel(), POINTS[POINTS < 0].sum())


def test_swish_is_silu():
    """Swish x σ(βx); β = 1 is SiLU, which is Keras' silu (alias swish)."""
    y, grad = _value_and_gradient(keras.activations.silu)
    s = _sigmoid(POINTS)
    np.testing.assert_allclose(y, POINTS * s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, s + POINTS * s * (1 - s), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(keras.activations.swish(tf.constant(POINTS)), y)
    assert float(keras.activations.get("swish")(tf.constant(1.0))) == pytest.approx(_sigmoid(1.0))
