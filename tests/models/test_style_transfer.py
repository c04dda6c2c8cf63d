"""Neural style transfer model (notes-002-part2 §19): Gram, TV, layer mapping, extractor, the image as the only weight."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import style_transfer as st

SIZE = (32, 48)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    extractor = st.build_vgg19_extractor(SIZE, [*st.STYLE_LAYERS, *st.CONTENT_LAYERS], width_divisor=16)
    return st.StyleTransfer(extractor, num_style_layers=len(st.STYLE_LAYERS))


def images(seed=0):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, SIZE[1], dtype=np.float32)
    content = np.stack([np.tile(ramp, (SIZE[0], 1))] * 3, axis=-1)  # a smooth grey ramp
    style = rng.uniform(0, 255, (*SIZE, 3)).astype(np.float32)  # noise
    return content, style


@pytest.mark.parametrize("channels", [1, 3, 8])
def test_gram_of_ones_is_ones_over_c(channels):
    # §19 worked example: X = ones(1, 2, 2, c), gram = X Xᵀ / (c·h·w) = 4 ones(c, c) / (4c).
    gram = st.gram_matrix(tf.ones([1, 2, 2, channels])).numpy()
    np.testing.assert_allclose(gram, np.ones((1, channels, channels)) / channels, rtol=1e-6)


def test_gram_is_x_xt_over_chw_symmetric_and_psd():
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 4)).astype(np.float32)
    gram = st.gram_matrix(tf.constant(x)).numpy()
    for b in range(2):
        flat = x[b].reshape(-1, 4).T  # c × hw, d2l's reshape
        np.testing.assert_allclose(gram[b], flat @ flat.T / (4 * 3 * 5), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gram[b], gram[b].T, rtol=1e-6)
        assert np.linalg.eigvalsh(gram[b].astype(np.float64)).min() > -1e-6


def test_total_variation_of_a_constant_image_is_zero_and_of_a_checkerboard_is_one():
    constant = tf.fill([2, 5, 7, 3], 0.7)
    np.testing.assert_array_equal(st.total_variation_loss(constant).numpy(), [0.0, 0.0])
    # Every neighbour of a 0/1 checkerboard differs by 1: ½ (1 + 1) = 1.
    board = (np.indices((6, 6)).sum(0) % 2).astype(np.float32)[None, :, :, None]
    assert float(st.total_variation_loss(tf.constant(board))[0]) == pytest.approx(1.0)


def test_d2l_indices_map_to_the_specs_keras_names():
    # notes-002-part2 §19: style [0, 5, 10, 19, 28], content [25] of torchvision's vgg19.features.
    assert st.STYLE_LAYERS == ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
    assert st.CONTENT_LAYERS == ("block4_conv4",)
    # torchvision's vgg19.features: 16 (conv, ReLU) pairs and 5 pools = 37 layers; 1 is conv1_1's ReLU.
    assert [st.vgg19_feature_name(i) for i in (1, 4, 36)] == ["block1_conv1", "block1_pool", "block5_pool"]
    with pytest.raises(ValueError, match="37 layers"):
        st.vgg19_feature_name(37)


def test_extractor_equals_keras_applications_vgg19_at_the_chosen_layers():
    names = [*st.STYLE_LAYERS, *st.CONTENT_LAYERS]
    ours = st.build_vgg19_extractor(SIZE, names)
    reference = keras.applications.VGG19(weights=None, include_top=False, input_shape=(*SIZE, 3))
    ours_names = {layer.name for layer in ours.layers}
    # Only the layers up to the deepest chosen one (block5_conv1) are in the extractor (§19 L2418).
    assert "block5_conv1" in ours_names and "block5_conv2" not in ours_names
    rng = np.random.default_rng(2)
    for layer in reference.layers:  # random non-zero biases too, so a misplaced one shows
        if isinstance(layer, keras.layers.Conv2D) and layer.name in ours_names:
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 0.05, kernel.shape), rng.normal(0, 0.1, bias.shape)])
            ours.get_layer(layer.name).set_weights(layer.get_weights())
    probe = keras.Model(reference.input, [reference.get_layer(n).output for n in names])
    pixels = rng.uniform(0, 255, (2, *SIZE, 3)).astype(np.float32)
    expected = probe(keras.applications.vgg19.preprocess_input(pixels.copy()))
    for name, got, want in zip(names, ours(pixels), expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def test_normalise_is_the_torch_mode_preprocessing_and_to_pixels_inverts_it():
    pixels = np.random.default_rng(3).uniform(0, 255, (1, 4, 4, 3)).astype(np.float32)
    expected = keras.applications.imagenet_utils.preprocess_input(pixels.copy(), mode="torch")
    np.testing.assert_allclose(st.StyleTransfer.normalise(pixels).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(st.StyleTransfer.to_pixels(tf.constant(expected))), pixels, rtol=1e-5, atol=1e-3)


def test_initialised_as_the_content_image_the_content_loss_is_zero_at_step_0():
    model = tiny_model()
    content, style = images()
    model.set_targets(content, style)
    np.testing.assert_allclose(model.stylized_pixels().numpy(), content, atol=1e-3)
    losses = model.objective(model.image)
    assert float(losses["content_loss"][0]) == 0.0
    assert float(losses["style_loss"][0]) > 0  # a ramp has not the Gram matrices of noise
    # The style image against itself: no style loss.
    assert float(model(style[None])["style_loss"][0]) == 0.0


def test_training_moves_only_the_image_and_lowers_the_loss():
    model = tiny_model()
    model.set_targets(*images())
    assert [w.name for w in model.trainable_weights] == ["synthesised_image"]
    frozen = [w.numpy().copy() for w in model.extractor.weights]
    targets = [w.numpy().copy() for w in [*model.style_grams, *model.content_features]]
    start = model.image.numpy().copy()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    markers = tf.data.Dataset.from_tensor_slices((np.zeros(1, np.float32), np.zeros(1, np.float32))).batch(1)
    history = model.fit(markers, epochs=10, verbose=0).history["loss"]  # one step per epoch
    assert np.all(np.diff(history) < 0), history  # §19 test: the loss falls over the first 10 steps
    for before, after in zip(frozen, model.extractor.weights):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(targets, [*model.style_grams, *model.content_features]):
        np.testing.assert_array_equal(before, after.numpy())
    assert np.abs(model.image.numpy() - start).max() > 0.1


def test_keras_round_trip_keeps_image_targets_and_frozen_extractor(tmp_path):
    model = tiny_model()
    content, style = images()
    model.set_targets(content, style)
    model.image.assign_add(tf.random.normal(model.image.shape, seed=1))
    model.save(tmp_path / "st.keras")
    loaded = keras.saving.load_model(tmp_path / "st.keras")
    assert [w.name for w in loaded.trainable_weights] == ["synthesised_image"]
    np.testing.assert_array_equal(loaded.image.numpy(), model.image.numpy())
    for key, value in model(style[None]).items():
        np.testing.assert_allclose(loaded(style[None])[key].numpy(), value.numpy(), rtol=1e-6, err_msg=key)


def test_the_extractor_outputs_must_hold_style_and_content_layers():
    extractor = st.build_vgg19_extractor(SIZE, ["block1_conv1", "block2_conv1"], width_divisor=16)
    with pytest.raises(ValueError, match="style layers, then content layers"):
        st.StyleTransfer(extractor, num_style_layers=2)
