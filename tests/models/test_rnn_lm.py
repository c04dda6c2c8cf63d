"""RNN / GRU / LSTM language models (notes-002-part2 §32, §36–§38): shapes, closed-form counts, the notes' GRU equations."""

import keras
import numpy as np
import pytest

from tfmodels.models.rnn_lm import CELLS, OneHot, build_rnn_lm, parameter_count, recurrent_layer


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers, embedding_dim", [(1, None), (2, None), (2, 6)])
def test_logits_for_every_step_and_closed_form_parameter_count(cell, num_layers, embedding_dim):
    model = build_rnn_lm(11, cell, hidden_units=7, num_layers=num_layers, embedding_dim=embedding_dim)
    ids = np.random.default_rng(0).integers(0, 11, (3, 5))
    assert model(ids).shape == (3, 5, 11)
    assert model(ids[:, :2]).shape == (3, 2, 11)  # any sequence length
    assert model.count_params() == parameter_count(11, cell, 7, num_layers, embedding_dim)
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert len(recurrent) == num_layers and all(layer.return_sequences for layer in recurrent)


def test_parameter_counts_are_the_notes_formulas():
    v, h = 28, 512
    rnn = v * h + h * h + h  # §32 [REF d2l]: V·H + H·H + H, then the output layer H·V + V
    assert build_rnn_lm(v, "rnn", h).count_params() == rnn + h * v + v == 291_356
    assert build_rnn_lm(v, "gru", h).count_params() == 3 * rnn + h * v + v  # §36 L3177: 3 × the RNN's
    assert build_rnn_lm(v, "lstm", h).count_params() == 4 * rnn + h * v + v  # §37: 4 × the RNN's
    # §38: the second layer reads the first layer's h-wide state.
    assert build_rnn_lm(v, "lstm", h, num_layers=2).count_params() == 4 * rnn + 4 * (h * h + h * h + h) + h * v + v
    # Keras' default GRU (reset_after=True) has a second recurrent bias: not the notes' count.
    default_gru = keras.Sequential([keras.Input((None, v)), keras.layers.GRU(h)])
    assert default_gru.count_params() == 3 * rnn + 3 * h


def test_gru_follows_the_notes_equations_with_the_reset_gate_before_the_recurrent_matrix():
    """§36 (notes-001 §3): R, Z = σ(X W_x· + H W_h· + b_·); H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h); H = Z ⊙ H + (1 − Z) ⊙ H̃."""
    v, h = 6, 4
    model = build_rnn_lm(v, "gru", hidden_units=h)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.7, w.shape).astype("float32") for w in model.get_weights()])
    gru = model.get_layer("gru_1")
    assert gru.reset_after is False
    kernel, recurrent, bias = (w.numpy() for w in gru.weights)  # Keras' gate order: z, r, candidate
    w_xz, w_xr, w_xh = np.split(kernel, 3, axis=1)
    w_hz, w_hr, w_hh = np.split(recurrent, 3, axis=1)
    b_z, b_r, b_h = np.split(bias, 3)
    w_hq, b_q = (w.numpy() for w in model.get_layer("logits").weights)

    ids = np.array([[3, 0, 5, 5]])
    state = np.zeros(h)
    expected = []
    for token in ids[0]:
        x = np.eye(v)[token]  # the notes' one-hot input
        r = sigmoid(x @ w_xr + state @ w_hr + b_r)
        z = sigmoid(x @ w_xz + state @ w_hz + b_z)
        candidate = np.tanh(x @ w_xh + (r * state) @ w_hh + b_h)
        state = z * state + (1 - z) * candidate
        expected.append(state @ w_hq + b_q)
    np.testing.assert_allclose(model(ids).numpy()[0], np.array(expected), atol=1e-5)


def test_output_at_a_step_ignores_later_tokens():
    """A causal model: the logits predicting token t + 1 depend on tokens 0..t only (generation relies on it)."""
    model = build_rnn_lm(9, "lstm", hidden_units=5, num_layers=2)
    a = np.array([[1, 2, 3, 4, 5]])
    b = np.array([[1, 2, 3, 8, 0]])
    np.testing.assert_allclose(model(a).numpy()[:, :3], model(b).numpy()[:, :3], atol=1e-6)
    assert not np.allclose(model(a).numpy()[:, 3], model(b).numpy()[:, 3])


@pytest.mark.parametrize("cell", CELLS)
def test_overfits_one_tiny_batch(cell, train_on_one_batch):
    keras.utils.set_random_seed(0)
    model = build_rnn_lm(8, cell, hidden_units=32)
    x = np.random.default_rng(2).integers(0, 8, (4, 12))
    y = np.roll(x, -1, axis=1)
    initial, final = train_on_one_batch(model, x, y, learning_rate=0.03, steps=60)
    assert initial > 1.8 and final < 0.3 * initial  # log 8 ≈ 2.08 at the start


@pytest.mark.parametrize("embedding_dim", [None, 4])
def test_keras_file_round_trip(embedding_dim, keras_round_trip):
    model = build_rnn_lm(10, "gru", hidden_units=6, num_layers=2, embedding_dim=embedding_dim, dropout=0.1)
    loaded = keras_round_trip(model)
    ids = np.array([[1, 4, 9, 0]])
    np.testing.assert_array_equal(loaded(ids), model(ids))
    assert loaded.get_layer("gru_2").reset_after is False
    if embedding_dim is None:
        assert isinstance(loaded.get_layer("one_hot"), OneHot)


def test_rejects_unknown_cells_and_empty_models():
    with pytest.raises(ValueError, match="cell must be one of"):
        recurrent_layer("transformer", 4, "x")
    with pytest.raises(ValueError, match="num_layers"):
        build_rnn_lm(10, "rnn", num_layers=0)
