"""GPT language model (notes-001 §1): closed-form and GPT-3 parameter counts, causality, tied un-embedding, temperature softmax, cropped generation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models.generation import generate
from tfmodels.models.gpt import (
    GPT3_175B,
    TiedEmbedding,
    build_gpt_lm,
    context_window,
    gpt_parameter_breakdown,
    gpt_parameter_count,
    temperature_softmax,
)


def random_gpt(max_positions=8, stddev=0.5, seed=0, **kwargs) -> keras.Model:
    """A small GPT with large random weights N(0, stddev²): every term of the model matters."""
    keras.utils.set_random_seed(0)
    model = build_gpt_lm(vocab_size=13, num_layers=2, num_heads=2, hidden_dim=16, max_positions=max_positions, **kwargs)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, stddev, weight.shape))
    return model


@pytest.mark.parametrize(
    "vocab, layers, heads, width, positions, tied",
    [(31, 1, 1, 8, 16, True), (31, 2, 4, 32, 16, False), (50, 3, 2, 24, 40, True)],
)
def test_closed_form_count_equals_the_built_model(vocab, layers, heads, width, positions, tied):
    model = build_gpt_lm(vocab, layers, heads, width, positions, tie_embeddings=tied)
    assert model.count_params() == gpt_parameter_count(vocab, layers, heads, width, positions, tied)
    parts = gpt_parameter_breakdown(vocab, layers, heads, width, positions, tied)
    mlp = sum(block.mlp_up.count_params() + block.mlp_down.count_params() for block in model.layers if block.name.startswith("block_"))
    assert parts["mlp"] == mlp


def test_gpt3_175b_numbers_of_the_notes():
    """notes-001 §1 L21–24: 96 layers, 96 heads, d = 12288, up-projection 49152 × 12288, MLP ≈ 116 B ≈ 2/3 of 175 B."""
    parts = gpt_parameter_breakdown(**GPT3_175B)
    assert parts["total"] == 174_604_259_328  # tied embeddings, as GPT-2/3
    assert gpt_parameter_count(**GPT3_175B, tie_embeddings=False) == 175_221_817_344
    assert parts["mlp"] == 96 * (2 * 4 * 12288 * 12288 + 4 * 12288 + 12288) == 115_970_015_232
    assert round(parts["mlp"] / 1e9) == 116
    assert parts["mlp"] / parts["total"] == pytest.approx(2 / 3, abs=0.01)
    assert parts["total"] / 175e9 == pytest.approx(1.0, abs=0.003)
    rest = parts["embedding"] + parts["attention"] + parts["positions"] + parts["layer_norms"]
    assert rest / parts["total"] == pytest.approx(1 / 3, abs=0.01)  # notes L20: embedding + attention + un-embedding ≈ 1/3


def test_logits_never_depend_on_later_tokens():
    model = random_gpt()
    ids = np.random.default_rng(1).integers(0, 13, (2, 8))
    before = model(ids).numpy()
    assert before.shape == (2, 8, 13)
    for t in range(1, 8):
        changed = ids.copy()
        changed[:, t:] = (changed[:, t:] + 1) % 13
        after = model(changed).numpy()
        np.testing.assert_array_equal(after[:, :t], before[:, :t])
        assert not np.allclose(after[:, t], before[:, t])


def test_tied_unembedding_reads_logits_off_the_token_embedding():
    model = random_gpt()
    embedding = model.get_layer("token_embedding")
    assert isinstance(embedding, TiedEmbedding)
    final = keras.Model(model.input, model.get_layer("final_layer_norm").output)
    ids = np.array([[1, 2, 3]])
    np.testing.assert_allclose(model(ids).numpy(), final(ids).numpy() @ embedding.embeddings.numpy().T, rtol=1e-4, atol=1e-4)
    assert "unembedding" in [layer.name for layer in random_gpt(tie_embeddings=False).layers]


def test_keras_round_trip_keeps_the_tie(tmp_path):
    model = random_gpt()
    model.save(tmp_path / "gpt.keras")
    loaded = keras.saving.load_model(tmp_path / "gpt.keras")
    ids = np.array([[1, 5, 7, 2]])
    np.testing.assert_allclose(loaded(ids).numpy(), model(ids).numpy(), rtol=1e-5)
    assert loaded.count_params() == model.count_params()
    loaded.get_layer("token_embedding").embeddings.assign(np.zeros((13, 16)))  # one matrix: the logits go too
    np.testing.assert_allclose(loaded(ids).numpy(), 0.0)


def test_longer_inputs_than_the_position_table_are_rejected():
    with pytest.raises(Exception, match="[Ss]ize|slice|bound"):
        random_gpt(max_positions=4)(np.zeros((1, 5), "int32"))


def test_one_batch_overfits(train_on_one_batch):
    model = build_gpt_lm(vocab_size=13, num_layers=2, num_heads=2, hidden_dim=32, max_positions=8, dropout=0.0)
    x = np.random.default_rng(2).integers(0, 13, (4, 8))
    initial, final = train_on_one_batch(model, x[:, :-1], x[:, 1:], 1e-2, 30)
    assert final < 0.2 * initial


def test_temperature_zero_puts_all_weight_on_the_maximum():
    """notes-001 §1 L7."""
    logits = np.array([[1.0, 3.0, 2.0, -1.0]])
    np.testing.assert_array_equal(temperature_softmax(logits, 0.0).numpy(), [[0, 1, 0, 0]])
    np.testing.assert_allclose(temperature_softmax(logits, 1e-3).numpy(), [[0, 1, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(temperature_softmax(logits, 1.0).numpy(), tf.nn.softmax(logits).numpy(), rtol=1e-6)
    np.testing.assert_allclose(temperature_softmax([2.0, 2.0, 0.0], 0.0).numpy(), [0.5, 0.5, 0.0])  # the limit T → 0⁺ splits ties
    np.testing.assert_allclose(temperature_softmax(logits, 1e4).numpy(), 0.25, atol=1e-3)  # large T: nearly uniform


def test_entropy_grows_with_temperature():
    logits = np.random.default_rng(3).normal(size=50) * 3
    entropies = []
    for t in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0):
        p = temperature_softmax(logits, t).numpy()
        entropies.append(-np.sum(p[p > 0] * np.log(p[p > 0])))
    assert entropies[0] == 0.0 and np.all(np.diff(entropies) > 0)


def test_generation_past_the_context_keeps_each_rows_newest_tokens():
    """context_window: every row (prefixes of different lengths) continues as nanoGPT's crop of its own sequence would."""
    model = random_gpt(max_positions=6, stddev=2.0, seed=2)  # weights whose greedy continuations vary
    prefixes = [[2, 5, 7, 1, 9], [3]]
    padded = [p + [0] * (5 - len(p)) for p in prefixes]
    new = generate(context_window(model, [5, 1], 6), padded, [5, 1], num_tokens=12).numpy()
    for row, prefix in enumerate(prefixes):
        sequence = list(prefix)
        for _ in range(12):
            logits = model(np.array([sequence[-6:]])).numpy()[0, -1]
            sequence.append(int(np.argmax(logits)))
        assert new[row].tolist() == sequence[len(prefix):]
    assert len(set(new[0].tolist())) > 2 and new[0].tolist() != new[1].tolist()  # the context matters
