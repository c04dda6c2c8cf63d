"""TransformerEncoderBlock (notes-002-part2 §49-§52) and PositionEmbedding: masks, Add & Norm, keras-hub parity."""

import doctest

import keras
import keras_hub
import numpy as np
import pytest

from tfmodels.layers import position_embedding, transformer_encoder
from tfmodels.layers.position_embedding import PositionEmbedding
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock, gelu_approximate

B, L, D = 3, 7, 16


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(B, L, D)).astype("float32")


def _padding_mask():
    mask = np.ones((B, L), "int32")
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return mask


def _block(**kwargs):
    keras.utils.set_random_seed(0)
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32, **kwargs)
    block(_inputs())
    return block


def test_changing_padded_positions_does_not_change_real_positions():
    block, mask = _block(), _padding_mask()
    x = _inputs()
    y = block(x, padding_mask=mask).numpy()
    changed = np.where(mask[..., None] == 1, x, 100.0 * _inputs(seed=1))
    z = block(changed, padding_mask=mask).numpy()
    real = mask == 1
    np.testing.assert_allclose(z[real], y[real], atol=1e-6)
    assert not np.allclose(z[~real], y[~real])  # the padded positions themselves did change


def test_attention_is_bidirectional_without_a_causal_mask():
    block, x = _block(), _inputs()
    later = x.copy()
    later[:, -1] += 1.0
    assert np.abs(block(later).numpy()[:, 0] - block(x).numpy()[:, 0]).max() > 1e-3


def test_causal_attention_mask_hides_later_positions_and_combines_with_padding():
    block, x, mask = _block(), _inputs(), _padding_mask()
    causal = np.tril(np.ones((B, L, L), "int32"))
    y = block(x, padding_mask=mask, attention_mask=causal).numpy()
    for i in range(L):
        changed = x.copy()
        changed[:, i + 1 :] = _inputs(seed=2)[:, i + 1 :]
        z = block(changed, padding_mask=mask, attention_mask=causal).numpy()
        real = mask[:, i] == 1
        np.testing.assert_allclose(z[real, i], y[real, i], atol=1e-6)


def test_post_layer_norm_output_is_normalised_per_position():
    """§52: LayerNorm over the feature axis only (γ = 1, β = 0 at initialisation)."""
    y = _block()(_inputs()).numpy()
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1.0, atol=1e-3)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post-LN", "pre-LN"])
def test_matches_keras_hub_transformer_encoder(normalize_first):
    """Same weights → same outputs as keras-hub's TransformerEncoder (ReLU, ε 1e-5 here), post- and pre-LN."""
    kwargs = {"num_heads": 2, "intermediate_dim": 32, "activation": "relu", "layer_norm_epsilon": 1e-5, "dropout": 0.1,
              "normalize_first": normalize_first}
    hub = keras_hub.layers.TransformerEncoder(**kwargs)
    ours = TransformerEncoderBlock(**kwargs)
    x, mask = _inputs(), _padding_mask()
    hub(x)
    ours(x)
    rng = np.random.default_rng(3)
    for part in ["self_attention", "self_attention_layer_norm", "feedforward_intermediate_dense", "feedforward_output_dense", "feedforward_layer_norm"]:
        source = getattr(hub, f"_{part}_layer" if part == "self_attention" else f"_{part}")
        values = [rng.normal(0.5, 0.5, w.shape).astype("float32") for w in source.weights]
        source.set_weights(values)
        getattr(ours, part).set_weights(values)
    np.testing.assert_allclose(ours(x, padding_mask=mask), hub(x, padding_mask=mask), atol=1e-5)


def test_dropout_only_in_training_and_attention_dropout_defaults_to_dropout():
    block, x = _block(dropout=0.5), _inputs()
    assert block.attention_dropout == 0.5 and block.self_attention.dropout == 0.5
    np.testing.assert_array_equal(block(x), block(x))
    assert not np.allclose(block(x, training=True), block(x))
    assert TransformerEncoderBlock(2, 32, dropout=0.1, attention_dropout=0.0).attention_dropout == 0.0


def test_width_must_be_a_multiple_of_the_heads():
    with pytest.raises(ValueError, match="not a multiple of num_heads=3"):
        TransformerEncoderBlock(num_heads=3, intermediate_dim=8)(np.zeros((1, 2, 16), "float32"))


def test_gelu_approximate_is_the_tanh_form_and_close_to_exact_gelu():
    x = np.linspace(-5, 5, 101).astype("float32")
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_approximate(x), tanh_form, atol=1e-6)
    difference = np.abs(gelu_approximate(x) - keras.activations.gelu(x, approximate=False)).max()
    assert 1e-5 < difference < 1e-3


def test_config_and_keras_file_round_trip(tmp_path):
    block = _block(activation=gelu_approximate, layer_norm_epsilon=1e-6, attention_dropout=0.2, kernel_initializer="he_normal")
    config = block.get_config()
    assert config["activation"] != "gelu"  # the registered tanh form, not the exact one
    clone = TransformerEncoderBlock.from_config(config)
    assert clone.activation is gelu_approximate and clone.layer_norm_epsilon == 1e-6 and clone.attention_dropout == 0.2

    inputs = keras.Input((None, D))
    mask = keras.Input((None,), dtype="int32")
    model = keras.Model([inputs, mask], PositionEmbedding(L)(inputs) + block(inputs, padding_mask=mask))
    model.save(tmp_path / "block.keras")
    loaded = keras.saving.load_model(tmp_path / "block.keras")
    np.testing.assert_array_equal(loaded([_inputs(), _padding_mask()]), model([_inputs(), _padding_mask()]))


def test_position_embedding_slices_its_table_to_the_input_length():
    layer = PositionEmbedding(sequence_length=10, initializer="random_normal")
    short = layer(np.zeros((2, 4, 3), "float32")).numpy()
    table = layer.embeddings.numpy()
    assert layer.embeddings.shape == (10, 3)
    np.testing.assert_array_equal(short, np.broadcast_to(table[:4], (2, 4, 3)))
    np.testing.assert_array_equal(layer(np.zeros((1, 10, 3), "float32"))[0], table)
    with pytest.raises(Exception):  # longer than the table: a clear shape error, not a silent wrap
        layer(np.zeros((1, 11, 3), "float32"))


def test_docstring_examples():
    for module, examples in [(transformer_encoder, 4), (position_embedding, 3)]:
        result = doctest.testmod(module)
        assert result.attempted == examples and result.failed == 0
