"""GptBlock (notes-001 §1; notes-002-part2 §49–§51): causality, the pre-LN residual stream, a NumPy reference, round trip."""

import math

import keras
import numpy as np
import pytest

from tfmodels.layers.gpt_block import GptBlock


def numpy_block(block: GptBlock, x: np.ndarray) -> np.ndarray:
    """The block written out in NumPy: x + W_o·softmax(QKᵀ/√d_k + causal −∞)V of LN₁(x), then x + W₂·gelu(W₁·LN₂(x))."""

    def layer_norm(layer, v):
        mean, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
        return (v - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy() + layer.beta.numpy()

    attention = block.self_attention
    h = layer_norm(block.attention_layer_norm, x)
    q, k, v = (np.einsum("btd,dnh->btnh", h, p.kernel.numpy()) + p.bias.numpy() for p in (attention.query_dense, attention.key_dense, attention.value_dense))
    scores = np.einsum("bqnh,bknh->bnqk", q, k) / math.sqrt(q.shape[-1])
    length = x.shape[1]
    scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)  # notes L15: −∞ above the diagonal
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("bnqk,bknh->bqnh", weights, v)
    x = x + np.einsum("bqnh,nhd->bqd", heads, attention.output_dense.kernel.numpy()) + attention.output_dense.bias.numpy()
    h = layer_norm(block.mlp_layer_norm, x) @ block.mlp_up.kernel.numpy() + block.mlp_up.bias.numpy()
    h = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    return x + h @ block.mlp_down.kernel.numpy() + block.mlp_down.bias.numpy()


@pytest.fixture
def block():
    keras.utils.set_random_seed(0)
    layer = GptBlock(num_heads=4, dropout=0.1)
    layer.build((None, None, 16))
    rng = np.random.default_rng(0)
    for weight in layer.weights:  # large random weights: every term of the block matters
        weight.assign(rng.normal(0, 0.5, weight.shape))
    return layer


def test_equals_a_numpy_reference_with_scaled_causal_attention(block):
    x = np.random.default_rng(1).normal(size=(2, 7, 16)).astype("float32")
    np.testing.assert_allclose(block(x).numpy(), numpy_block(block, x), rtol=1e-4, atol=1e-4)


def test_changing_a_future_token_never_changes_earlier_outputs(block):
    x = np.random.default_rng(2).normal(size=(1, 9, 16)).astype("float32")
    before = block(x).numpy()
    for t in range(9):
        changed = x.copy()
        changed[:, t:] += np.random.default_rng(t).normal(size=changed[:, t:].shape)
        after = block(changed).numpy()
        np.testing.assert_array_equal(after[:, :t], before[:, :t])
        assert np.abs(after[:, t] - before[:, t]).max() > 1e-3


def test_sub_layers_add_to_the_unnormalised_stream(block):
    """Pre-LN (GPT-2/3): with both residual projections zero the block is the identity, however large x is."""
    for dense in (block.self_attention.output_dense, block.mlp_down):
        for weight in dense.weights:
            weight.assign(np.zeros(weight.shape))
    x = 100 * np.random.default_rng(3).normal(size=(2, 5, 16)).astype("float32")
    np.testing.assert_allclose(block(x).numpy(), x, rtol=1e-6)


def test_parameter_count_and_mlp_width():
    layer = GptBlock(num_heads=8)
    layer.build((None, None, 64))
    assert layer.count_params() == 12 * 64**2 + 13 * 64
    assert layer.mlp_up.kernel.shape == (64, 256)  # notes L21: up-projection to 4 × d
    with pytest.raises(ValueError, match="not a multiple of num_heads"):
        GptBlock(num_heads=3).build((None, None, 64))


def test_dropout_is_active_in_training_only(block):
    x = np.random.default_rng(4).normal(size=(2, 6, 16)).astype("float32")
    np.testing.assert_array_equal(block(x, training=False).numpy(), block(x).numpy())
    assert not np.allclose(block(x, training=True).numpy(), block(x).numpy())


def test_keras_round_trip(block, tmp_path):
    inputs = keras.Input((None, 16))
    model = keras.Model(inputs, block(inputs))
    path = tmp_path / "block.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(5).normal(size=(2, 6, 16)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    restored = loaded.layers[-1]
    assert isinstance(restored, GptBlock)
    assert restored.get_config() == block.get_config()
