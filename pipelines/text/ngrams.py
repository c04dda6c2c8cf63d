"""N-gram statistics of a corpus: counts in ``tf.data``, Laplace smoothing, Zipf's law.

notes-002-part2 §22–§24 (seed lines 2563–2641, 2675–2685):

* **counts** (§22, §23): ``n(x)``, ``n(x, x')``, ``n(x, x', x'')`` … of consecutive tokens,
  computed in ``tf.data`` (:func:`count_ngrams`) and equal to ``collections.Counter`` over the
  same n-grams. A corpus is a dataset of token sequences; n-grams never cross the boundary
  between two sequences. To count as d2l does over a whole book, pass the book as one sequence.
* **Laplace smoothing** (§22, [REF d2l] formulas), :func:`laplace_probability`.
* **Zipf's law** (§24): frequency against rank is a straight line on a log–log plot, for
  unigrams and for longer n-grams alike: :func:`plot_zipf`, :func:`zipf_exponent`.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

# n-gram rows are counted in chunks of this many: one tf.unique per chunk, merged in Python.
CHUNK = 65_536


def _ngram_rows(tokens: tf.Tensor, n: int) -> tf.Tensor:
    """[m, n] matrix of the m = len − n + 1 consecutive n-grams of a 1-D token tensor."""
    m = tf.maximum(tf.size(tokens) - n + 1, 0)
    return tf.stack([tokens[i : i + m] for i in range(n)], axis=1)


def _unique_rows(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    unique, _, counts = tf.raw_ops.UniqueWithCountsV2(x=rows, axis=[0], out_idx=tf.int64)
    return unique, counts


def _python_token(value):
    return value.decode("utf-8") if isinstance(value, bytes) else int(value)


def count_ngrams(sequences: tf.data.Dataset, n: int) -> collections.Counter:
    """Counts of the n-grams (runs of ``n`` consecutive tokens) of a corpus, computed in ``tf.data``.

    Each sequence becomes the matrix of its n-grams; the rows of all sequences are counted in
    chunks with ``tf.unique`` along axis 0 (exact: rows are compared token by token, no joined
    strings or hashes), and the chunk counts are summed in Python.

    Args:
        sequences: a dataset of 1-D token tensors (strings or integer ids).
        n: the n-gram order, 1 for unigrams.

    Returns:
        ``Counter`` of n-tuples (of ``str`` or ``int``) → count; the same as
        ``Counter(zip(*(seq[i:] for i in range(n))))`` summed over the sequences.

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([["a", "b", "a", "b", "c"]]))
        >>> count_ngrams(ds, 2)
        Counter({('a', 'b'): 2, ('b', 'a'): 1, ('b', 'c'): 1})
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rows = sequences.map(lambda tokens: _ngram_rows(tokens, n), num_parallel_calls=tf.data.AUTOTUNE)
    chunks = rows.unbatch().batch(CHUNK).map(_unique_rows, num_parallel_calls=tf.data.AUTOTUNE)
    counts: collections.Counter = collections.Counter()
    for unique, chunk_counts in chunks.as_numpy_iterator():
        for row, count in zip(unique, chunk_counts):
            counts[tuple(_python_token(t) for t in row)] += int(count)
    return counts


def ngram_counts(sequences: tf.data.Dataset, max_order: int = 3) -> list[collections.Counter]:
    """``[unigram, bigram, …, max_order-gram]`` counts of a corpus (see :func:`count_ngrams`).

    Args:
        sequences: a dataset of 1-D token tensors.
        max_order: the longest n-gram counted; 3 = unigrams, bigrams and trigrams (§23).
    """
    return [count_ngrams(sequences, n) for n in range(1, max_order + 1)]


def laplace_probability(
    ngram: tuple,
    counts: Sequence[Mapping[tuple, int]],
    vocab_size: int,
    epsilon: float | Sequence[float] = 1.0,
) -> float:
    """Laplace-smoothed ``P̂(w | context)`` for ``ngram = (*context, w)`` (§22, [REF d2l] formulas).

    ``P̂(x) = (n(x) + ε₁/m) / (n + ε₁)``,
    ``P̂(x'|x) = (n(x, x') + ε₂·P̂(x')) / (n(x) + ε₂)``,
    ``P̂(x''|x, x') = (n(x, x', x'') + ε₃·P̂(x'')) / (n(x, x') + ε₃)``, and so on for longer
    n-grams (the prior is always the smoothed unigram ``P̂(w)``, as in the notes' trigram
    formula). ``m`` is the vocabulary size and ``n`` the number of tokens; ``ε = 0`` gives the
    unsmoothed relative frequencies of §22, a large ``ε`` the uniform / unigram distribution.

    The context count in the denominator is the number of times the context is *followed by a
    token* (the sum of the n-gram counts that start with it). It equals the notes' ``n(x)``
    except for a context at the end of a sequence, where ``n(x)`` would make the conditional
    probabilities sum to less than one. An unseen context (count 0) gives the prior ``P̂(w)``
    (the value of the formula for every ``ε > 0``, also used for ``ε = 0``).

    This is the formula written out for reading and testing: it scans the counts on every call.
    ``tfmodels.models.ngram_lm.NgramLanguageModel`` evaluates it for whole distributions.

    Args:
        ngram: the tuple ``(*context, w)``; its length picks the order.
        counts: ``counts[k]`` is the Counter of (k+1)-grams (:func:`ngram_counts`).
        vocab_size: ``m``, the number of possible tokens.
        epsilon: ``ε`` for every order, or ``(ε₁, ε₂, …)`` one per order.

    Example (the spec's corpus ``"a b a b c"``: n = 5, n(a) = 2, n(a, b) = 2):
        >>> counts = [collections.Counter({("a",): 2, ("b",): 2, ("c",): 1}),
        ...           collections.Counter({("a", "b"): 2, ("b", "a"): 1, ("b", "c"): 1})]
        >>> laplace_probability(("a",), counts, 3, 0.0) * laplace_probability(("a", "b"), counts, 3, 0.0)
        0.4
    """
    order = len(ngram)
    eps = float(epsilon[order - 1]) if isinstance(epsilon, Sequence) else float(epsilon)
    if order == 1:
        total = sum(counts[0].values())
        if total + eps == 0:
            return 1.0 / vocab_size
        return (counts[0].get(ngram, 0) + eps / vocab_size) / (total + eps)
    prior = laplace_probability(ngram[-1:], counts, vocab_size, epsilon)
    context = ngram[:-1]
    context_count = sum(c for gram, c in counts[order - 1].items() if gram[:-1] == context)
    if context_count == 0:
        return prior
    return (counts[order - 1].get(ngram, 0) + eps * prior) / (context_count + eps)


def rank_frequencies(counts: Mapping) -> np.ndarray:
    """The counts sorted in decreasing order: ``result[i]`` is the count of the token of rank i + 1."""
    return np.sort(np.fromiter(counts.values(), dtype=np.float64))[::-1]


def zipf_exponent(counts: Mapping, first_rank: int = 10, min_count: int = 5) -> float:
    """Fits Zipf's law ``n_i ∝ 1 / i^α`` (§24, [REF d2l]): ``α`` of ``log n_i = −α·log i + c``.

    A least-squares line in log–log space over the ranks from ``first_rank`` (the notes: the law
    holds "after the first few words") to the last rank whose count is at least ``min_count``
    (rarer tokens share tied counts of 1, 2, … that flatten the tail into steps).

    Args:
        counts: token (or n-gram) → count.
        first_rank: the first rank in the fit (1-based).
        min_count: ranks with smaller counts are left out.

    Returns:
        The exponent ``α`` (positive for a decreasing law).
    """
    freqs = rank_frequencies(counts)
    ranks = np.arange(1, len(freqs) + 1)
    keep = (ranks >= first_rank) & (freqs >= min_count)
    if keep.sum() < 2:
        raise ValueError(f"too few ranks to fit: {keep.sum()} between rank {first_rank} and count {min_count}")
    slope, _ = np.polyfit(np.log(ranks[keep]), np.log(freqs[keep]), 1)
    return float(-slope)


def plot_zipf(counts_by_name: Mapping[str, Mapping], path: str | Path, title: str = "Zipf's law") -> Path:
    """Log–log plot of frequency against rank, one curve per count table (§24), as a PNG.

    Args:
        counts_by_name: e.g. ``{"unigram": c1, "bigram": c2, "trigram": c3}``.
        path: the PNG file to write (parent folders are created).
        title: the plot title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, counts in counts_by_name.items():
        freqs = rank_frequencies(counts)
        ax.loglog(np.arange(1, len(freqs) + 1), freqs, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("frequency n(x)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path
