"""Beam and greedy search (notes-002-part2 §43, notes-001 §9): toy step tables with known answers."""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.models.beam_search import beam_search, length_penalty

PAD, BOS, A, B, C, EOS = range(6)
VOCAB = 6
REAL = (A, B, C, EOS)  # the tokens a hypothesis can emit (pad and bos never are)


class PrefixTable:
    """A toy "model": the next-token distribution is a table indexed by the whole prefix.

    The state is the prefix coded as an integer (base ``VOCAB``), so every prefix may have its own
    distribution, and the exhaustive search below can score any sequence with the same table.
    """

    def __init__(self, max_length, rng=None, overrides=None):
        self.size = VOCAB ** (max_length + 1)
        if rng is None:  # A, B, C equally likely, never <eos>
            self.probs = np.tile([0, 0, 1 / 3, 1 / 3, 1 / 3, 0], (self.size, 1))
        else:
            logits = rng.normal(0, 2, (self.size, VOCAB))
            self.probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        for prefix, distribution in (overrides or {}).items():
            self.probs[self.code(prefix)] = distribution
        self.table = tf.constant(np.log(np.maximum(self.probs, 1e-30)), tf.float32)

    @staticmethod
    def code(prefix):
        c = 0
        for token in prefix:
            c = c * VOCAB + token
        return c

    def step(self, tokens, state):
        # Finished hypotheses keep appending <pad>: wrap their (unused) codes into the table.
        state = tf.where(tokens == BOS, tf.zeros_like(state), (state * VOCAB + tf.cast(tokens, tf.int64)) % self.size)
        return tf.gather(self.table, state), state

    def log_prob(self, sequence):
        return sum(math.log(self.probs[self.code(sequence[:t])][token]) for t, token in enumerate(sequence))


def search(table, k, max_length, batch=1, **kwargs):
    out = beam_search(table.step, tf.zeros([batch * k], tf.int64), batch, k, max_length, bos_id=BOS, eos_id=EOS, **kwargs)
    return {key: value.numpy() for key, value in out.items()}


def greedy(table, max_length):
    sequence = []
    for _ in range(max_length):
        p = table.probs[table.code(sequence)].copy()
        p[[PAD, BOS]] = -1
        sequence.append(int(np.argmax(p)))
        if sequence[-1] == EOS:
            break
    return sequence


def exhaustive(table, max_length, alpha, penalty="notes"):
    """All n^T sequences (§43 L3478): the best finished one under the same penalised score."""
    best = (-math.inf, None)
    for length in range(1, max_length + 1):
        for body in itertools.product((A, B, C), repeat=length - 1):
            sequence = [*body, EOS]
            score = table.log_prob(sequence) / float(length_penalty(length, alpha, penalty))
            best = max(best, (score, sequence))
    return best


def unpadded(ids, length):
    return ids[:length].tolist()


# d2l's figure for §43 (L3472): greedy A B C <eos> = 0.5·0.4·0.4·0.6 = 0.048; A C B <eos> = 0.5·0.3·0.6·0.6 = 0.054.
D2L = {
    (): [0, 0, 0.5, 0.2, 0.2, 0.1],
    (A,): [0, 0, 0.1, 0.4, 0.3, 0.2],
    (A, B): [0, 0, 0.2, 0.2, 0.4, 0.2],
    (A, C): [0, 0, 0.1, 0.6, 0.2, 0.1],
    (A, B, C): [0, 0, 0.1, 0.1, 0.2, 0.6],
    (A, C, B): [0, 0, 0.1, 0.1, 0.2, 0.6],
}


def test_d2l_example_greedy_misses_the_better_sequence_that_beam_search_finds():
    table = PrefixTable(4, overrides=D2L)
    assert greedy(table, 4) == [A, B, C, EOS]
    one = search(table, 1, 4, alpha=0.0)
    assert unpadded(one["ids"][0], one["lengths"][0]) == [A, B, C, EOS]
    assert math.exp(one["log_prob"][0]) == pytest.approx(0.048, rel=1e-5)
    two = search(table, 2, 4, alpha=0.0)
    assert unpadded(two["ids"][0], two["lengths"][0]) == [A, C, B, EOS]
    assert math.exp(two["log_prob"][0]) == pytest.approx(0.054, rel=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_beam_width_one_is_greedy_search(seed):
    table = PrefixTable(5, np.random.default_rng(seed))
    out = search(table, 1, 5)
    expected = greedy(table, 5)
    assert unpadded(out["ids"][0], out["lengths"][0]) == expected
    assert out["log_prob"][0] == pytest.approx(table.log_prob(expected), abs=1e-4)


@pytest.mark.parametrize("penalty", ["notes", "gnmt", "average"])
@pytest.mark.parametrize("seed", range(4))
def test_a_beam_wider_than_all_sequences_equals_exhaustive_search(seed, penalty):
    """§43: exhaustive search over n = 3 tokens (+ <eos>) and T = 4; k = 4^4 keeps every hypothesis."""
    table = PrefixTable(4, np.random.default_rng(seed))
    score, sequence = exhaustive(table, 4, alpha=0.75, penalty=penalty)
    out = search(table, len(REAL) ** 4, 4, alpha=0.75, penalty=penalty)
    assert unpadded(out["ids"][0], out["lengths"][0]) == sequence
    assert out["score"][0] == pytest.approx(score, abs=1e-4)


def test_length_penalty_is_the_notes_formula():
    """notes-001 L430–439: score / (5 + L)^α; §9's check −6, L = 3, α = 1 → −0.75; α = 0 keeps raw scores."""
    assert float(-6.0 / length_penalty(3, 1.0, "notes")) == pytest.approx(-0.75)
    assert float(length_penalty(7, 0.75, "notes")) == pytest.approx(12**0.75)
    assert float(length_penalty(7, 0.75, "gnmt")) == pytest.approx((12 / 6) ** 0.75)
    assert float(length_penalty(7, 0.75, "average")) == pytest.approx(7**0.75)
    assert float(length_penalty(4, 0.0, "notes")) == 1.0
    with pytest.raises(ValueError, match="length_penalty must be one of"):
        length_penalty(3, 1.0, "wu")


def test_the_penalty_decides_between_a_short_and_a_long_candidate():
    """'A <eos>' has log P = ln 0.45 ≈ −0.799 (L = 2); 'B B <eos>' ln(0.45·0.7·0.5) ≈ −1.848 (L = 3).

    Raw (α = 0): the short one. Notes' form with α = 1: −0.799/7 = −0.114 vs −1.848/8 = −0.231, still
    short. Average form with α = 1: −0.399 vs −0.616, short. With α = 3 (average): −0.0999 vs −0.0684: long.
    """
    table = PrefixTable(3, overrides={
        (): [0, 0, 0.45, 0.45, 0.05, 0.05],
        (A,): [0, 0, 0.0, 0.0, 0.0, 1.0],
        (B,): [0, 0, 0.0, 0.7, 0.0, 0.3],
        (B, B): [0, 0, 0.0, 0.0, 0.5, 0.5],
    })
    short, long = [A, EOS], [B, B, EOS]
    log_short, log_long = math.log(0.45), math.log(0.45 * 0.7 * 0.5)
    for alpha, penalty, expected, score in [
        (0.0, "notes", short, log_short),
        (1.0, "notes", short, log_short / 7),
        (1.0, "average", short, log_short / 2),
        (3.0, "average", long, log_long / 27),
    ]:
        out = search(table, 3, 3, alpha=alpha, penalty=penalty)
        assert unpadded(out["ids"][0], out["lengths"][0]) == expected, (alpha, penalty)
        assert out["score"][0] == pytest.approx(score, rel=1e-4)


def test_finished_hypotheses_stop_and_are_padded():
    """Once <eos> is emitted nothing follows it; the loop ends when every hypothesis has finished."""
    table = PrefixTable(4, overrides={(): [0, 0, 0.1, 0.1, 0.1, 0.7], (A,): [0, 0, 0, 0, 0, 1.0],
                                      (B,): [0, 0, 0, 0, 0, 1.0], (C,): [0, 0, 0, 0, 0, 1.0]})
    calls = []

    def counting_step(tokens, state):
        calls.append(1)
        return table.step(tokens, state)

    out = beam_search(counting_step, tf.zeros([3], tf.int64), 1, 3, 4, bos_id=BOS, eos_id=EOS)
    assert out["ids"].numpy()[0].tolist() == [EOS, PAD, PAD, PAD]
    assert out["lengths"].numpy().tolist() == [1]
    loop = tf.function(lambda: beam_search(table.step, tf.zeros([3], tf.int64), 1, 3, 4, bos_id=BOS, eos_id=EOS))
    graph = loop.get_concrete_function().graph
    assert any(op.type in ("While", "StatelessWhile") for op in graph.get_operations())
    assert len(calls) == 2  # eagerly: two steps (all three beams end with <eos> at step 2), not four


def test_rows_without_eos_return_the_best_hypothesis_cut_at_max_length():
    table = PrefixTable(3, overrides={(): [0, 0, 0.9, 0.1, 0, 0], (A,): [0, 0, 0.9, 0.1, 0, 0],
                                      (A, A): [0, 0, 0.9, 0.1, 0, 0]})
    out = search(table, 2, 3)
    assert out["ids"][0].tolist() == [A, A, A] and out["lengths"][0] == 3
    assert out["log_prob"][0] == pytest.approx(3 * math.log(0.9), rel=1e-5)


def test_batched_rows_are_searched_independently_and_the_graph_equals_eager():
    tables = [PrefixTable(4, np.random.default_rng(seed)) for seed in (10, 11)]
    stacked = tf.concat([tables[0].table, tables[1].table], axis=0)
    offset = tf.constant([0, tables[0].size], tf.int64)

    def step(tokens, state):  # row b of a batch of 2 reads table b
        code = tf.where(tokens == BOS, tf.zeros_like(state), (state * VOCAB + tf.cast(tokens, tf.int64)) % tables[0].size)
        rows = tf.repeat(offset, 3)
        return tf.gather(stacked, code + rows), code

    args = (step, tf.zeros([6], tf.int64), 2, 3, 4)
    eager = beam_search(*args, bos_id=BOS, eos_id=EOS)
    graph = tf.function(lambda: beam_search(*args, bos_id=BOS, eos_id=EOS))()
    for key in eager:
        np.testing.assert_allclose(eager[key].numpy(), graph[key].numpy(), rtol=1e-6)
    for b, table in enumerate(tables):
        alone = search(table, 3, 4)
        assert eager["ids"].numpy()[b].tolist() == alone["ids"][0].tolist()
