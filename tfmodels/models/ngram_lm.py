"""An n-gram language model with Laplace smoothing (notes-002-part2 §22–§23, §33).

A count model, not a neural network, so plain Python/NumPy: it stores the n-gram counts of
a training corpus and turns them into smoothed conditional probabilities (§22, [REF d2l]):

    P̂(w) = (n(w) + ε₁/m) / (n + ε₁)
    P̂(w | context) = (n(context, w) + ε_k·P̂(w)) / (n(context) + ε_k)     (k = len(context) + 1)

with ``m`` the vocabulary size, ``n`` the number of training tokens and the Markov assumption
of §23: a token depends on the previous ``order − 1`` tokens only, fewer at the start of a
sequence (the trigram model scores ``p(x1) p(x2|x1) p(x3|x1,x2) p(x4|x2,x3)``). Scoring a
sequence costs O(T) (§23). ``n(context)`` counts the times the context is followed by a token,
so every conditional distribution sums to one (the notes' ``n(x)`` differs at sequence ends);
an unseen context gives the unigram ``P̂(w)``.

Perplexity is the notes' definition (§33, seed lines 3029–3049): the exponential of the mean
negative log-likelihood per token, ``exp((1/n) Σ_t −log P(x_t | x_<t))``, averaged over all
tokens of all sequences. 1 is perfect, ``m`` is the uniform model, +∞ a zero-probability token.

The model works on token ids ``0 .. m−1``; ``pipelines.text`` provides the counts
(``ngram_counts``) and the vocabulary that maps text to ids.

:class:`NgramLanguageModel` is the closed form in Python/NumPy (dictionaries of counts, for
reading and for the language models' baselines). :class:`CountingNgramLM` is the same model as a
Keras model for the one trainer (the ``ngram_lm`` recipe): dense count tables as non-trainable
weights, filled by ``train_step``, and served as a language model from ids to logits.
"""

from __future__ import annotations

import collections
import math
from typing import Iterable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf


class NgramLanguageModel:
    """Laplace-smoothed n-gram language model over token ids (§22–§23).

    Args:
        vocab_size: ``m``, the number of token ids (reserved tokens included).
        order: ``n`` of the n-gram: 1 unigram, 2 bigram, 3 trigram, …
        epsilon: the smoothing constant ``ε`` for every order, or one per order
            ``(ε₁, ε₂, …)``; 0 gives the unsmoothed relative frequencies. The notes give no value;
            1.0 is the "small constant" default.

    Example:
        >>> from collections import Counter
        >>> corpus = [0, 1, 0, 1, 2]
        >>> counts = [Counter((t,) for t in corpus), Counter(zip(corpus, corpus[1:]))]
        >>> lm = NgramLanguageModel(vocab_size=3, order=2, epsilon=0.0).fit(counts)
        >>> round(math.exp(lm.log_probability([0, 1])), 6)  # n(a)/n · n(a,b)/n(a) = 2/5 · 2/2
        0.4
    """

    def __init__(self, vocab_size: int, order: int = 3, epsilon: float | Sequence[float] = 1.0):
        if vocab_size < 1 or order < 1:
            raise ValueError(f"vocab_size and order must be positive, got {vocab_size} and {order}")
        epsilons = [float(e) for e in epsilon] if isinstance(epsilon, Sequence) else [float(epsilon)] * order
        if len(epsilons) != order or min(epsilons) < 0:
            raise ValueError(f"epsilon needs {order} non-negative values, got {epsilon}")
        self.vocab_size = vocab_size
        self.order = order
        self.epsilons = epsilons
        self.unigram: np.ndarray | None = None
        # _followers[k][context] = {next id: n(context, next)} and _context_totals[k][context] =
        # n(context) for contexts of length k = 1 .. order - 1.
        self._followers: list[dict[tuple, dict[int, int]]] = []
        self._context_totals: list[dict[tuple, int]] = []

    def fit(self, counts: Sequence[Mapping[tuple, int]]) -> NgramLanguageModel:
        """Stores the counts and the smoothed unigram distribution.

        Args:
            counts: ``counts[k]`` maps (k+1)-tuples of token ids to their counts, for
                k = 0 .. order−1 (``pipelines.text.ngrams.ngram_counts`` over id sequences).
                Empty counts give the uniform model (with ε₁ > 0).

        Returns:
            The model itself.
        """
        if len(counts) < self.order:
            raise ValueError(f"an order-{self.order} model needs counts up to {self.order}-grams, got {len(counts)} tables")
        unigram_counts = np.zeros(self.vocab_size, dtype=np.float64)
        for (token,), count in counts[0].items():
            unigram_counts[self._checked(token)] += count
        eps = self.epsilons[0]
        total = unigram_counts.sum()
        if total + eps == 0:
            self.unigram = np.full(self.vocab_size, 1.0 / self.vocab_size)
        else:
            self.unigram = (unigram_counts + eps / self.vocab_size) / (total + eps)
        self._followers, self._context_totals = [{}], [{}]  # index 0: the empty context (unused)
        for k in range(1, self.order):
            followers: dict[tuple, dict[int, int]] = collections.defaultdict(dict)
            totals: collections.Counter = collections.Counter()
            for gram, count in counts[k].items():
                context, token = tuple(self._checked(t) for t in gram[:-1]), self._checked(gram[-1])
                followers[context][token] = followers[context].get(token, 0) + count
                totals[context] += count
            self._followers.append(dict(followers))
            self._context_totals.append(dict(totals))
        return self

    def _checked(self, token) -> int:
        token = int(token)
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token id {token} is outside the vocabulary 0..{self.vocab_size - 1}")
        return token

    def _context(self, history: Sequence[int]) -> tuple:
        """The last ``order − 1`` tokens of the history (all of it at the start of a sequence)."""
        return tuple(history[max(0, len(history) - (self.order - 1)) :]) if self.order > 1 else ()

    def probability(self, token: int, history: Sequence[int] = ()) -> float:
        """``P̂(token | history)`` under the Markov assumption (one smoothed count lookup)."""
        if self.unigram is None:
            raise RuntimeError("call fit(counts) first")
        prior = self.unigram[self._checked(token)]
        context = self._context(history)
        total = self._context_totals[len(context)].get(context, 0) if context else 0
        if total == 0:
            return float(prior)
        eps = self.epsilons[len(context)]
        count = self._followers[len(context)][context].get(token, 0)
        return float((count + eps * prior) / (total + eps))

    def distribution(self, history: Sequence[int] = ()) -> np.ndarray:
        """``P̂(· | history)`` over all ``vocab_size`` ids (sums to 1)."""
        if self.unigram is None:
            raise RuntimeError("call fit(counts) first")
        context = self._context([self._checked(t) for t in history])
        total = self._context_totals[len(context)].get(context, 0) if context else 0
        if total == 0:
            return self.unigram.copy()
        eps = self.epsilons[len(context)]
        counts = np.zeros(self.vocab_size, dtype=np.float64)
        for token, count in self._followers[len(context)][context].items():
            counts[token] = count
        return (counts + eps * self.unigram) / (total + eps)

    def log_probability(self, sequence: Sequence[int]) -> float:
        """``log P̂(x_1, …, x_T)`` (natural log) of one token-id sequence, in O(T); −inf if a token has probability 0."""
        total = 0.0
        for t, token in enumerate(sequence):
            p = self.probability(token, sequence[max(0, t - self.order + 1) : t])
            if p == 0.0:
                return -math.inf
            total += math.log(p)
        return total

    def perplexity(self, sequences: Iterable[Sequence[int]]) -> float:
        """``exp`` of the mean negative log-likelihood per token over all tokens of all sequences (§33).

        Args:
            sequences: held-out token-id sequences; each starts a new history.
        """
        log_likelihood, tokens = 0.0, 0
        for sequence in sequences:
            sequence = [int(t) for t in sequence]
            log_likelihood += self.log_probability(sequence)
            tokens += len(sequence)
        if tokens == 0:
            raise ValueError("perplexity of an empty corpus")
        return math.exp(-log_likelihood / tokens) if math.isfinite(log_likelihood) else math.inf

    def sample(self, prefix: Sequence[int], length: int, seed: int) -> list[int]:
        """Generates ``length`` tokens after ``prefix`` by repeated sampling ``x_t ~ P̂(x_t | x_<t)`` (§22).

        Args:
            prefix: the token ids to continue (may be empty).
            length: how many tokens to generate.
            seed: seeds NumPy's generator: the same seed gives the same text.

        Returns:
            The generated ids (the prefix not included).
        """
        rng = np.random.default_rng(seed)
        history = [self._checked(t) for t in prefix]
        generated = []
        for _ in range(length):
            token = int(rng.choice(self.vocab_size, p=self.distribution(history)))
            history.append(token)
            generated.append(token)
        return generated


def dense_table_entries(vocab_size: int, order: int) -> int:
    """Entries of the dense count tables of an order-``order`` model: ``m + m² + … + m^order`` (§23: storage grows as m^N)."""
    return sum(vocab_size**k for k in range(1, order + 1))


@keras.saving.register_keras_serializable(package="tfmodels")
class NgramCounts(keras.layers.Layer):
    """Dense n-gram count tables and the smoothed next-token log-probabilities they give (§22–§23).

    The table of k-grams (k = 1 .. order) is a non-trainable ``[m^(k−1), m]`` float32 variable:
    row ``Σ_j c_j·m^(c−1−j)`` holds ``n(c_0 … c_{k−2}, w)`` for every next token ``w`` (the notes'
    storage: "1000 × 1000 = 1,000,000 possible pairs" for bigrams). Being weights, the counts are
    saved in checkpoints, ``BackupAndRestore`` state and ``model.keras``. Counting is checked on
    one replica only (under ``MirroredStrategy`` some counts came out doubled, see the
    ``ngram_lm`` recipe). Float32 counts are exact up to 2²⁴.

    ``call(ids)`` gives, at every position t of ``[B, T]`` ids, ``log P̂(· | ids[t−c+1 .. t])`` with
    ``c = min(order − 1, t + 1)`` context tokens: the formula and conventions of
    :class:`NgramLanguageModel` (an unseen context gives the unigram ``P̂``), so a window is scored
    as :func:`tfmodels.recipes.language_models.ngram_window_perplexity` scores it. Core TF ops only.

    Args:
        vocab_size: ``m``.
        order: ``n`` of the n-gram.
        epsilon: the Laplace ``ε`` of every order (≥ 0).
        pad_id: an id that is never counted (the padding of the counting chunks).
    """

    def __init__(self, vocab_size: int, order: int, epsilon: float, pad_id: int = 0, **kwargs):
        super().__init__(**kwargs)
        if vocab_size < 1 or order < 1 or epsilon < 0:
            raise ValueError(f"vocab_size and order must be positive and epsilon >= 0, got {vocab_size}, {order}, {epsilon}")
        if vocab_size**order >= 2**31:
            raise ValueError(f"{order}-gram ids of a {vocab_size}-token vocabulary overflow int32 table indices")
        self.vocab_size, self.order, self.epsilon, self.pad_id = vocab_size, order, float(epsilon), pad_id
        self.tables = [
            # Each replica adds the all-reduced counts of the global batch (see count), so the
            # replicas' tables agree and one replica's update is the update.
            self.add_weight(shape=(vocab_size ** (k - 1), vocab_size), initializer="zeros", dtype="float32",
                            trainable=False, aggregation="only_first_replica", name=f"counts_{k}gram")
            for k in range(1, order + 1)
        ]

    def _index(self, tokens: tf.Tensor, start: int, length, k: int) -> tf.Tensor:
        """Base-m index of the k-grams ``tokens[:, s : s + k]`` for ``s = start .. start + length − 1``."""
        index = tf.zeros_like(tokens[:, start : start + length])
        for j in range(k):
            index = index * self.vocab_size + tokens[:, start + j : start + j + length]
        return index

    def count(self, tokens: tf.Tensor) -> None:
        """Adds the counts of a batch of chunks ``[B, L]``: the k-grams that start in the first ``L − order + 1`` positions.

        Consecutive chunks overlap by ``order − 1`` tokens, so every k-gram of the stream starts
        in exactly one chunk's counted positions; k-grams that hold ``pad_id`` are not counted.
        """
        tokens = tf.cast(tokens, tf.int32)
        starts = tf.shape(tokens)[1] - (self.order - 1)
        for k, table in enumerate(self.tables, start=1):
            grams = tf.stack([tokens[:, j : j + starts] for j in range(k)], axis=-1)
            counted = tf.cast(tf.reduce_all(grams != self.pad_id, axis=-1), tf.float32)
            index = self._index(tokens, 0, starts, k)
            delta = tf.math.unsorted_segment_sum(tf.reshape(counted, [-1]), tf.reshape(index, [-1]), self.vocab_size**k)
            # Under a distribution strategy every replica counts its part of the global batch.
            delta = tf.distribute.get_replica_context().all_reduce("sum", delta)
            table.assign_add(tf.reshape(delta, table.shape))

    def call(self, ids):
        ids = tf.cast(ids, tf.int32)
        m, length = self.vocab_size, tf.shape(ids)[1]
        unigram = self.tables[0][0]
        total = tf.reduce_sum(unigram)
        # P̂(w) = (n(w) + ε/m) / (n + ε); the uniform model when nothing is counted and ε = 0.
        prior = tf.where(total + self.epsilon > 0, (unigram + self.epsilon / m) / (total + self.epsilon), tf.fill([m], 1.0 / m))
        probs = tf.broadcast_to(prior, tf.concat([tf.shape(ids), [m]], 0))
        context_length = tf.minimum(self.order - 1, tf.range(length) + 1)  # tokens read at position t
        for c in range(1, self.order):
            padded = tf.pad(ids, [[0, 0], [c - 1, 0]])  # positions t < c − 1 read padding, unused below
            rows = tf.gather(self.tables[c], self._index(padded, 0, length, c))  # n(context, ·): [B, T, m]
            seen = tf.reduce_sum(rows, axis=-1, keepdims=True)
            conditional = tf.where(seen > 0, tf.math.divide_no_nan(rows + self.epsilon * prior, seen + self.epsilon), prior)
            probs = tf.where((context_length == c)[None, :, None], conditional, probs)
        return tf.math.log(probs)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.vocab_size)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "order": self.order,
                "epsilon": self.epsilon, "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package="tfmodels")
class CountingNgramLM(keras.Model):
    """An n-gram LM on the one trainer: ``fit`` counts, the model maps ids ``[B, T]`` to logits ``[B, T, m]``.

    The logits are ``log P̂`` of :class:`NgramCounts`, so ``softmax(logits) = P̂`` and a compiled
    sparse cross-entropy is the n-gram model's negative log-likelihood: the default
    ``test_step`` logs the loss and perplexity. ``train_step`` adds the batch's counts
    (:meth:`NgramCounts.count` on the chunk ``[x_0, *y]``) and applies no gradients (there are no
    trainable weights; the optimizer ``compile`` receives is never used), then logs the batch's
    loss and metrics under the counts so far, with ``<pad>`` labels weighted 0. Every epoch adds
    the data's counts again: E epochs give E × the counts, the model of one epoch with ε / E.

    Args:
        vocab_size, order, epsilon, pad_id: as :class:`NgramCounts`.
        name: the model name.

    Example:
        >>> lm = CountingNgramLM(vocab_size=4, order=2, epsilon=1.0)
        >>> lm.counts.count(tf.constant([[1, 2, 1, 2]]))        # chunk of 4: bigrams starting at 0..2
        >>> lm.counts.tables[1].numpy()[1].tolist()              # n(1, ·)
        [0.0, 0.0, 2.0, 0.0]
    """

    def __init__(self, vocab_size: int, order: int, epsilon: float, pad_id: int = 0, name: str = "ngram_lm", **kwargs):
        ids = keras.Input(shape=(None,), dtype="int32", name="ids")
        counts = NgramCounts(vocab_size, order, epsilon, pad_id, name="counts")
        super().__init__(ids, counts(ids), name=name, **kwargs)
        self.counts = counts

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.counts.count(tf.concat([x[:, :1], y], axis=1))
        return self.test_step((x, y, tf.cast(y != self.counts.pad_id, tf.float32)))

    def get_config(self):
        counts = self.counts
        return {"vocab_size": counts.vocab_size, "order": counts.order, "epsilon": counts.epsilon,
                "pad_id": counts.pad_id, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)
