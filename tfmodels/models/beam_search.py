"""Beam search (and greedy search, its beam width 1) inside the graph, for any step-wise decoder.

Specs: notes-002-part2.md §43 (seed 002 L3464–3526) and notes-001.md §9 (seed 001 L408–464).

* **Greedy search** (§43 L3468): the most probable token at every step, until ``<eos>`` or the
  maximum length. It is beam search with k = 1 (§43 L3504, notes-001 L441).
* **Beam search** (§43 L3488–3504, notes-001 L416–428): start from ``<bos>`` with one candidate of
  score 0; extend each of the k candidates by every token (score = sum of log-probabilities), keep
  the k best of the k·n extensions; repeat until every candidate has emitted ``<eos>`` or the
  maximum length is reached; output the best candidate. Cost O(k·n·T) (§43 L3502; notes-001's
  "exponential" claim at L457 is wrong).
* **Final score and length penalty**: the notes give two forms.

  - notes-001 L430–439 (``length_penalty="notes"``, the default): ``score / (5 + L)^α``. This is
    GNMT's penalty (Wu et al., 2016) *without* its ``/ 6^α`` normaliser; GNMT's
    ``score / ((5 + L) / 6)^α`` is ``length_penalty="gnmt"``. The two differ by the constant
    factor ``6^α``, so they rank candidates identically; only the reported scores differ.
  - notes-002 §43 [IMG L3508] (``length_penalty="average"``): ``(1 / L^α) · log P(y_1..y_L)``,
    d2l's form; α = 0 leaves the raw log-probability, α = 1 is the mean log-probability per token.

  α = 0.75 by default (§43 L3513). ``L`` counts the generated tokens including ``<eos>`` — the
  terms of the sum ``Σ_{t'=1}^{L} log P(y_t' | …)``. notes-001 (L436) says the penalty favours
  long sequences "because their cumulative probability is higher"; in fact log-probabilities only
  fall as a sequence grows, and dividing a negative score by a growing denominator raises it —
  that is why the penalty helps longer candidates.

Which candidates compete at the end (§43 L3510: "all candidate sequences encountered, including
those that ended with ``<eos>`` earlier"): every hypothesis that emitted ``<eos>`` at any step is
a candidate, kept in a per-row record even if it later drops out of the beam. A hypothesis that
emitted ``<eos>`` is **finished**: it stays in the beam frozen (its only extension is itself, at
no cost, written as ``<pad>``), so finished and unfinished hypotheses compete for the k places
by raw log-probability as the notes describe, and k = 1 is exactly greedy search. Hypotheses cut
off by the maximum length compete only when a row has no finished candidate at all. d2l's
figure also counts every unfinished *prefix* (``A``, ``C``, ``AB``, …) as an output candidate;
that would let a translation end in mid-sentence without ``<eos>``, so it is not done here.

``<pad>`` and ``<bos>`` are never generated (their log-probability is set to −∞): ``<pad>`` marks
the end of a finished sequence and ``<bos>`` only starts one.

The loop is a ``tf.while_loop`` over core ops (``TopKV2``, ``GatherV2``, ``LogSoftmax``, …): it
runs inside a SavedModel on stock TF-Serving; the maximum length is fixed per call, and the loop
stops early once every hypothesis has finished.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from tfmodels.models.generation import next_token

LENGTH_PENALTIES = ("notes", "gnmt", "average")


def length_penalty(length, alpha: float = 0.75, form: str = "notes") -> tf.Tensor:
    """The denominator of the final score for a candidate of ``length`` tokens.

    Args:
        length: ``L``, tokens including ``<eos>`` (a number or an int/float tensor).
        alpha: α (0.75 in §43 L3513).
        form: ``notes`` (``(5 + L)^α``, notes-001 L430–439), ``gnmt`` (``((5 + L) / 6)^α``) or
            ``average`` (``L^α``, notes-002 §43 L3508).

    Example (notes-001 §9's check: score −6, L = 3, α = 1 → −0.75):
        >>> float(-6.0 / length_penalty(3, alpha=1.0))
        -0.75
    """
    if form not in LENGTH_PENALTIES:
        raise ValueError(f"length_penalty must be one of {LENGTH_PENALTIES}, got {form!r}")
    length = tf.cast(length, tf.float32)
    base = {"notes": 5.0 + length, "gnmt": (5.0 + length) / 6.0, "average": length}[form]
    return tf.pow(base, alpha)


def _beams(tensor: tf.Tensor, batch: tf.Tensor, k: int) -> tf.Tensor:
    return tf.reshape(tensor, tf.concat([[batch, k], tf.shape(tensor)[1:]], 0))


def _flat(tensor: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tensor, tf.concat([[-1], tf.shape(tensor)[2:]], 0))


def beam_search(
    step_fn: Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]],
    initial_state: Any,
    batch_size,
    beam_width: int,
    max_length: int,
    bos_id: int,
    eos_id: int,
    pad_id: int = 0,
    alpha: float = 0.75,
    penalty: str = "notes",
) -> dict[str, tf.Tensor]:
    """Beam search with the notes' length penalty; ``beam_width=1`` is greedy search.

    Args:
        step_fn: ``(tokens [B·k] int32, state) -> (logits [B·k, V], new_state)``: one decoder
            step for every hypothesis. ``state`` is a nest of tensors whose first axis is ``B·k``
            (hypothesis ``j`` of row ``b`` at index ``b·k + j``); the search reorders it as
            hypotheses are chosen. Anything constant per row (an encoder's output) is closed over,
            repeated k times (``tf.repeat(x, k, axis=0)``).
        initial_state: the state before ``<bos>``, first axis ``B·k``.
        batch_size: ``B`` (an int or a scalar tensor).
        beam_width: ``k`` ≥ 1 (static).
        max_length: the most tokens generated per row, ``<eos>`` included.
        bos_id: the start token fed at the first step.
        eos_id: the token that finishes a hypothesis.
        pad_id: written after ``<eos>``; never generated.
        alpha: α of the length penalty.
        penalty: the length penalty's form (:func:`length_penalty`).

    Returns:
        ``ids`` int32 ``[B, max_length]`` (the best candidate, ``<eos>`` included, then
        ``<pad>``), ``lengths`` int32 ``[B]`` (tokens including ``<eos>``; ``max_length`` for a
        candidate cut off without ``<eos>``), ``log_prob`` float32 ``[B]`` (its summed
        log-probability) and ``score`` float32 ``[B]`` (``log_prob / length_penalty``).

    Example:
        >>> table = tf.math.log([[0.1, 0.1, 0.5, 0.3], [0.1, 0.1, 0.2, 0.6]])  # pad, bos, a, eos
        >>> step = lambda tokens, state: (tf.gather(table, tf.minimum(state, 1)), state + 1)
        >>> out = beam_search(step, tf.zeros([2], tf.int32), 1, 2, 5, bos_id=1, eos_id=3)
        >>> out["ids"].numpy().tolist(), out["lengths"].numpy().tolist()
        ([[2, 3, 0, 0, 0]], [2])
    """
    if beam_width < 1 or max_length < 1:
        raise ValueError(f"beam_width and max_length must be >= 1, got {beam_width} and {max_length}")
    k, m = beam_width, max_length
    batch = tf.cast(batch_size, tf.int32)
    neg_inf = tf.constant(float("-inf"))

    def penalised(log_prob, length):
        return log_prob / length_penalty(length, alpha, penalty)

    def body(t, tokens, state, sequences, log_probs, finished, best):
        logits, state = step_fn(tf.reshape(tokens, [-1]), state)
        log_p = _beams(tf.nn.log_softmax(tf.cast(logits, tf.float32)), batch, k)  # [B, k, V]
        vocab = tf.shape(log_p)[2]
        never = tf.reduce_any(tf.range(vocab)[:, None] == tf.constant([pad_id, bos_id]), axis=1)
        extended = tf.where(never, neg_inf, log_probs[:, :, None] + log_p)
        frozen = tf.where(tf.range(vocab) == pad_id, log_probs[:, :, None], neg_inf)
        candidates = tf.reshape(tf.where(finished[:, :, None], frozen, extended), [batch, k * vocab])
        log_probs, index = tf.math.top_k(candidates, k)
        parent, tokens = index // vocab, tf.cast(index % vocab, tf.int32)
        sequences = tf.gather(sequences, parent, batch_dims=1) + tf.one_hot(t, m, dtype=tf.int32) * tokens[:, :, None]
        was_finished = tf.gather(finished, parent, batch_dims=1)
        alive = tf.math.is_finite(log_probs)
        newly = ~was_finished & alive & (tokens == eos_id)
        finished = was_finished | newly | ~alive  # a beam with no finite candidate left is dead
        state = tf.nest.map_structure(lambda s: _flat(tf.gather(_beams(s, batch, k), parent, batch_dims=1)), state)
        # Every hypothesis that just emitted <eos> is a candidate: keep each row's best.
        scores = tf.where(newly, penalised(log_probs, t + 1), neg_inf)
        top = tf.argmax(scores, axis=1, output_type=tf.int32)
        top_score = tf.gather(scores, top, batch_dims=1)
        better = top_score > best["score"]
        new = {
            "score": top_score,
            "log_prob": tf.gather(log_probs, top, batch_dims=1),
            "ids": tf.gather(sequences, top, batch_dims=1),
            "lengths": tf.fill([batch], t + 1),
        }
        best = {key: tf.where(better if value.shape.rank == 1 else better[:, None], new[key], value) for key, value in best.items()}
        return t + 1, tokens, state, sequences, log_probs, finished, best

    start_scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], neg_inf)], 0)[None], [batch, 1])  # one start candidate
    best = {
        "score": tf.fill([batch], neg_inf),
        "log_prob": tf.fill([batch], neg_inf),
        "ids": tf.fill([batch, m], pad_id),
        "lengths": tf.zeros([batch], tf.int32),
    }
    loop_vars = (
        tf.constant(0),
        tf.fill([batch, k], bos_id),
        initial_state,
        tf.fill([batch, k, m], pad_id),
        start_scores,
        tf.zeros([batch, k], tf.bool),
        best,
    )
    _, _, _, sequences, log_probs, finished, best = tf.while_loop(
        lambda t, tokens, state, sequences, log_probs, finished, best: (t < m) & ~tf.reduce_all(finished),
        body,
        loop_vars,
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None, k]),
            tf.nest.map_structure(lambda s: tf.TensorShape([None, *s.shape[1:]]), initial_state),
            tf.TensorShape([None, k, m]),
            tf.TensorShape([None, k]),
            tf.TensorShape([None, k]),
            {"score": tf.TensorShape([None]), "log_prob": tf.TensorShape([None]), "ids": tf.TensorShape([None, m]),
             "lengths": tf.TensorShape([None])},
        ),
    )
    # A row without any finished candidate outputs its best hypothesis cut off at max_length.
    cut = tf.argmax(log_probs, axis=1, output_type=tf.int32)
    cut_log_prob = tf.gather(log_probs, cut, batch_dims=1)
    has_finished = tf.math.is_finite(best["score"])
    return {
        "ids": tf.where(has_finished[:, None], best["ids"], tf.gather(sequences, cut, batch_dims=1)),
        "lengths": tf.where(has_finished, best["lengths"], m),
        "log_prob": tf.where(has_finished, best["log_prob"], cut_log_prob),
        "score": tf.where(has_finished, best["score"], penalised(cut_log_prob, m)),
    }


def sample(
    step_fn: Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]],
    initial_state: Any,
    batch_size,
    max_length: int,
    bos_id: int,
    eos_id: int,
    temperature,
    seed,
    pad_id: int = 0,
) -> dict[str, tf.Tensor]:
    """Temperature-softmax sampling (notes-001 §1, seed 001 L7): each token drawn from ``softmax(logits / T)``.

    T = 0 puts all weight on the maximum (greedy search); large T flattens the distribution. The
    draws are stateless (:func:`tfmodels.models.generation.next_token`, step ``t`` seeded by
    ``(seed, t)``), so the same request gives the same answer. A row stops at ``<eos>``.

    Args:
        step_fn, initial_state: as for :func:`beam_search` with k = 1 (first axis ``B``).
        batch_size: ``B``.
        max_length: the most tokens per row, ``<eos>`` included.
        bos_id, eos_id, pad_id: as for :func:`beam_search`.
        temperature: float scalar ≥ 0.
        seed: int scalar.

    Returns:
        ``ids`` int32 ``[B, max_length]``, ``lengths`` int32 ``[B]`` and ``log_prob`` float32 ``[B]``
        (the model's log-probability of the drawn tokens, at temperature 1).
    """
    batch = tf.cast(batch_size, tf.int32)
    temperature = tf.fill([batch], tf.cast(temperature, tf.float32))
    seed = tf.cast(seed, tf.int64)
    check = tf.debugging.Assert(
        tf.reduce_all(tf.math.is_finite(temperature) & (temperature >= 0)), ["temperature must be a finite number >= 0"]
    )

    def body(t, tokens, state, ids, lengths, log_prob, finished):
        logits, state = step_fn(tokens, state)
        never = tf.reduce_any(tf.range(tf.shape(logits)[1])[:, None] == tf.constant([pad_id, bos_id]), axis=1)
        log_p = tf.where(never, float("-inf"), tf.nn.log_softmax(tf.cast(logits, tf.float32)))
        token = next_token(log_p, temperature, tf.stack([seed, tf.cast(t, tf.int64)]))
        token = tf.where(finished, pad_id, token)
        ids += tf.one_hot(t, max_length, dtype=tf.int32) * token[:, None]
        log_prob += tf.where(finished, 0.0, tf.gather(log_p, token, batch_dims=1))
        lengths += tf.cast(~finished, tf.int32)
        return t + 1, token, state, ids, lengths, log_prob, finished | (token == eos_id)

    with tf.control_dependencies([check]):
        start = tf.fill([batch], bos_id)
    _, _, _, ids, lengths, log_prob, _ = tf.while_loop(
        lambda t, tokens, state, ids, lengths, log_prob, finished: (t < max_length) & ~tf.reduce_all(finished),
        body,
        (tf.constant(0), start, initial_state, tf.fill([batch, max_length], pad_id), tf.zeros([batch], tf.int32),
         tf.zeros([batch]), tf.zeros([batch], tf.bool)),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]),
                          tf.nest.map_structure(lambda s: tf.TensorShape([None, *s.shape[1:]]), initial_state),
                          tf.TensorShape([None, max_length]), tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([None])),
    )
    return {"ids": ids, "lengths": lengths, "log_prob": log_prob}


def translate(
    decoder_step: Callable,
    model,
    source_ids,
    max_length: int,
    bos_id: int,
    eos_id: int,
    beam_width: int = 1,
    alpha: float = 0.75,
    penalty: str = "notes",
) -> dict[str, tf.Tensor]:
    """Decodes source ids with an encoder–decoder model: greedy (``beam_width=1``) or beam search (§43).

    Args:
        decoder_step: the model family's ``decoder_step(model, source_ids, max_length, copies) ->
            (step_fn, initial_state)`` (:func:`tfmodels.models.seq2seq.decoder_step`,
            :func:`tfmodels.models.transformer.decoder_step`).
        model: the trained model.
        source_ids: ``[B, S]`` int ids, padded with 0.
        max_length: the most target tokens, ``<eos>`` included.
        bos_id, eos_id: the target vocabulary's start and end tokens.
        beam_width: k (1 = greedy).
        alpha, penalty: the length penalty (:func:`length_penalty`).

    Returns:
        :func:`beam_search`'s ``ids``, ``lengths``, ``log_prob`` and ``score``.
    """
    source_ids = tf.cast(source_ids, tf.int32)
    step, state = decoder_step(model, source_ids, max_length, beam_width)
    return beam_search(step, state, tf.shape(source_ids)[0], beam_width, max_length, bos_id, eos_id, alpha=alpha, penalty=penalty)
