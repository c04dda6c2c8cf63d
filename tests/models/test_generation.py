"""In-graph generation (notes-002-part2 §22, §32, §43): greedy = argmax loop, seeded sampling, core ops only.

Cost measured on the 2-core CPU machine (LSTM, 256 units, V = 31, traced with ``tf.function``):
100 tokens after a 20-token prefix take about 1.1 s for one row (the model re-runs on the growing
sequence, see :mod:`tfmodels.models.generation`).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models.generation import generate, next_token
from tfmodels.models.rnn_lm import build_rnn_lm

PREFIXES = [[2, 5, 7, 1], [2, 3, 0, 0], [2, 0, 0, 0]]  # right-padded; the padding is never read
LENGTHS = [4, 2, 1]


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(3)
    model = build_rnn_lm(12, "lstm", hidden_units=16, num_layers=2)
    # Larger weights than the initialisers' make the logits peaked and the greedy path varied.
    model.set_weights([w * 3 for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def traced(lm):
    spec = [
        tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32),
        tf.TensorSpec(None, tf.float32), tf.TensorSpec([], tf.int64),
    ]
    return tf.function(lambda ids, lengths, n, t, seed: generate(lm, ids, lengths, n, t, seed), input_signature=spec)


def run(traced, num_tokens, temperature, seed=0, prefixes=PREFIXES, lengths=LENGTHS):
    return traced(
        tf.constant(prefixes, tf.int32), tf.constant(lengths, tf.int32), tf.constant(num_tokens),
        tf.constant(temperature, tf.float32), tf.constant(seed, tf.int64),
    ).numpy()


def test_temperature_zero_equals_a_python_greedy_loop_over_predict(lm, traced):
    expected = []
    for prefix, length in zip(PREFIXES, LENGTHS):
        sequence = prefix[:length]
        for _ in range(7):
            logits = lm.predict(np.array([sequence]), verbose=0)
            sequence.append(int(np.argmax(logits[0, -1])))
        expected.append(sequence[length:])
    generated = run(traced, 7, 0.0)
    assert generated.tolist() == expected
    assert len({tuple(row) for row in expected}) > 1 and any(len(set(row)) > 1 for row in expected)


def test_sampling_is_reproducible_with_a_seed_and_differs_between_seeds(lm, traced):
    first = run(traced, 12, 1.0, seed=5)
    np.testing.assert_array_equal(first, run(traced, 12, 1.0, seed=5))
    assert not np.array_equal(first, run(traced, 12, 1.0, seed=6))
    assert not np.array_equal(first, run(traced, 12, 0.0))


def test_a_vanishing_temperature_is_greedy(lm, traced):
    greedy = run(traced, 9, 0.0)
    for temperature in (1e-4, 1e-30):
        np.testing.assert_array_equal(run(traced, 9, temperature, seed=11), greedy)


def test_per_row_temperatures(lm, traced):
    mixed = run(traced, 9, [0.0, 50.0, 0.0], seed=2)
    greedy = run(traced, 9, 0.0)
    np.testing.assert_array_equal(mixed[[0, 2]], greedy[[0, 2]])
    assert not np.array_equal(mixed[1], greedy[1])


def test_samples_follow_the_softmax_of_logits_over_temperature():
    """A constant "model" with fixed logits: sampled frequencies match softmax(logits / T)."""
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))

    def constant_lm(ids):
        return tf.broadcast_to(tf.constant(logits), [tf.shape(ids)[0], tf.shape(ids)[1], 4])

    for temperature in (1.0, 2.0):
        tokens = generate(constant_lm, tf.zeros([500, 1], tf.int32), tf.ones([500], tf.int32), 8, temperature, seed=0)
        frequencies = np.bincount(tokens.numpy().reshape(-1), minlength=4) / 4000
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        np.testing.assert_allclose(frequencies, expected, atol=0.03)


def test_zero_new_tokens_and_prefix_at_full_width(traced):
    assert run(traced, 0, 0.0).shape == (3, 0)
    assert run(traced, 3, 0.0, prefixes=[[2, 5, 7, 1]], lengths=[4]).shape == (1, 3)


@pytest.mark.parametrize(
    "lengths, num_tokens, temperature, message",
    [([0, 2, 1], 3, 0.0, "at least one token"), ([5, 2, 1], 3, 0.0, "exceeds"),
     (LENGTHS, -1, 0.0, "num_tokens must be >= 0"), (LENGTHS, 3, -0.5, "temperature must be a finite number >= 0"),
     (LENGTHS, 3, float("nan"), "temperature must be a finite number >= 0")],
)
def test_bad_arguments_fail_with_a_message(traced, lengths, num_tokens, temperature, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run(traced, num_tokens, temperature, lengths=lengths)


def test_next_token_argmax_and_sampling():
    logits = tf.constant([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    seed = tf.constant([1, 2], tf.int64)
    assert next_token(logits, tf.constant([0.0, 0.0]), seed).numpy().tolist() == [1, 0]
    draws = next_token(tf.tile(logits[:1], [200, 1]), tf.fill([200], 1.0), seed).numpy()
    assert set(draws) == {0, 1, 2}


def test_traced_graph_uses_core_tensorflow_ops_only(traced):
    graph = traced.get_concrete_function().graph.as_graph_def()
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    ops -= {function.signature.name for function in graph.library.function}
    assert {"StatelessMultinomial", "TensorScatterUpdate"} <= ops
    assert any(op in ops for op in ("While", "StatelessWhile"))
    # tf.raw_ops holds core TensorFlow's ops only; tensorflow-text's are registered elsewhere.
    assert sorted(op for op in ops if not hasattr(tf.raw_ops, op)) == []
