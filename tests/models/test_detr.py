"""DETR network (notes-001 §28; Carion et al. 2020): heads, auxiliary outputs, positions, DETR-R50's count."""

import doctest
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.layers import detr_transformer
from tfmodels.layers.detr_transformer import DetrTransformer, sine_position_grid
from tfmodels.models import detr
from tfmodels.models.detr import build_detr

OFFICIAL_DETR_R50 = 41_302_368  # "number of params" of the official code's DETR-R50 (paper Table 1: 41M)
TORCHVISION_RESNET50 = 25_557_032  # torchvision's resnet50 parameter count (conv kernels, BN gamma/beta, FC)


def _tiny(aux_loss=True, decoder_layers=2, num_classes=3):
    return build_detr(num_classes, 64, "basic", (1, 1, 1), 8, 32, 2, 1, decoder_layers, 64, num_queries=6, aux_loss=aux_loss)


def test_doctests():
    assert doctest.testmod(detr).failed == 0
    assert doctest.testmod(detr_transformer).failed == 0


def test_outputs_are_float32_sets_of_queries_with_a_no_object_logit_and_sigmoid_boxes():
    outputs = _tiny(decoder_layers=3)(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32"))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "class_logits": (2, 6, 4), "boxes": (2, 6, 4), "aux_class_logits": (2, 2, 6, 4), "aux_boxes": (2, 2, 6, 4),
    }
    assert all(v.dtype == "float32" for v in outputs.values())
    assert np.all((outputs["boxes"].numpy() > 0) & (outputs["boxes"].numpy() < 1))
    assert set(_tiny(aux_loss=False)(np.zeros((1, 64, 64, 3), "float32"))) == {"class_logits", "boxes"}
    assert set(_tiny(decoder_layers=1).output) == {"class_logits", "boxes"}  # no earlier layer to supervise


def test_aux_outputs_are_the_shared_heads_on_the_earlier_decoder_layers():
    model = _tiny(decoder_layers=2)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    states = keras.Model(model.input, model.get_layer("transformer").output)(pixels)  # [B, L, Q, d]
    assert states.shape == (2, 2, 6, 32)
    logits = model.get_layer("class_head")(states)
    outputs = model(pixels)
    np.testing.assert_allclose(outputs["aux_class_logits"], logits[:, :1], atol=1e-5)
    np.testing.assert_allclose(outputs["class_logits"], logits[:, 1], atol=1e-5)


def test_sine_positions_follow_the_official_formula():
    """The official PositionEmbeddingSine (normalize=True), written out per element."""
    height, width, depth = 3, 5, 8
    half = depth // 2
    grid = sine_position_grid(height, width, depth).reshape(height, width, depth)
    for i in range(height):
        for j in range(width):
            for axis, position in ((0, (i + 1) / height * 2 * math.pi), (1, (j + 1) / width * 2 * math.pi)):
                for k in range(half):
                    angle = position / 10000 ** (2 * (k // 2) / half)
                    expected = math.sin(angle) if k % 2 == 0 else math.cos(angle)
                    assert grid[i, j, axis * half + k] == pytest.approx(expected, abs=1e-6)


def test_decoder_treats_the_queries_as_a_set():
    """No causal mask: permuting the query embeddings permutes the decoder's outputs the same way."""
    transformer = DetrTransformer(2, 32, encoder_layers=1, decoder_layers=2, num_queries=5, dropout=0.0)
    features = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 3, 16)), tf.float32)
    before = transformer(features).numpy()
    order = [3, 0, 4, 1, 2]
    transformer.query_embedding.assign(tf.gather(transformer.query_embedding, order))
    np.testing.assert_allclose(transformer(features).numpy(), before[:, :, order], atol=1e-5)


def _resnet50_conv_kernels_and_bn_channels() -> tuple[int, int]:
    """ResNet-50's bias-free conv kernels and BN channels, from its layout (stem + bottleneck stages)."""
    kernels, channels, c_in = 7 * 7 * 3 * 64, 64, 64
    for filters, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for index in range(blocks):
            kernels += c_in * filters + 9 * filters * filters + filters * 4 * filters
            channels += 6 * filters
            if index == 0:  # projection shortcut
                kernels += c_in * 4 * filters
                channels += 4 * filters
            c_in = 4 * filters
    return kernels, channels


def test_paper_detr_r50_has_the_closed_form_and_the_official_parameter_count():
    d, ffn, queries, classes = 256, 2048, 100, 91 + 1
    conv_kernels, bn_channels = _resnet50_conv_kernels_and_bn_channels()
    assert conv_kernels + 2 * bn_channels + 2048 * 1000 + 1000 == TORCHVISION_RESNET50  # the backbone checks out
    attention = 4 * (d * d + d)
    feedforward = d * ffn + ffn + ffn * d + d
    encoder = 6 * (attention + feedforward + 2 * 2 * d)
    decoder = 6 * (2 * attention + feedforward + 3 * 2 * d) + 2 * d  # + the shared final LayerNorm
    heads = (d * classes + classes) + 2 * (d * d + d) + (d * 4 + 4)
    transformer_and_heads = (2048 * d + d) + encoder + decoder + queries * d + heads
    model = build_detr(image_size=128)  # the count does not depend on the input size
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == conv_kernels + 2 * bn_channels + transformer_and_heads == 41_577_888
    assert model.count_params() == trainable + 2 * bn_channels == 41_631_008  # + BN moving mean and variance
    # The official count: FrozenBatchNorm holds no parameters, conv1 and layer1 are frozen.
    first_stage = (64 * 64 + 9 * 64 * 64 + 64 * 256 + 64 * 256) + 2 * (256 * 64 + 9 * 64 * 64 + 64 * 256)
    stem_and_first_stage = 7 * 7 * 3 * 64 + first_stage
    assert stem_and_first_stage == 222_400
    assert trainable - 2 * bn_channels - stem_and_first_stage == OFFICIAL_DETR_R50
    assert round(OFFICIAL_DETR_R50 / 1e6) == 41


def test_keras_round_trip_keeps_outputs(keras_round_trip):
    model = _tiny()
    pixels = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    loaded = keras_round_trip(model)
    for key, value in model(pixels).items():
        np.testing.assert_allclose(loaded(pixels)[key], value, atol=1e-5)
