"""ClassToken (notes-001 §24, ViT eq. 1): one learned vector prepended to the patch sequence."""

import doctest

import keras
import numpy as np
import tensorflow as tf

from tfmodels.layers import class_token
from tfmodels.layers.class_token import ClassToken


def test_prepends_token_plus_its_position_embedding_to_every_sequence():
    layer = ClassToken(initializer="random_normal")
    x = np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32")
    out = layer(x).numpy()
    assert out.shape == (3, 6, 8)
    np.testing.assert_array_equal(out[:, 1:], x)
    expected = layer.token.numpy() + layer.position_embedding.numpy()
    for b in range(3):
        np.testing.assert_allclose(out[b, 0], expected, atol=1e-7)
    assert np.abs(layer.token.numpy()).max() > 0 and np.abs(layer.position_embedding.numpy()).max() > 0


def test_paper_initialisation_and_parameter_count():
    # ViT eq. 1: x_class and E_pos[0] are two D-vectors (keras-hub's ViTBackbone holds both too)
    layer = ClassToken()
    layer(np.zeros((1, 2, 768), "float32"))
    assert layer.count_params() == 2 * 768
    np.testing.assert_array_equal(layer.token.numpy(), 0.0)  # zeros, as the paper's code
    assert 0.01 < layer.position_embedding.numpy().std() < 0.03  # normal, stddev 0.02


def test_dynamic_batch_and_length_and_static_output_shape():
    layer = ClassToken()
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, 4])])
    assert fn(tf.zeros([2, 7, 4])).shape == (2, 8, 4)
    assert layer.compute_output_shape((None, 196, 768)) == (None, 197, 768)
    assert layer.compute_output_shape((None, None, 768)) == (None, None, 768)


def test_gradient_of_both_vectors_sums_over_the_batch():
    layer = ClassToken()
    layer.build((None, 2, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.zeros([3, 2, 4]))[:, 0] * tf.constant([1.0, 2.0, 3.0, 4.0]))
    grads = tape.gradient(loss, [layer.token, layer.position_embedding])
    for grad in grads:
        np.testing.assert_allclose(grad.numpy(), [3.0, 6.0, 9.0, 12.0])


def test_round_trip_through_a_keras_file(tmp_path):
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, ClassToken(initializer="random_normal", name="cls")(inputs))
    x = np.ones((2, 3, 4), "float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_docstring_examples():
    assert doctest.testmod(class_token, raise_on_error=False).failed == 0
