"""GRU encoder–decoder, with and without Bahdanau attention (notes-002-part2 §40–§41, §46)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models import beam_search
from tfmodels.models.seq2seq import build_seq2seq, decoder_step

BOS, EOS = 2, 3
SOURCE = tf.constant([[4, 5, 6, 7, 0, 0], [8, 9, 0, 0, 0, 0]])
DECODER_INPUT = tf.constant([[BOS, 5, 6, 7, 8], [BOS, 9, 10, 0, 0]])


def inputs(source=SOURCE, decoder_input=DECODER_INPUT):
    return {"source_ids": source, "decoder_input_ids": decoder_input}


def gru_params(d, h):  # the notes' GRU (reset_after=False): three blocks of W_x, W_h, b
    return 3 * (d * h + h * h + h)


@pytest.mark.parametrize("attention", [False, True])
def test_parameter_count_is_the_closed_form(attention):
    vs, vt, e, h = 20, 12, 8, 16
    model = build_seq2seq(vs, vt, e, h, num_layers=2, attention=attention)
    encoder = vs * e + gru_params(e, h) + gru_params(h, h)
    decoder = vt * e + gru_params(e + h, h) + gru_params(h, h) + h * vt + vt  # the context is concatenated
    attention_params = 2 * h * h + h if attention else 0  # W_q, W_k, w_v
    assert model.count_params() == encoder + decoder + attention_params


@pytest.mark.parametrize("attention", [False, True])
def test_logits_shape_and_source_padding_does_not_change_them(attention):
    model = build_seq2seq(12, 11, 8, 16, attention=attention)
    logits = model(inputs())
    assert logits.shape == (2, 5, 11)
    shorter = model(inputs(SOURCE[:, :4]))  # the same sources with two padding columns fewer
    np.testing.assert_allclose(logits.numpy(), shorter.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", [False, True])
def test_teacher_forced_logits_equal_the_decoding_steps(attention):
    """The decoding loop's steps, fed the same tokens, give the training model's logits (§41)."""
    model = build_seq2seq(12, 11, 8, 16, attention=attention)
    expected = model(inputs()).numpy()
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    outputs, states = encoder(SOURCE)
    memory, mask = decoder.memory(outputs, states, SOURCE != 0)
    for t in range(DECODER_INPUT.shape[1]):
        logits, states, _ = decoder.step(DECODER_INPUT[:, t], states, memory, mask)
        np.testing.assert_allclose(logits.numpy(), expected[:, t], rtol=1e-5, atol=1e-5)


def test_attention_weights_sum_to_one_and_ignore_source_padding():
    model = build_seq2seq(12, 11, 8, 16, attention=True)
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    outputs, states = encoder(SOURCE)
    _, weights = decoder(DECODER_INPUT, outputs, states, SOURCE != 0, return_attention=True)
    assert weights.shape == (2, 5, 6)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert (weights.numpy()[0, :, 4:] == 0).all() and (weights.numpy()[1, :, 2:] == 0).all()


def test_without_attention_the_context_is_the_encoders_final_top_state():
    model = build_seq2seq(12, 11, 8, 16, attention=False)
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    outputs, states = encoder(SOURCE)
    memory, mask = decoder.memory(outputs, states, SOURCE != 0)
    np.testing.assert_allclose(memory[:, 0].numpy(), states[:, -1].numpy())
    # the top layer's final state is its output at each row's last real token
    np.testing.assert_allclose(states[:, -1].numpy(), [outputs[0, 3].numpy(), outputs[1, 1].numpy()], rtol=1e-6)
    assert mask.numpy().tolist() == [[True], [True]]


def test_masked_loss_ignores_padding_positions():
    """§41: the loss over padded label positions is zero — changing those logits changes nothing."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    labels = np.array([[5, 6, EOS, 0, 0], [7, EOS, 0, 0, 0]])
    logits = np.random.default_rng(0).normal(size=(2, 5, 9)).astype("float32")
    changed = logits.copy()
    changed[0, 3:] += 50 * np.random.default_rng(1).normal(size=(2, 9))
    changed[1, 2:] -= 30
    assert float(loss(labels, logits)) == pytest.approx(float(loss(labels, changed)), rel=1e-6)
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).numpy()
    assert float(loss(labels, logits)) == pytest.approx(per_token[labels != 0].mean(), rel=1e-5)


@pytest.mark.parametrize("attention", [pytest.param(False, marks=pytest.mark.slow), True])
def test_one_batch_overfits_and_greedy_decoding_then_reproduces_it(attention):
    """Teacher forcing on one batch, then greedy decoding (no target given) writes the targets."""
    targets = [[5, 6, 7, EOS], [8, 9, EOS, 0]]
    decoder_input = tf.constant([[BOS, 5, 6, 7], [BOS, 8, 9, EOS]])
    source = tf.constant([[4, 5, 6, 0], [7, 8, 0, 0]])
    model = build_seq2seq(10, 10, 8, 16, num_layers=1, dropout=0.0, attention=attention)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(keras.optimizers.Adam(0.03), loss, jit_compile=False)  # XLA would compile longer than it trains
    x, y = inputs(source, decoder_input), tf.constant(targets)
    initial = float(loss(y, model(x)))
    for _ in range(60):
        model.train_on_batch(x, y)
    assert float(loss(y, model(x))) < 0.05 * initial
    out = beam_search.translate(decoder_step, model, source, max_length=4, bos_id=BOS, eos_id=EOS)
    assert out["ids"].numpy().tolist() == targets and out["lengths"].numpy().tolist() == [4, 3]


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_translate_takes_the_argmax_at_every_step_and_beam_scores_no_worse(attention, greedy_translation_checked):
    model = build_seq2seq(12, 11, 8, 16, attention=attention)
    out = greedy_translation_checked(model, decoder_step, SOURCE, BOS, EOS, max_length=5)
    beam = beam_search.translate(decoder_step, model, SOURCE, 5, BOS, EOS, beam_width=4)
    both_finished = (out["lengths"] < 5) & (beam["lengths"] < 5)  # a cut-off greedy row scores by another rule
    assert (beam["score"].numpy()[both_finished.numpy()] >= out["score"].numpy()[both_finished.numpy()] - 1e-5).all()


@pytest.mark.parametrize("attention", [False, True])
def test_keras_round_trip_and_training_mode_dropout(attention, keras_round_trip):
    model = build_seq2seq(12, 11, 8, 16, dropout=0.5, attention=attention)
    loaded = keras_round_trip(model)
    np.testing.assert_allclose(loaded(inputs()).numpy(), model(inputs()).numpy(), rtol=1e-6)
    assert loaded.get_layer("decoder").attention is attention
    assert not np.allclose(model(inputs(), training=True).numpy(), model(inputs()).numpy())
