"""The encoder–decoder Transformer (notes-002-part2 §48–§53)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import beam_search
from tfmodels.models.beam_search import sample
from tfmodels.models.transformer import build_transformer, decoder_step, parameter_count

BOS, EOS = 2, 3
SOURCE = tf.constant([[4, 5, 6, 7, 0, 0], [8, 9, 0, 0, 0, 0]])
DECODER_INPUT = tf.constant([[BOS, 5, 6, 7, 8], [BOS, 9, 10, 0, 0]])


def inputs(source=SOURCE, decoder_input=DECODER_INPUT):
    return {"source_ids": source, "decoder_input_ids": decoder_input}


@pytest.fixture(scope="module")
def model():
    return build_transformer(12, 11, d_model=16, num_heads=2, ffn_dim=32, num_layers=2)


def test_parameter_count_is_the_closed_form(model):
    assert model.count_params() == parameter_count(12, 11, 16, 32, 2)


def test_transformer_base_has_the_papers_size_without_building_it():
    """Vaswani et al. 2017 (paper default): 6 + 6 layers, d 512, d_ff 2048, shared 37k vocabulary, tied: ≈ 63M (the paper says 65M)."""
    tied = parameter_count(37_000, 37_000, 512, 2048, 6, tied=True)
    assert tied == 63_119_496 and 60e6 < tied < 66e6
    assert parameter_count(37_000, 37_000, 512, 2048, 6) == tied + 2 * 37_000 * 512


def test_decoder_is_causal_and_ignores_source_padding(model):
    base = model(inputs()).numpy()
    changed = DECODER_INPUT.numpy().copy()
    changed[:, 3:] = 1
    np.testing.assert_allclose(model(inputs(decoder_input=tf.constant(changed))).numpy()[:, :3], base[:, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(inputs(SOURCE[:, :4])).numpy(), base, rtol=1e-5, atol=1e-5)
    other = SOURCE.numpy().copy()
    other[0, 4:] = 11  # real tokens where there was padding: the output changes
    assert not np.allclose(model(inputs(tf.constant(other))).numpy()[0], base[0])


def test_incremental_steps_equal_the_teacher_forced_logits(model):
    expected = model(inputs()).numpy()
    step, state = decoder_step(model, SOURCE, max_length=5)
    for t in range(5):
        logits, state = step(DECODER_INPUT[:, t], state)
        np.testing.assert_allclose(logits.numpy(), expected[:, t], rtol=1e-4, atol=1e-5)


def test_greedy_translate_takes_the_argmax_at_every_step(model, greedy_translation_checked):
    greedy_translation_checked(model, decoder_step, SOURCE, BOS, EOS, max_length=5)


def test_sampling_at_temperature_zero_is_greedy_and_is_reproducible_per_seed(model):
    greedy = beam_search.translate(decoder_step, model, SOURCE, 5, BOS, EOS)
    step, state = decoder_step(model, SOURCE, 5)
    cold = sample(step, state, 2, 5, BOS, EOS, temperature=0.0, seed=0)
    np.testing.assert_array_equal(cold["ids"].numpy(), greedy["ids"].numpy())
    np.testing.assert_allclose(cold["log_prob"].numpy(), greedy["log_prob"].numpy(), rtol=1e-5)
    hot = [sample(step, state, 2, 5, BOS, EOS, temperature=5.0, seed=s)["ids"].numpy() for s in (1, 1, 2)]
    np.testing.assert_array_equal(hot[0], hot[1])
    assert not np.array_equal(hot[0], hot[2])


@pytest.mark.slow
def test_one_batch_overfits():
    model = build_transformer(10, 10, d_model=16, num_heads=2, ffn_dim=32, num_layers=1, dropout=0.0)
    source = tf.constant([[4, 5, 6, 0], [7, 8, 0, 0]])
    x, y = inputs(source, tf.constant([[BOS, 5, 6, 7], [BOS, 8, 9, EOS]])), tf.constant([[5, 6, 7, EOS], [8, 9, EOS, 0]])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(keras.optimizers.Adam(0.01), loss, jit_compile=False)  # XLA would compile longer than it trains
    initial = float(loss(y, model(x)))
    for _ in range(60):
        model.train_on_batch(x, y)
    assert float(loss(y, model(x))) < 0.1 * initial


def test_keras_round_trip(model, keras_round_trip):
    loaded = keras_round_trip(model)
    np.testing.assert_allclose(loaded(inputs()).numpy(), model(inputs()).numpy(), rtol=1e-5, atol=1e-6)
