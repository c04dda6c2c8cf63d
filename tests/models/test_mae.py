"""MAE (notes-001.md §26; He et al. 2022): masked encoder, decoder, masked-patch loss, training, hand-over to ViT.

Expected values come from the paper's formulas written directly in NumPy, from closed-form
parameter counts, and from ``build_vit`` (the model the encoder is handed to).
"""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import mae as mae_module
from tfmodels.models.mae import (
    MaskedAutoencoder,
    build_mae,
    encoder_weights_to_vit,
    mae_config,
)
from tfmodels.models.vit import build_vit

# A small MAE: 16² images, patch 4 -> 16 patches, 4 visible at 75%.
SMALL = dict(image_size=16, patch_size=4, hidden_dim=16, num_layers=2, num_heads=2, mlp_dim=32,
             decoder_dim=8, decoder_layers=1, decoder_heads=2, decoder_mlp_dim=16)


@pytest.fixture(scope="module")
def small_mae():
    return build_mae(**SMALL, mask_ratio=0.75, seed=0)


def _images(batch, size=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _numpy_patches(images, p):
    """Patches by slicing, grid row-major, each flattened (row, column, channel) (paper's patchify)."""
    b, h, w, _ = images.shape
    return np.stack([images[:, i:i + p, j:j + p].reshape(b, -1) for i in range(0, h, p) for j in range(0, w, p)], 1)


def _numpy_loss(images, predictions, mask, p, norm_pix_loss):
    """The paper's forward_loss: per-patch MSE against (normalised) targets, mean over masked patches."""
    target = _numpy_patches(images / 127.5 - 1.0, p).astype("float64")  # ViT's "tf" normalisation
    if norm_pix_loss:
        mean = target.mean(-1, keepdims=True)
        var = target.var(-1, ddof=1, keepdims=True)  # torch's Tensor.var is unbiased
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((predictions - target) ** 2).mean(-1)
    return (per_patch * mask).sum() / mask.sum()


def _decoder_parameters(hidden, num_patches, patch_values, width, layers, mlp):
    """Closed form: decoder_embed, mask token, position table, pre-LN blocks, final LN, prediction."""
    block = 4 * (width * width + width) + 2 * 2 * width + (width * mlp + mlp) + (mlp * width + width)
    return (hidden * width + width) + width + num_patches * width + layers * block + 2 * width + (width * patch_values + patch_values)


def test_docstring_examples():
    result = doctest.testmod(mae_module)
    assert result.attempted >= 10 and result.failed == 0


@pytest.mark.parametrize("image_size, patch_size, visible", [(224, 16, 49), (32, 4, 16)])
def test_the_encoder_sees_only_the_visible_patches(image_size, patch_size, visible):
    """§26: 196 patches -> 49 visible (+ class token) at 224/16; 64 -> 16 at 32/4."""
    model = build_mae(image_size, patch_size, 8, 1, 2, 8, 8, 1, 2, 8, mask_ratio=0.75, seed=1)
    seen = {}
    for block in (model.get_layer("encoder_block_0"), model.get_layer("decoder_block_0")):
        original = block.call

        def recording(x, *args, _name=block.name, _call=original, **kwargs):
            seen[_name] = tuple(x.shape)
            return _call(x, *args, **kwargs)

        block.call = recording
    out = model(_images(2, image_size))
    num_patches = (image_size // patch_size) ** 2
    assert seen == {"encoder_block_0": (2, 1 + visible, 8), "decoder_block_0": (2, 1 + num_patches, 8)}
    assert tuple(out["predictions"].shape) == (2, num_patches, patch_size * patch_size * 3)
    np.testing.assert_array_equal(out["mask"].numpy().sum(axis=1), [num_patches - visible] * 2)


def test_masks_differ_per_sample_and_repeat_with_the_seed(small_mae):
    images = _images(6)
    mask = small_mae(images)["mask"].numpy()
    assert len({row.tobytes() for row in mask}) == 6
    twins = [build_mae(**SMALL, seed=7)(images)["mask"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(*twins)
    assert not np.array_equal(twins[0], build_mae(**SMALL, seed=8)(images)["mask"].numpy())


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_loss_equals_the_numpy_formula(norm_pix_loss):
    model = build_mae(**SMALL, norm_pix_loss=norm_pix_loss, seed=2)
    images = _images(3, seed=1)
    out = model(images)
    predictions, mask = out["predictions"].numpy(), out["mask"].numpy()
    expected = _numpy_loss(images, predictions, mask, 4, norm_pix_loss)
    np.testing.assert_allclose(float(model.reconstruction_loss(images, predictions, mask)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(model.compute_loss(images, None, out)), expected, rtol=1e-5)


def test_loss_depends_only_on_the_masked_patches(small_mae):
    images = _images(2, seed=3)
    out = small_mae(images)
    predictions, mask = out["predictions"].numpy(), out["mask"].numpy()
    base = float(small_mae.reconstruction_loss(images, predictions, mask))
    changed_visible = predictions + 5.0 * (mask == 0)[..., None]
    assert float(small_mae.reconstruction_loss(images, changed_visible, mask)) == pytest.approx(base, rel=1e-6)
    b, n = np.argwhere(mask == 1)[0]
    changed_masked = predictions.copy()
    changed_masked[b, n] += 5.0
    assert float(small_mae.reconstruction_loss(images, changed_masked, mask)) > base + 1.0


def test_normalised_pixel_targets(small_mae):
    """norm_pix: every target patch has mean 0 and unbiased variance ≈ 1, whatever the patch's brightness and contrast."""
    images = _images(2, seed=4)
    targets = small_mae.targets(images).numpy()
    assert targets.shape == (2, 16, 48)
    np.testing.assert_allclose(targets.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(targets.var(-1, ddof=1), 1.0, atol=1e-3)
    # An affine change of one image's pixels (inside 0..255) leaves its targets unchanged.
    np.testing.assert_allclose(small_mae.targets(0.5 * images + 60.0).numpy(), targets, atol=1e-3)
    raw = build_mae(**SMALL, norm_pix_loss=False, seed=0).targets(images).numpy()
    np.testing.assert_allclose(raw, _numpy_patches(images / 127.5 - 1.0, 4), atol=1e-6)


def test_a_train_step_through_plain_compile_updates_the_weights():
    """compile(optimizer) only; the batch may be images or (images, labels). Eager, to keep it fast."""
    model = build_mae(**SMALL, seed=5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    before = [w.numpy().copy() for w in model.trainable_weights]
    images = tf.constant(_images(2, seed=5))
    logs = model.train_step(images)
    logs_with_labels = model.train_step((images, tf.constant([3, 1])))
    assert np.isfinite(float(logs["loss"])) and np.isfinite(float(logs_with_labels["loss"]))
    changed = [not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]


@pytest.mark.slow
def test_reconstruction_loss_falls_with_fit():
    """Graph-mode fit on two fixed ramp images, (images, labels) batches, 150 steps: the masked MSE falls
    to under a third of its start and to half the loss of predicting zeros (the normalised mean).
    (Initial seeds 0, 1, 2 gave 0.65 -> 0.17, 0.62 -> 0.08, 0.60 -> 0.18; zeros: 0.378.)"""
    keras.utils.set_random_seed(0)
    ramp = np.linspace(0, 255, 16, dtype="float32")
    images = np.stack([np.broadcast_to(ramp[:, None, None], (16, 16, 3)),
                       np.broadcast_to(ramp[None, :, None], (16, 16, 3))]).copy()
    model = build_mae(**SMALL, norm_pix_loss=False, seed=6)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))

    def masked_mse():  # over 8 fresh masks
        return float(model.evaluate(tf.data.Dataset.from_tensors(images).repeat(8), verbose=0))

    before = masked_mse()
    model.fit(tf.data.Dataset.from_tensors((images, np.zeros(2))).repeat(150), epochs=1, verbose=0)
    after = masked_mse()
    zeros = _numpy_loss(images, np.zeros((2, 16, 48)), np.ones((2, 16)), 4, False)
    assert after < before / 3 and after < zeros / 2, (before, after, zeros)


def test_encoder_hands_over_to_build_vit(small_mae):
    """Copied by name into build_vit, the encoder gives the MAE's unmasked features; the decoder stays behind."""
    vit = build_vit(10, **small_mae.encoder_config)
    assert encoder_weights_to_vit(small_mae, vit) == 3 + SMALL["num_layers"] + 1
    images = _images(2, seed=7)
    features = keras.Model(vit.input, vit.get_layer("encoder_norm").output)(images)
    np.testing.assert_allclose(features.numpy(), small_mae.encode(images).numpy(), atol=1e-5)
    backbone = build_vit(include_top=False, **small_mae.encoder_config)
    encoder_weights_to_vit(small_mae, backbone)
    np.testing.assert_allclose(backbone(images).numpy(), small_mae.encode(images).numpy(), atol=1e-5)
    # Decoder weights are not part of the ViT, and the ViT has nothing the MAE encoder lacks.
    assert not [w.path for w in backbone.weights if "decoder" in w.path or "mask_token" in w.path]
    decoder = _decoder_parameters(16, 16, 48, 8, 1, 16)
    assert small_mae.count_params() == backbone.count_params() + decoder


def test_encoder_hand_over_to_a_gap_vit_skips_the_class_token(small_mae):
    vit = build_vit(10, pooling="gap", **small_mae.encoder_config)
    assert encoder_weights_to_vit(small_mae, vit) == 2 + SMALL["num_layers"] + 1


@pytest.mark.parametrize("change, message", [
    (dict(hidden_dim=32), "patch_projection"),
    (dict(num_layers=3), "extra"),
    (dict(num_layers=1), "missing"),
])
def test_encoder_hand_over_rejects_another_encoder(small_mae, change, message):
    config = {**small_mae.encoder_config, **change}
    with pytest.raises(ValueError, match=message):
        encoder_weights_to_vit(small_mae, build_vit(10, **config))


def test_keras_file_round_trip(small_mae, keras_round_trip):
    loaded = keras_round_trip(small_mae)
    assert isinstance(loaded, MaskedAutoencoder) and loaded.get_config() == small_mae.get_config()
    images = _images(2, seed=8)
    np.testing.assert_allclose(loaded.encode(images).numpy(), small_mae.encode(images).numpy(), atol=1e-6)
    loaded.masking.seed_generator.state.assign(small_mae.masking.seed_generator.state.value)
    ours, theirs = small_mae(images), loaded(images)
    np.testing.assert_array_equal(ours["mask"].numpy(), theirs["mask"].numpy())
    np.testing.assert_allclose(ours["predictions"].numpy(), theirs["predictions"].numpy(), atol=1e-5)


def test_reconstruct_pastes_visible_patches_and_greys_masked_ones(small_mae):
    images = _images(3, seed=9)
    small_mae.masking.seed_generator.state.assign([11, 0])
    mask = small_mae(images)["mask"].numpy()  # the mask reconstruct will draw, from the same state
    small_mae.masking.seed_generator.state.assign([11, 0])
    masked, reconstructed = (t.numpy() for t in small_mae.reconstruct(images))
    visible = _numpy_patches(np.ones_like(images), 4) * (1 - mask)[..., None]
    pixel_visible = np.zeros(images.shape, bool)
    for n in range(16):
        i, j = divmod(n, 4)
        pixel_visible[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = (visible[:, n, 0] > 0)[:, None, None, None]
    np.testing.assert_allclose(reconstructed[pixel_visible], images[pixel_visible], atol=1e-3)
    np.testing.assert_allclose(masked[pixel_visible], images[pixel_visible], atol=1e-3)
    assert (masked[~pixel_visible] == 127.5).all()
    assert reconstructed.min() >= 0 and reconstructed.max() <= 255
    assert not np.allclose(reconstructed[~pixel_visible], images[~pixel_visible], atol=1.0)


def test_tiny_preset_count():
    """notes-001.md §26 tiny: the ViT-tiny encoder (build_vit's count) plus the decoder's closed form."""
    model = build_mae(**mae_config("tiny"), seed=0)
    encoder = build_vit(include_top=False, **model.encoder_config).count_params()
    assert model.count_params() == encoder + _decoder_parameters(64, 64, 48, 32, 2, 128)


@pytest.mark.slow
def test_paper_b16_count():
    """MAE ViT-B/16 + decoder 512-d x 8 (paper default). The paper's code counts 111,907,840 numbers
    (closed form below), with fixed sine-cosine tables of 197 rows in encoder and decoder whose class
    rows are zeros; ours has learned tables (the encoder's class row is ViT's ClassToken vector) and
    no decoder class row: 512 fewer."""
    block = lambda d, m: 4 * (d * d + d) + 4 * d + (d * m + m) + (m * d + d)  # noqa: E731
    encoder = (768 * 768 + 768) + 768 + 197 * 768 + 12 * block(768, 3072) + 2 * 768
    decoder = (768 * 512 + 512) + 512 + 197 * 512 + 8 * block(512, 2048) + 2 * 512 + (512 * 768 + 768)
    assert encoder == 85_798_656  # keras-hub's ViTBackbone count for ViT-B/16 (issue 15)
    assert encoder + decoder == 111_907_840
    assert build_mae(**mae_config("b16"), seed=0).count_params() == encoder + decoder - 512


def test_rejects_mask_ratios_without_masked_patches():
    for ratio in (0.0, 1.0):
        with pytest.raises(ValueError, match="mask_ratio"):
            build_mae(**SMALL, mask_ratio=ratio)


def test_mixed_precision_keeps_predictions_and_loss_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_mae(**SMALL, seed=0)
        images = _images(2, seed=11)
        out = model(images)
        loss = model.compute_loss(images, None, out)
        masked, reconstructed = model.reconstruct(images)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("encoder_block_0").compute_dtype == "float16"
    assert out["predictions"].dtype == out["mask"].dtype == loss.dtype == reconstructed.dtype == tf.float32
    assert np.isfinite(float(loss)) and np.isfinite(reconstructed.numpy()).all()


@pytest.mark.slow
def test_mirrored_strategy_loss_and_gradient_scale():
    """Constant images and a zero prediction layer make the loss (200/127.5 − 1)² and the prediction
    bias's gradient 2(b − t)/P whatever the masks: under MirroredStrategy on two CPUs the logged loss
    and one SGD step of that bias must equal the single-device ones (no 2x or ½x from the replicas)."""
    images = np.full((4, 16, 16, 3), 200.0, "float32")
    target = 200.0 / 127.5 - 1.0

    def one_step(strategy):
        with strategy.scope():
            model = build_mae(**SMALL, norm_pix_loss=False, seed=12)
            for weight in model.get_layer("decoder_prediction").weights:
                weight.assign(np.zeros(weight.shape, "float32"))
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        logged = model.evaluate(images, batch_size=4, verbose=0)
        model.fit(images, batch_size=4, epochs=1, verbose=0)
        return logged, model.get_layer("decoder_prediction").bias.numpy()

    single = one_step(tf.distribute.get_strategy())
    mirrored = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    assert single[0] == pytest.approx(target**2, rel=1e-5) and mirrored[0] == pytest.approx(target**2, rel=1e-5)
    np.testing.assert_allclose(single[1], 0.5 * 2 * target / 48, rtol=1e-5)  # b − lr · 2(b − t)/P, b = 0
    np.testing.assert_allclose(mirrored[1], single[1], rtol=1e-5)
