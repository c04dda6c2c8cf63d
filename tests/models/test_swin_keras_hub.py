"""Weight compatibility with keras-hub's SwinTransformerBackbone (issue 15; design handbook rule 5)."""

import keras_hub
import numpy as np
import pytest

from tfmodels.models.swin_keras_hub import swin_from_keras_hub

# ImageNet mean/std, as keras-hub's Swin image converter (convert_swin_transformer.py) standardises.
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def hub():
    """A random keras-hub Swin, built once (~10 s). Three stages, maps 8², 4², 2², window 2: shifted
    windows in stages 0-1, a window equal to the map in stage 2 (keras-hub breaks on smaller maps)."""
    backbone = keras_hub.models.SwinTransformerBackbone(
        image_shape=(32, 32, 3), patch_size=4, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=2,
        drop_path=0.1, dropout_rate=0.1,  # regularisers: off at inference in both
    )
    _randomize(backbone, 0)
    return backbone


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:  # LayerNorm γ/β and biases away from 1/0, a bias table far from 0
        weight.assign(rng.normal(0, 0.2, weight.shape) + (1.0 if weight.path.endswith("gamma") else 0.0))


def test_random_keras_hub_backbone_converts_to_the_same_outputs(hub):
    ours = swin_from_keras_hub(hub)
    assert ours.count_params() == hub.count_params()
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = hub(((pixels / 255 - MEAN) / STD).astype("float32")).numpy()
    features = ours(pixels).numpy()
    assert features.shape == (2, 2, 2, 32)
    np.testing.assert_allclose(features.reshape(expected.shape), expected, rtol=1e-4, atol=1e-4)


def test_every_weight_is_mapped_once(hub):
    ours = swin_from_keras_hub(hub)
    sources = sorted(float(np.sum(w.numpy())) for w in hub.weights)
    targets = sorted(float(np.sum(w.numpy())) for w in ours.weights)
    np.testing.assert_allclose(targets, sources, rtol=1e-6)  # the same multiset of tensors


def test_another_input_size_with_other_windows_is_refused(hub):
    # At 16² the maps are 4², 2², 1²: the last window shrinks to 1, so its bias tables differ.
    with pytest.raises(ValueError, match="relative_position_bias_table"):
        swin_from_keras_hub(hub, input_shape=(16, 16, 3))
