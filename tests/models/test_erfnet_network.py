"""ERFNet (notes-003-004.md A4; Romera et al. 2018, Eromera/erfnet_pytorch): count, layout, shapes."""

import doctest

import keras
import numpy as np
import pytest

from tfmodels.models import erfnet
from tfmodels.models.erfnet import build_erfnet

TINY = {"width_multiplier": 0.25, "encoder_blocks": 1, "dilations": (2,), "dilation_repeats": 1, "decoder_blocks": 1}


def _raw_pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _erfnet_counts(num_classes, widths=(16, 64, 128), encoder_blocks=5, dilated_blocks=8, decoder_blocks=2):
    """(trainable, BN channels), block by block as the reference code builds them.

    Convs carry biases; a BN has 2 trainable weights per channel (and 2 moving statistics).
    """
    w1, w2, w3 = widths
    trainable = bn_channels = 0

    def downsampler(c_in, c_out):  # 3x3/2 conv to c_out - c_in, concat the pooled input, BN
        return 9 * c_in * (c_out - c_in) + (c_out - c_in) + 2 * c_out, c_out

    def non_bt_1d(w):  # the seed's 12 w^2 + 4 w (seed 003 L57), plus two BNs
        return 12 * w * w + 4 * w + 2 * 2 * w, 2 * w

    def upsampler(c_in, c_out):  # 3x3/2 transposed conv, BN
        return 9 * c_in * c_out + c_out + 2 * c_out, c_out

    blocks = [downsampler(3, w1), downsampler(w1, w2)] + [non_bt_1d(w2)] * encoder_blocks
    blocks += [downsampler(w2, w3)] + [non_bt_1d(w3)] * dilated_blocks
    blocks += [upsampler(w3, w2)] + [non_bt_1d(w2)] * decoder_blocks
    blocks += [upsampler(w2, w1)] + [non_bt_1d(w1)] * decoder_blocks
    for params, channels in blocks:
        trainable += params
        bn_channels += channels
    trainable += 2 * 2 * w1 * num_classes + num_classes  # 2x2/2 transposed conv to the classes
    return trainable, bn_channels


def test_docstring_examples():
    result = doctest.testmod(erfnet)
    assert result.attempted >= 4 and result.failed == 0


def test_paper_parameter_count():
    """20 classes: 2,064,256 trainable, 2,070,848 with the BN statistics: the quoted ~2.07M."""
    trainable, bn_channels = _erfnet_counts(20)
    assert trainable == 2_064_256 and trainable + 2 * bn_channels == 2_070_848
    model = build_erfnet(20)
    assert _trainable(model) == trainable
    assert model.count_params() == trainable + 2 * bn_channels


@pytest.mark.parametrize(
    ("num_classes", "kwargs", "config"),
    [(3, TINY, ((4, 16, 32), 1, 1, 1)), (11, {"width_multiplier": 0.5}, ((8, 32, 64), 5, 8, 2))],
)
def test_scaled_parameter_counts(num_classes, kwargs, config):
    widths, encoder_blocks, dilated_blocks, decoder_blocks = config
    trainable, bn_channels = _erfnet_counts(num_classes, widths, encoder_blocks, dilated_blocks, decoder_blocks)
    model = build_erfnet(num_classes, **kwargs)
    assert (_trainable(model), model.count_params()) == (trainable, trainable + 2 * bn_channels)


def test_reference_block_sequence():
    """Eromera's layout: dilations 1 x5, (2, 4, 8, 16) x2, then 1 x4 in the decoder; dropout 0.03 / 0.3."""
    model = build_erfnet(20)
    second_pairs = [layer for layer in model.layers if layer.name.endswith("conv3x1_2")]
    assert [layer.dilation_rate[0] for layer in second_pairs] == [1] * 5 + [2, 4, 8, 16] * 2 + [1] * 4
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.SpatialDropout2D)]
    assert dropouts == [0.03] * 5 + [0.3] * 8
    stages = ("down1_relu", "down2_relu", "down3_relu", "up1_relu", "up2_relu")
    widths = [model.get_layer(name).output.shape[-1] for name in stages]
    assert widths == [16, 64, 128, 64, 16]
    assert model.get_layer("logits").kernel.shape == (2, 2, 20, 16)


@pytest.mark.parametrize("size", [(32, 64), (40, 56)])
def test_logits_at_input_resolution(size):
    model = build_erfnet(3, **TINY)
    features = keras.Model(model.input, model.get_layer("down3_relu").output)
    pixels = _raw_pixels((2, *size, 3))
    assert features(pixels).shape == (2, size[0] // 8, size[1] // 8, 32)  # the encoder's stride 8
    logits = model(pixels)
    assert logits.shape == (2, *size, 3) and logits.dtype == "float32"
    assert model.layers[-1].dtype_policy.name == "float32"  # float32 logits under mixed precision
    assert model.input.name == "images"


def test_reference_preprocessing_is_pixels_over_255():
    """The reference feeds ToTensor() images: 0..255 -> 0..1, no mean subtraction."""
    model = build_erfnet(3, **TINY)
    preprocess = keras.Model(model.input, model.get_layer("preprocess").output)
    np.testing.assert_allclose(preprocess(np.full((1, 8, 8, 3), 51.0, "float32")).numpy(), 0.2, rtol=1e-6)


def test_widths_must_grow():
    with pytest.raises(ValueError, match="must add channels"):
        build_erfnet(3, width_multiplier=0.125)  # (2, 8, 16): the first downsampler would shrink 3 -> 2


@pytest.mark.slow  # ~15 s on a shared 2-core machine, mostly tracing the train step
def test_learns_a_stride_8_label_map(train_on_one_batch):
    """The encoder works at stride 8: ERFNet learns 8x8 blocks labelled by their brightness tercile."""
    keras.utils.set_random_seed(0)
    blocks = np.random.default_rng(4).choice([30.0, 128.0, 225.0], (2, 4, 4, 1)).astype("float32")
    images = np.kron(blocks, np.ones((1, 8, 8, 3), "float32"))
    labels = np.digitize(images[..., 0], [80, 180])
    initial, final = train_on_one_batch(build_erfnet(3, **TINY), images, labels, 1e-2, 10, True)
    assert final < 0.8 * initial


def test_keras_round_trip_gives_the_same_logits(keras_round_trip):
    model = build_erfnet(3, **TINY)
    x = _raw_pixels((1, 32, 48, 3))
    np.testing.assert_allclose(keras_round_trip(model)(x).numpy(), model(x).numpy(), atol=1e-5)


def test_one_decoder_stage_classifies_at_stride_4_and_upsamples_bilinearly():
    """The ``default`` preset's decoder: up1 + its blocks, a 1x1 classifier at stride 4, bilinear x4."""
    model = build_erfnet(11, width_multiplier=0.5, decoder_stages=1)
    names = {layer.name for layer in model.layers}
    assert "up1_relu" in names and not any(name.startswith(("up2", "dec2")) for name in names)
    assert model.get_layer("logits").kernel.shape == (1, 1, 32, 11)
    x = _raw_pixels((1, 32, 48, 3))
    stride4 = keras.Model(model.input, model.get_layer("logits").output)(x)
    assert stride4.shape == (1, 8, 12, 11)
    import tensorflow as tf

    expected = tf.image.resize(stride4, (32, 48), method="bilinear")  # half-pixel centres
    np.testing.assert_allclose(model(x), expected, atol=1e-5)
    two_stages = build_erfnet(11, width_multiplier=0.5)
    removed = sum(int(np.prod(w.shape)) for layer in two_stages.layers if layer.name.startswith(("up2", "dec2", "logits"))
                  for w in layer.trainable_weights)
    assert _trainable(model) == _trainable(two_stages) - removed + 32 * 11 + 11
    with pytest.raises(ValueError, match="decoder_stages must be 1 or 2"):
        build_erfnet(11, decoder_stages=3)
