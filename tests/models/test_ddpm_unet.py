"""The DDPM U-Net: closed-form parameter counts (paper: 35.7M), shapes, time dependence, sizes."""

import doctest

import keras
import numpy as np
import pytest

from tfmodels.models import ddpm_unet as module
from tfmodels.models.ddpm_unet import PAPER_CONFIG, PAPER_PARAMETERS, TINY_CONFIG, build_ddpm_unet


def test_docstring_examples():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _expected_params(image_size, channels, base_channels, channel_multipliers, num_res_blocks, attention_resolutions, **_):
    """Per-layer count of Ho et al.'s U-Net (diffusion_tf/models/unet.py), written from its layers."""
    def conv(ci, co, k=3):
        return k * k * ci * co + co

    def res(ci, co):
        return 2 * ci + conv(ci, co) + (temb * co + co) + 2 * co + conv(co, co) + (ci * co + co if ci != co else 0)

    def attn(c):
        return 2 * c + 4 * (c * c + c)

    ch, temb = base_channels, 4 * base_channels
    total = (ch * temb + temb) + (temb * temb + temb) + conv(channels, ch)
    skips, c, side = [ch], ch, image_size
    for level, m in enumerate(channel_multipliers):
        for _ in range(num_res_blocks):
            total += res(c, ch * m) + (attn(ch * m) if side in attention_resolutions else 0)
            c = ch * m
            skips.append(c)
        if level != len(channel_multipliers) - 1:
            total += conv(c, c)
            skips.append(c)
            side //= 2
    total += res(c, c) + attn(c) + res(c, c)
    for level in reversed(range(len(channel_multipliers))):
        for _ in range(num_res_blocks + 1):
            total += res(c + skips.pop(), ch * channel_multipliers[level])
            c = ch * channel_multipliers[level]
            total += attn(c) if side in attention_resolutions else 0
        if level:
            total += conv(c, c)
            side *= 2
    return total + 2 * c + conv(c, channels)


def test_paper_count_formula_is_the_papers_35_7_million():
    assert abs(_expected_params(**PAPER_CONFIG) - PAPER_PARAMETERS) < 0.1e6


@pytest.mark.slow
def test_paper_network_has_the_papers_parameter_count():
    model = build_ddpm_unet(**PAPER_CONFIG)
    assert model.count_params() == _expected_params(**PAPER_CONFIG) == 35_746_307
    assert abs(model.count_params() - PAPER_PARAMETERS) < 0.1e6


@pytest.fixture(scope="module")
def tiny():
    model = build_ddpm_unet(**TINY_CONFIG)
    rng = np.random.default_rng(0)
    for layer in ("conv_out", "down0_block0", "up0_block0"):  # the ≈0-initialised kernels hide t; randomise
        for weight in model.get_layer(layer).weights:
            weight.assign(rng.normal(0, 0.1, weight.shape))
    return model


def test_tiny_count_shapes_and_skips(tiny):
    assert tiny.count_params() == _expected_params(**TINY_CONFIG)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
    out = tiny({"x_t": x, "t": np.array([0, 99], np.int32)})
    assert out.shape == (2, 28, 28, 1) and out.dtype == "float32"
    concats = [layer for layer in tiny.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concats) == len(TINY_CONFIG["channel_multipliers"]) * (TINY_CONFIG["num_res_blocks"] + 1)
    assert tiny.get_layer("middle_block0").output.shape[1:3] == (14, 14)


def test_time_embedding_matters_and_weights_are_shared_across_steps(tiny):
    x = np.repeat(np.random.default_rng(2).uniform(-1, 1, (1, 28, 28, 1)).astype(np.float32), 3, axis=0)
    count = len(tiny.weights)
    out = tiny({"x_t": x, "t": np.array([0, 1, 500], np.int32)}).numpy()
    assert np.abs(out[0] - out[1]).max() > 1e-4 and np.abs(out[0] - out[2]).max() > 1e-4
    assert len(tiny.weights) == count


def test_keras_round_trip(tiny, tmp_path):
    path = tmp_path / "unet.keras"
    tiny.save(path)
    loaded = keras.saving.load_model(path)
    inputs = {"x_t": np.ones((1, 28, 28, 1), np.float32), "t": np.array([7], np.int32)}
    np.testing.assert_allclose(loaded(inputs).numpy(), tiny(inputs).numpy(), atol=1e-6)


def test_sizes_that_do_not_halve_evenly_raise():
    with pytest.raises(ValueError, match="divisible"):
        build_ddpm_unet(28, 1, base_channels=8, channel_multipliers=(1, 1, 1, 1), attention_resolutions=(), norm_groups=4)
    with pytest.raises(ValueError, match="attention_resolutions"):
        build_ddpm_unet(28, 1, base_channels=8, channel_multipliers=(1, 2), attention_resolutions=(16,), norm_groups=4)
    with pytest.raises(ValueError, match="groups"):
        build_ddpm_unet(28, 1, base_channels=16, channel_multipliers=(1,), attention_resolutions=())


def test_mnist_three_levels_reach_7x7():
    model = build_ddpm_unet(28, 1, base_channels=8, channel_multipliers=(1, 2, 2), num_res_blocks=1,
                            attention_resolutions=(7,), dropout=0.0, norm_groups=4)
    assert model.get_layer("middle_block0").output.shape[1:3] == (7, 7)
    assert model.count_params() == _expected_params(28, 1, 8, (1, 2, 2), 1, (7,))
