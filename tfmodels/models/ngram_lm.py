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
"""

from __future__ import annotations

import collections
import math
from typing import Iterable, Mapping, Sequence

import numpy as np


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
