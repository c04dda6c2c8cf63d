"""GoogLeNet / Inception v1 (notes-003-004 B3, notes-001 §14)."""

import keras
import numpy as np
import pytest

from tfmodels.layers.local_response_normalization import LocalResponseNormalization
from tfmodels.models.googlenet import (
    INCEPTION_WIDTHS,
    build_googlenet,
    inception_block,
    inference_model,
)


def _conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def _closed_form_count(num_classes=1000, aux=True):
    """Table 1 + Section 5 of the paper, conv and FC layers with biases, 224x224 input."""
    total = _conv(7, 3, 64) + _conv(1, 64, 64) + _conv(3, 64, 192)
    channels, aux_inputs = 192, {}
    for block, (c1, (r3, c3), (r5, c5), pool_proj) in INCEPTION_WIDTHS.items():
        total += _conv(1, channels, c1) + _conv(1, channels, r3) + _conv(3, r3, c3)
        total += _conv(1, channels, r5) + _conv(5, r5, c5) + _conv(1, channels, pool_proj)
        channels = c1 + c3 + c5 + pool_proj
        aux_inputs[block] = channels
    total += channels * num_classes + num_classes
    if aux:  # 14x14 -> 5x5/3 average pool -> 4x4x128 -> 1024 -> classes, after 4a and 4d
        for block in ("4a", "4d"):
            total += _conv(1, aux_inputs[block], 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * num_classes + num_classes)
    return total


def test_inception_block_concatenates_its_four_paths_and_keeps_height_and_width():
    inputs = keras.Input((28, 28, 192))
    outputs = inception_block(inputs, 64, (96, 128), (16, 32), 32, "inception_3a")
    assert outputs.shape == (None, 28, 28, 64 + 128 + 32 + 32)
    block = keras.Model(inputs, outputs)
    kernels = {layer.name: layer.kernel.shape for layer in block.layers if isinstance(layer, keras.layers.Conv2D)}
    assert kernels == {
        "inception_3a_1x1": (1, 1, 192, 64),
        "inception_3a_3x3_reduce": (1, 1, 192, 96),
        "inception_3a_3x3": (3, 3, 96, 128),
        "inception_3a_5x5_reduce": (1, 1, 192, 16),
        "inception_3a_5x5": (5, 5, 16, 32),
        "inception_3a_pool_proj": (1, 1, 192, 32),
    }
    assert isinstance(block.get_layer("inception_3a_pool"), keras.layers.MaxPooling2D)


@pytest.fixture(scope="module")
def paper_model():
    return build_googlenet()


def test_parameter_counts_at_the_paper_configuration(paper_model):
    assert _closed_form_count(aux=True) == paper_model.count_params() == 13_378_280
    assert _closed_form_count(aux=False) == build_googlenet(aux_logits=False).count_params() == 6_998_552


def test_counts_differ_from_torchvision_only_by_its_batch_norm_and_3x3_third_path(paper_model):
    """torchvision's googlenet: 13,004,888 with aux heads, 6,624,904 without."""
    torchvision_count, aux_count = 0, 0
    for layer in paper_model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width, c_in, c_out = layer.kernel.shape
            kernel_area = 9 if layer.name.endswith("_5x5") else height * width
            params = kernel_area * c_in * c_out + 2 * c_out  # conv without bias + BN gamma, beta
        elif isinstance(layer, keras.layers.Dense):
            params = layer.count_params()
        else:
            continue
        torchvision_count += params
        aux_count += params if layer.name.startswith("aux") else 0
    assert torchvision_count == 13_004_888
    assert torchvision_count - aux_count == 6_624_904


def test_paper_structure_nine_blocks_feature_map_sizes_and_gap_before_the_classifier(paper_model):
    blocks = [layer for layer in paper_model.layers if layer.name in {f"inception_{b}" for b in INCEPTION_WIDTHS}]
    assert len(blocks) == 9
    assert [block.output.shape[1:] for block in blocks] == [
        (28, 28, 256), (28, 28, 480),
        (14, 14, 512), (14, 14, 512), (14, 14, 512), (14, 14, 528), (14, 14, 832),
        (7, 7, 832), (7, 7, 1024),
    ]  # fmt: skip
    assert paper_model.get_layer("aux1_pool").output.shape[1:] == (4, 4, 512)
    assert paper_model.get_layer("aux2_pool").output.shape[1:] == (4, 4, 528)
    names = [layer.name for layer in paper_model.layers]
    assert names.index("pool5_gap") < names.index("pool5_dropout") < names.index("logits")
    assert paper_model.get_layer("pool5_dropout").rate == 0.4 and paper_model.get_layer("aux1_dropout").rate == 0.7
    assert sum(isinstance(layer, LocalResponseNormalization) for layer in paper_model.layers) == 2
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in paper_model.layers)


def test_stem_local_response_normalization_follows_the_caffe_formula(paper_model):
    x = np.random.default_rng(2).normal(0, 30, (1, 2, 2, 7)).astype("float32")
    padded = np.pad(x**2, [(0, 0), (0, 0), (0, 0), (2, 2)])
    window_sums = np.stack([padded[..., c : c + 5].sum(-1) for c in range(7)], axis=-1)
    expected = x / (1 + 1e-4 / 5 * window_sums) ** 0.75  # size 5, alpha 1e-4, beta 0.75
    for name in ("pool1_norm1", "conv2_norm2"):
        np.testing.assert_allclose(paper_model.get_layer(name)(x), expected, rtol=1e-5)


def test_preprocessing_subtracts_the_imagenet_rgb_mean():
    model = build_googlenet(include_top=False, input_shape=(32, 32, 3), width_divisor=8)
    preprocess = model.get_layer("preprocess")
    pixels = np.array([[[[123.68, 116.779, 103.939], [255.0, 0.0, 10.0]]]], "float32")
    np.testing.assert_allclose(preprocess(pixels), [[[[0, 0, 0], [131.32, -116.779, -93.939]]]], atol=1e-4)


@pytest.fixture(scope="module")
def tiny_model():
    return build_googlenet(10, (32, 32, 3), width_divisor=8)


@pytest.fixture(scope="module")
def tiny_images():
    return np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")


def test_output_shapes_without_top_and_with_and_without_aux_heads(tiny_model, tiny_images):
    outputs = tiny_model(tiny_images)
    assert sorted(outputs) == ["aux1", "aux2", "logits"]
    assert all(tuple(output.shape) == (8, 10) for output in outputs.values())
    images = tiny_images[:2, :, :, :].repeat(2, axis=1).repeat(2, axis=2)  # 64x64
    assert build_googlenet(7, (64, 64, 3), aux_logits=False, width_divisor=4)(images).shape == (2, 7)
    assert build_googlenet(input_shape=(64, 64, 3), include_top=False, width_divisor=4)(images).shape == (2, 2, 2, 256)


def test_inference_model_shares_weights_has_no_aux_heads_and_matches_the_main_output(tiny_model, tiny_images):
    serving = inference_model(tiny_model)
    assert not [layer.name for layer in serving.layers if layer.name.startswith("aux")]
    assert serving.count_params() == build_googlenet(10, (32, 32, 3), aux_logits=False, width_divisor=8).count_params()
    assert serving.get_layer("logits") is tiny_model.get_layer("logits")
    expected = tiny_model(tiny_images, training=False)["logits"]
    np.testing.assert_array_equal(serving(tiny_images, training=False), expected)
    with pytest.raises(ValueError, match="no 'logits' layer"):
        inference_model(build_googlenet(input_shape=(32, 32, 3), include_top=False, width_divisor=8))


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match="keras.applications has no GoogLeNet"):
        build_googlenet(weights="imagenet")
    with pytest.raises(ValueError, match="positive integer"):
        build_googlenet(width_divisor=0)


def test_keras_file_round_trip_gives_identical_outputs(tiny_model, tiny_images, keras_round_trip):
    restored = keras_round_trip(tiny_model)
    expected = tiny_model(tiny_images, training=False)
    for name, output in restored(tiny_images, training=False).items():
        np.testing.assert_array_equal(output, expected[name])


@pytest.mark.slow  # tracing the training step of the 22-layer net takes ~40 s on a busy 2-core CPU
def test_tiny_variant_overfits_one_batch_with_auxiliary_losses(tiny_images):
    keras.utils.set_random_seed(0)
    labels = np.arange(8) % 10
    model = build_googlenet(10, (32, 32, 3), width_divisor=8)
    outputs = ("logits", "aux1", "aux2")
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        keras.optimizers.Adam(1e-3),
        loss={name: cross_entropy for name in outputs},
        loss_weights={"logits": 1.0, "aux1": 0.3, "aux2": 0.3},
        jit_compile=False,
    )

    def main_loss():  # in inference mode: the training losses jump with dropout 0.4 and 0.7
        return float(cross_entropy(labels, model(tiny_images, training=False)["logits"]))

    initial = main_loss()
    history = model.fit(tiny_images, {name: labels for name in outputs}, epochs=80, verbose=0).history
    assert main_loss() < 0.25 * initial
    assert min(history["aux1_loss"][-10:]) < 0.5 * history["aux1_loss"][0]
    assert min(history["aux2_loss"][-10:]) < 0.5 * history["aux2_loss"][0]
