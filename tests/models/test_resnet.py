"""ResNet-18/34/50/101/152 (notes-002-part1 S31, notes-003-004 B5) and the notes' residual MNIST net."""

import keras
import numpy as np
import pytest

from tfmodels.models import resnet
from tfmodels.models.keras_applications import copy_weights

# (count_params(), trainable) at 224x224x3 and 1000 classes. ResNet-50/101/152: keras.applications'
# counts. ResNet-18/34: the published trainable counts (torchvision's parameters, which leave out
# the BN moving statistics); Keras also counts those, 2 per BN channel: 2·4,800 and 2·8,512.
COUNTS = {
    "resnet18": (11_699_112, 11_689_512),
    "resnet34": (21_814_696, 21_797_672),
    "resnet50": (25_636_712, 25_583_592),
    "resnet101": (44_707_176, 44_601_832),
    "resnet152": (60_419_944, 60_268_520),
}
SLOW = {"resnet101", "resnet152"}  # about 5 s each to build on a loaded 2-core machine


def _depth_params(name):
    return pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name


def _raw_pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _tiny_resnet18():
    return resnet.build_resnet18(num_classes=10, input_shape=(32, 32, 3), width=8)


@pytest.mark.parametrize("name", [_depth_params(n) for n in COUNTS])
def test_parameter_counts_and_depth(name):
    model = getattr(resnet, f"build_{name}")()
    total, trainable = COUNTS[name]
    assert model.count_params() == total
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    # The name is the depth: every conv except the 1x1 projection shortcuts, plus the FC (S31: 17 + 1).
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len([c for c in convs if not c.name.endswith("_0_conv")]) + 1 == int(name.removeprefix("resnet"))
    assert model.output.shape == (None, 1000)


@pytest.mark.parametrize(
    "name, application",
    [
        ("resnet50", keras.applications.ResNet50),
        pytest.param("resnet101", keras.applications.ResNet101, marks=pytest.mark.slow),
        pytest.param("resnet152", keras.applications.ResNet152, marks=pytest.mark.slow),
    ],
)
def test_matches_keras_applications_with_copied_weights(name, application, randomize_batch_norm):
    keras.utils.set_random_seed(0)
    reference = application(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    randomize_batch_norm(reference, np.random.default_rng(1))
    ours = getattr(resnet, f"build_{name}")(input_shape=(64, 64, 3))
    copy_weights(reference, ours)
    raw = _raw_pixels((2, 64, 64, 3))
    expected = reference(keras.applications.resnet.preprocess_input(raw.copy())).numpy()
    np.testing.assert_allclose(ours(raw).numpy(), expected, atol=1e-4)
    assert ours.layers[1].name == "preprocess"


def test_basic_block_strides_only_its_first_conv_and_projects_the_shortcut():
    """The notes' block (L1925-1943) strides both convs and has no projection; ours must not."""
    inputs = keras.Input((56, 56, 64))
    kept = keras.Model(inputs, resnet.basic_block(inputs, 64, strides=1, name="same"))
    halved = keras.Model(inputs, resnet.basic_block(inputs, 128, strides=2, name="down"))
    assert kept.output.shape == (None, 56, 56, 64) and halved.output.shape == (None, 28, 28, 128)
    assert not any(layer.name == "same_0_conv" for layer in kept.layers)
    assert halved.get_layer("down_0_conv").strides == (2, 2)
    assert halved.get_layer("down_1_conv").strides == (2, 2) and halved.get_layer("down_2_conv").strides == (1, 1)


@pytest.mark.parametrize(
    "block, filters, last_bn",
    [(resnet.basic_block, 8, "b_2_bn"), (resnet.bottleneck_block, 2, "b_3_bn")],
)
def test_block_with_zero_last_gamma_is_relu_of_its_input(block, filters, last_bn):
    """B5's "self-closing shortcut": with the last BN's gamma and beta at zero, block(x) = ReLU(x)."""
    inputs = keras.Input((6, 6, 8))
    model = keras.Model(inputs, block(inputs, filters, strides=1, name="b"))
    bn = model.get_layer(last_bn)
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([np.zeros_like(gamma), np.zeros_like(beta), mean, variance])
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), np.maximum(x, 0), atol=1e-6)


def test_tiny_resnet_shapes():
    logits = _tiny_resnet18()
    features = resnet.build_resnet50(input_shape=(64, 64, 3), include_top=False, width=8)
    assert logits(_raw_pixels((3, 32, 32, 3))).shape == (3, 10)
    assert logits.get_layer("conv3_block1_out").output.shape == (None, 4, 4, 16)
    assert features.output.shape == (None, 2, 2, 4 * 8 * 8)  # bottleneck: 4 × width·8 channels


def test_weights_argument_errors():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        resnet.build_resnet18(weights="imagenet")
    with pytest.raises(ValueError, match="width=64"):
        resnet.build_resnet50(weights="imagenet", width=8)
    with pytest.raises(ValueError, match="None or 'imagenet'"):
        resnet.build_resnet34(weights="resnet34.h5")
    with pytest.raises(ValueError, match="no published weights"):
        resnet.build_resnet_mnist(weights="imagenet")


def test_resnet_mnist_layout_count_and_normalisation():
    model = resnet.build_resnet_mnist()
    # 1·16·25+16 + 2·(16·16·9+16) + 16·32·25+32 + 2·(32·32·9+32) + 512·10+10 (notes-002-part2 §31).
    assert model.count_params() == 41_514
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["pool1"] == (12, 12, 16) and shapes["rblock1_out"] == (12, 12, 16)
    assert shapes["pool2"] == (4, 4, 32) and shapes["flatten"] == (512,)
    normalise = model.get_layer("preprocess")
    np.testing.assert_allclose(
        normalise(np.array([[0.0], [255.0]], "float32")).numpy().ravel(), [-0.4242, 2.8215], atol=1e-4
    )  # notes S16: (0 - 0.1307)/0.3081 and (1 - 0.1307)/0.3081
    assert model(_raw_pixels((3, 28, 28, 1))).shape == (3, 10)


def test_mnist_residual_block_with_zero_second_conv_is_relu_of_its_input():
    inputs = keras.Input((5, 5, 4))
    model = keras.Model(inputs, resnet.mnist_residual_block(inputs, name="r"))
    conv2 = model.get_layer("r_conv2")
    conv2.set_weights([np.zeros_like(w) for w in conv2.get_weights()])
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), np.maximum(x, 0), atol=1e-6)


# Tracing the tiny ResNet-18's training step takes 20-40 s on a busy 2-core machine: slow.
@pytest.mark.parametrize(
    "build, shape",
    [pytest.param(_tiny_resnet18, (8, 32, 32, 3), marks=pytest.mark.slow), (resnet.build_resnet_mnist, (8, 28, 28, 1))],
    ids=["resnet18_tiny", "resnet_mnist"],
)
def test_one_tiny_batch_overfits_and_round_trips(build, shape, keras_round_trip):
    keras.utils.set_random_seed(0)
    x, y = _raw_pixels(shape), np.arange(shape[0]) % 10
    model = build()
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(x, y, epochs=40, batch_size=shape[0], verbose=0).history["loss"]
    assert losses[-1] < 0.25 * losses[0]
    np.testing.assert_allclose(keras_round_trip(model).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_tiny_resnet_round_trips_through_keras_file(keras_round_trip):
    keras.utils.set_random_seed(0)
    model, x = _tiny_resnet18(), _raw_pixels((4, 32, 32, 3))
    np.testing.assert_allclose(keras_round_trip(model).predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
