"""Swin Transformer builders (notes-001 §27; Liu et al. 2021): stages, counts, shifts, training, saving."""

import keras
import keras_hub
import numpy as np
import pytest

from tfmodels.models import swin

SWIN_T = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)
SWIN_T_BACKBONE = 27_519_354  # keras-hub's swin_tiny_patch4_window7_224 "params"
SWIN_T_CLASSIFIER = 28_288_354  # the paper's / timm's Swin-T with its 1000-class head
TWO_STAGES = dict(patch_size=2, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4)  # maps 8², 4²
SMALL = dict(patch_size=4, embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=2)


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def test_four_stages_at_quarter_to_thirty_second_resolution_with_doubling_channels():
    model = swin.build_swin(10, (64, 64, 3), **SMALL)
    stage_outputs = [model.get_layer(f"stage{i}_block1").output.shape for i in range(4)]
    assert stage_outputs == [(None, 16, 16, 8), (None, 8, 8, 16), (None, 4, 4, 32), (None, 2, 2, 64)]  # H/4 .. H/32
    assert model.output.shape == (None, 10)


def test_even_blocks_use_windows_odd_blocks_shifted_windows():
    model = swin.swin_tiny_cpu(num_classes=10, input_shape=(32, 32, 3))
    for stage, depth in enumerate((2, 2)):
        shifts = [model.get_layer(f"stage{stage}_block{j}").effective_shift_size for j in range(depth)]
        assert shifts == [0, 4 // 2]


def test_last_stage_window_clips_to_the_map_and_stops_shifting():
    model = swin.build_swin(10, (64, 64, 3), **{**SMALL, "window_size": 4})  # stage maps 16, 8, 4, 2
    blocks = [model.get_layer(f"stage{i}_block1") for i in range(4)]
    assert [(b.effective_window_size, b.effective_shift_size) for b in blocks] == [(4, 2), (4, 2), (4, 0), (2, 0)]


def _count_pair(image_size, config):
    ours = swin.build_swin(input_shape=(image_size, image_size, 3), include_top=False, **config)
    hub = keras_hub.models.SwinTransformerBackbone(image_shape=(image_size, image_size, 3), **config)
    return ours.count_params(), hub.count_params()


def test_backbone_count_equals_keras_hub_live_small():
    ours, hub = _count_pair(16, TWO_STAGES)
    assert ours == hub


@pytest.mark.slow
def test_four_stage_backbone_count_equals_keras_hub_live():
    ours, hub = _count_pair(64, SMALL)
    assert ours == hub


@pytest.mark.slow
def test_swin_t_counts_live_against_keras_hub_and_the_paper():
    hub = keras_hub.models.SwinTransformerBackbone(image_shape=(224, 224, 3), **SWIN_T)  # ~45 s on 2 cores
    assert hub.count_params() == SWIN_T_BACKBONE
    assert swin.swin_tiny(include_top=False).count_params() == SWIN_T_BACKBONE
    classifier = swin.swin_tiny()
    assert classifier.count_params() == SWIN_T_CLASSIFIER == SWIN_T_BACKBONE + 768 * 1000 + 1000
    assert classifier.get_layer("stage3_block1").output.shape == (None, 7, 7, 768)


def test_include_top_false_gives_the_normalised_last_map():
    features = swin.build_swin(input_shape=(16, 16, 3), include_top=False, **TWO_STAGES)
    assert features.output.shape == (None, 4, 4, 16)
    assert features.layers[-1].name == "norm"
    assert not any(isinstance(layer, keras.layers.Dense) for layer in features.layers)


def test_normalises_raw_pixels_with_imagenet_mean_and_std():
    model = swin.swin_tiny_cpu(num_classes=4)
    mean_pixel = np.array([0.485, 0.456, 0.406], "float32") * 255
    out = model.get_layer("preprocess")(np.broadcast_to(mean_pixel, (1, 2, 2, 3)))
    np.testing.assert_allclose(out, 0.0, atol=1e-5)


def test_imagenet_weights_need_a_headless_model_and_tiny_has_none():
    with pytest.raises(ValueError, match="include_top=False"):
        swin.swin_tiny(weights="imagenet")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        swin.swin_tiny_cpu(weights="imagenet")
    with pytest.raises(ValueError, match="weights must be"):
        swin.swin_tiny_cpu(weights="model.h5")


def test_keras_file_round_trip(tmp_path):
    model = swin.build_swin(4, (16, 16, 3), drop_path_rate=0.1, **TWO_STAGES)
    path = tmp_path / "swin.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = _pixels((2, 16, 16, 3))
    np.testing.assert_allclose(restored(x), model(x), rtol=1e-5, atol=1e-5)
    assert restored.get_layer("stage1_block1").get_config() == model.get_layer("stage1_block1").get_config()


@pytest.mark.slow  # ~30 s on the loaded 2-core machine, almost all of it tracing the train step
def test_tiny_batch_overfits():
    keras.utils.set_random_seed(0)
    model = swin.build_swin(4, (16, 16, 3), drop_path_rate=0.0, **TWO_STAGES)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # SGD: Keras' Adam takes tens of seconds to trace for this many variables on 2 cores
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), loss, jit_compile=False)
    x, y = _pixels((8, 16, 16, 3)), np.arange(8) % 4
    first = float(loss(y, model(x)))
    model.fit(np.tile(x, (40, 1, 1, 1)), np.tile(y, 40), batch_size=8, epochs=1, shuffle=False, verbose=0)
    logits = model(x)
    assert float(loss(y, logits)) < 0.1 * first
    assert (np.argmax(logits, -1) == y).all()
