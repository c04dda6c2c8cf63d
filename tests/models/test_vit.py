"""ViT (notes-001 §24; Dosovitskiy et al. 2021): tokens, permutation, pooling, counts, any size, training."""

import doctest

import keras
import keras_hub
import numpy as np
import pytest
import scipy.ndimage

from tfmodels.models import vit
from tfmodels.models.vit import build_vit, vit_b16, vit_config, vit_tiny

SMALL = dict(image_size=32, patch_size=4, hidden_dim=16, num_layers=2, num_heads=2, mlp_dim=32)
CONTRACT_NAMES = ["preprocess", "patch_projection", "position_embedding", "class_token", "encoder_norm", "head"]


def _pixels(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


def _randomize(model, seed=0):
    """Random values in every weight (a zero-initialised head or unit LayerNorm would hide mistakes)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.2, weight.shape) + (1.0 if weight.name == "gamma" else 0.0))


def _small(**kwargs):
    keras.utils.set_random_seed(0)
    model = build_vit(5, input_shape=(None, None, 3), **{**SMALL, **kwargs})
    _randomize(model)
    return model


def test_224_image_with_16_patches_gives_197_tokens():
    # notes-001 §24: 224x224, patch 16 -> 14x14 = 196 patches, + CLS = 197
    model = build_vit(
        input_shape=(224, 224, 3), image_size=224, patch_size=16, hidden_dim=32, num_layers=1,
        num_heads=2, mlp_dim=64, include_top=False,
    )
    assert model.get_layer("patch_projection").output.shape == (None, 14, 14, 32)
    assert model(_pixels(2, 224)).shape == (2, 197, 32)


def test_contract_layer_names_and_types():
    model = build_vit(3, **{**SMALL, "num_layers": 3})
    for name in CONTRACT_NAMES + [f"encoder_block_{i}" for i in range(3)]:
        model.get_layer(name)
    projection = model.get_layer("patch_projection")
    assert projection.kernel_size == (4, 4) and projection.strides == (4, 4) and projection.padding == "valid"
    block = model.get_layer("encoder_block_0")
    assert block.normalize_first and block.layer_norm_epsilon == 1e-6
    assert "class_token" not in [layer.name for layer in build_vit(3, **SMALL, pooling="gap").layers]


def _permute_patches(images, order, patch=4):
    """Rearranges the 8x8 grid of 4x4 patches: patch k of the result is patch order[k] of the input."""
    n, size = images.shape[0], images.shape[1]
    g = size // patch
    grid = images.reshape(n, g, patch, g, patch, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, patch, patch, 3)
    return grid[:, order].reshape(n, g, g, patch, patch, 3).transpose(0, 1, 3, 2, 4, 5).reshape(images.shape)


def test_without_position_embeddings_the_class_output_ignores_patch_order():
    model = _small(include_top=False)
    images = _pixels()
    order = np.random.default_rng(1).permutation(64)
    permuted = _permute_patches(images, order)
    with_positions = model(images).numpy(), model(permuted).numpy()
    assert np.abs(with_positions[0][:, 0] - with_positions[1][:, 0]).max() > 1e-3  # order matters
    table = model.get_layer("position_embedding").embeddings
    table.assign(np.zeros(table.shape))  # "no position embeddings"
    out, out_permuted = model(images).numpy(), model(permuted).numpy()
    np.testing.assert_allclose(out_permuted[:, 0], out[:, 0], atol=2e-5)  # invariant class token
    np.testing.assert_allclose(out_permuted[:, 1:], out[:, 1:][:, order], atol=2e-5)  # equivariant patches


@pytest.mark.parametrize("pooling", ["token", "gap"])
def test_head_reads_the_class_token_or_the_mean_of_the_patches(pooling):
    model = _small(pooling=pooling)
    sequence = keras.Model(model.input, model.get_layer("encoder_norm").output)(_pixels()).numpy()
    pooled = sequence[:, 0] if pooling == "token" else sequence.mean(axis=1)
    head = model.get_layer("head")
    expected = pooled @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(model(_pixels()).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert sequence.shape[1] == (65 if pooling == "token" else 64)


def _closed_form_count(image_size, patch_size, hidden_dim, num_layers, mlp_dim, num_classes, **_):
    d, n = hidden_dim, (image_size // patch_size) ** 2
    embedding = patch_size**2 * 3 * d + d + (n + 1) * d + d  # E and its bias, E_pos (1 + N rows), x_class
    block = 4 * (d * d + d) + d * mlp_dim + mlp_dim + mlp_dim * d + d + 2 * 2 * d  # attention, MLP, 2 LNs
    return embedding + num_layers * block + 2 * d + (d * num_classes + num_classes)


def test_count_equals_live_keras_hub_and_the_closed_form_at_a_small_size():
    hub = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    classifier = keras_hub.models.ViTImageClassifier(hub, num_classes=5)
    assert build_vit(5, **SMALL, include_top=False).count_params() == hub.count_params()
    assert build_vit(5, **SMALL).count_params() == classifier.count_params() == _closed_form_count(**SMALL, num_classes=5)


def test_vit_b16_closed_form_count_is_the_published_one():
    # built counts: the vit_b16 doctest (86,567,656) and, live against keras-hub, the slow test below
    with_head = _closed_form_count(**vit_config("b16"), num_classes=1000)
    assert with_head == 86_567_656  # issue 15's figure
    assert with_head - (768 * 1000 + 1000) == 85_798_656  # keras-hub's ViTBackbone preset metadata


@pytest.mark.slow
def test_vit_b16_count_equals_live_keras_hub():
    hub = keras_hub.models.ViTBackbone(
        image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072
    )
    assert vit_b16(include_top=False).count_params() == hub.count_params() == 85_798_656
    classifier = keras_hub.models.ViTImageClassifier(hub, num_classes=1000)
    assert vit_b16(num_classes=1000).count_params() == classifier.count_params() == 86_567_656


def test_model_built_at_32_runs_at_48_like_one_whose_table_scipy_resized():
    model = _small()
    resized = _small(image_size=48)  # a 12x12 position table
    for source, target in zip(model.weights, resized.weights):
        if source.path.startswith("position_embedding"):
            target.assign(
                scipy.ndimage.zoom(source.numpy().astype("float64"), (1.5, 1.5, 1), order=1, grid_mode=True, mode="nearest")
            )
        else:
            target.assign(source)
    images = _pixels(2, 48)
    out = model(images).numpy()
    np.testing.assert_allclose(out, resized(images).numpy(), rtol=1e-4, atol=1e-4)
    assert out.shape == (2, 5) and np.abs(out).max() > 1e-2


def test_raw_pixels_are_mapped_to_minus_one_one():
    model = build_vit(5, **SMALL)
    preprocess = model.get_layer("preprocess")
    np.testing.assert_allclose(preprocess(np.array([[0.0, 127.5, 255.0]])).numpy(), [[-1.0, 0.0, 1.0]])
    assert "preprocess" not in [layer.name for layer in build_vit(5, **SMALL, normalization=None).layers]


def test_round_trip_through_a_keras_file_at_two_sizes(keras_round_trip):
    model = _small()
    loaded = keras_round_trip(model)
    for size in (32, 48):
        np.testing.assert_allclose(loaded(_pixels(2, size)).numpy(), model(_pixels(2, size)).numpy(), atol=1e-6)


def test_tiny_batch_overfits(train_on_one_batch):
    keras.utils.set_random_seed(0)
    model = build_vit(4, input_shape=(32, 32, 3), **{**SMALL, "num_layers": 1})  # fewer variables to trace
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    initial, final = train_on_one_batch(model, _pixels(8), labels, learning_rate=1e-2, steps=15)
    assert initial == pytest.approx(np.log(4), abs=1e-5)  # zero-initialised head: uniform logits
    assert final < 0.5 * initial


def test_mixed_precision_keeps_float32_logits_at_another_size():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_vit(5, **SMALL)
        assert model.get_layer("encoder_block_0").compute_dtype == "float16"
        logits = model(_pixels(2, 40))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logits.dtype == "float32" and logits.shape == (2, 5)


def test_builders_follow_the_zoo_signature_and_refuse_bad_arguments():
    model = vit_tiny(num_classes=7, input_shape=(32, 32, 3), weights=None)
    assert model.output_shape == (None, 7) and model.get_layer("position_embedding").embeddings.shape == (8, 8, 64)
    assert vit_tiny(include_top=False, input_shape=(32, 32, 3), weights=None).output_shape == (None, 65, 64)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        vit_tiny(weights="imagenet")
    with pytest.raises(ValueError, match="1000 classes"):
        vit_b16(num_classes=10, weights="imagenet")
    with pytest.raises(ValueError, match="weights"):
        vit_b16(weights="imagenet21k")
    with pytest.raises(ValueError, match="pooling"):
        build_vit(pooling="max")
    with pytest.raises(ValueError, match="unknown ViT variant"):
        vit_config("h14")


def test_docstring_examples():
    assert doctest.testmod(vit, raise_on_error=False).failed == 0
