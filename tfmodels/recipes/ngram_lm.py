"""``ngram_lm``: the count-based n-gram language model (notes-002-part2 §22–§23), fitted on the one trainer.

Specs: notes-002-part2.md §22 (seed 002 L2563–2597: estimate probabilities by relative
frequencies of counts, Laplace smoothing "adds a small constant to all counts", [REF d2l]
``P̂(x) = (n(x) + ε₁/m)/(n + ε₁)``, ``P̂(x'|x) = (n(x, x') + ε₂·P̂(x'))/(n(x) + ε₂)``, …) and §23
(L2599–2641: the Markov assumption, "bigram and trigram most common" (L2608), storage that grows
as m^N, O(T) per query); perplexity §33 (L3029–3049). The model is
:class:`tfmodels.models.ngram_lm.CountingNgramLM`: dense count tables as non-trainable weights,
so checkpoints, ``BackupAndRestore`` and ``model.keras`` hold them.

Training is counting: ``fit`` runs one epoch in which every ``train_step`` adds the n-gram counts
of its batch and applies no gradient (the optimizer the trainer compiles with is never used).
The training ids are the recurrent models' training stream (``<bos>`` before each document),
cut into chunks of ``num_steps + order − 1`` tokens every ``num_steps`` tokens
(:func:`counting_chunks`); each chunk counts the n-grams that start in its first ``num_steps``
positions, so the tables equal the counts of the whole stream read as one sequence — the counts
the language models' report fits its n-gram baselines on (:func:`pipelines.text.ngrams.ngram_counts`).
The order of the batches does not matter. A second epoch would add the counts again (E epochs
are the one-epoch model with ε / E), so every preset trains one epoch. Counting scales with the
strategy: each replica counts its part of the global batch and adds the all-reduced counts, and
the chunks are padded with empty ones to whole global batches, because the trainer drops a
partial one under several replicas; the tables equal one replica's (tested).

Everything else is :mod:`tfmodels.recipes.language_models`' (imported, not copied): the corpus
(``pydoc_data`` by default), the run's vocabulary asset ``assets/vocabulary.txt``, the validation
and test windows of ``num_steps`` tokens (:func:`~tfmodels.recipes.language_models.windows`), the
metrics (loss = cross-entropy of the smoothed conditional, accuracy, perplexity), the report (test
perplexity beside uniform, unigram and the best n-gram on the same windows, Zipf's law, greedy and
sampled continuations) and serving: ``serving_default`` generates and ``score`` scores raw
strings, in core TF ops over the count tables (the model maps ids to ``log P̂(next | last order − 1
ids)``, which the shared generation and scoring read as logits), with the shared serving examples.
The recurrent fields of the config (``hidden_units``, ``num_layers``, ``embedding_dim``, ``dropout``,
``clip_global_norm``) are not used.

Presets (order and ε from the notes: a **trigram** model, §23 L2608 "bigram and trigram most
common", with ε = 1 for every order, §22's "small constant" — the notes give no number, and 1 is
also the ε the language models' report picks on validation for its best character n-gram):

* ``tiny``: the language models' tiny data (3,000 tokens per split, windows of 16); seconds.
* ``default``: the whole corpus at character level and the recurrent models' 35-token test
  windows, so its perplexity stands beside theirs (README).
* ``paper``: the recurrent models' ``paper`` data ([REF d2l]: the first 10,000 tokens, windows of 35).

Larger orders are a flag (``--set order=5``); the dense tables hold m + m² + … + m^order floats,
and a config beyond :data:`MAX_TABLE_ENTRIES` (a word-level trigram, say) stops with an error.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.splits import Splits
from pipelines.text.vocabulary import PAD_ID
from tfmodels.config import ConfigError
from tfmodels.metrics.perplexity import Perplexity
from tfmodels.models.ngram_lm import CountingNgramLM, dense_table_entries
from tfmodels.recipes import language_models as lm
from tfmodels.registry import Recipe, register
from tfmodels.training.strategy import make_strategy

# 2^25 float32 counts = 128 MiB of tables (a character 5-gram model of 31 tokens has 29.6 M).
MAX_TABLE_ENTRIES = 2**25


@dataclasses.dataclass
class NgramLmConfig(lm.LanguageModelConfig):
    """``ngram_lm`` config: the language models' data fields plus the n-gram's.

    Args:
        order: ``n`` of the n-gram (§23): the model reads the last ``order − 1`` tokens.
        epsilon: Laplace ``ε`` of every order (§22); 0 = unsmoothed relative frequencies.
    """

    order: int = 3
    epsilon: float = 1.0

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 1, "batch_size": 16, "num_steps": 16, "max_tokens": 3000, "max_new_tokens": 50, "verbose": 0},
        "default": {"epochs": 1, "batch_size": 32, "verbose": 2},
        # The recurrent models' paper data ([REF d2l] §32: load_data_time_machine(max_tokens=10000), 35 steps).
        "paper": {"epochs": 1, "batch_size": 32, "num_steps": 35, "max_tokens": 10_000},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order < 1 or self.epsilon < 0:
            raise ConfigError(f"order must be >= 1 and epsilon >= 0, got order={self.order}, epsilon={self.epsilon}")


def counting_chunks(stream: np.ndarray, order: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` chunks whose tokens ``[x_0, *y]`` start every ``stride`` tokens and overlap by ``order − 1``.

    The stream is right-padded with ``<pad>`` (which no count includes), so every n-gram of
    order ≤ ``order`` starts in exactly one chunk's first ``stride`` positions.

    Example:
        >>> x, y = counting_chunks(np.array([2, 5, 6, 5, 7]), order=2, stride=2)
        >>> x.tolist(), y.tolist()
        ([[2, 5], [6, 5], [7, 0]], [[5, 6], [5, 7], [0, 0]])
    """
    padded = np.concatenate([stream, np.full(stride + order - 1, PAD_ID, stream.dtype)])
    return lm.windows(padded, stride + order - 2, stride)


def _pad_to_whole_batches(x: np.ndarray, y: np.ndarray, global_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Appends all-``<pad>`` chunks (they count nothing) so that no chunk falls in a partial batch.

    With several replicas the trainer drops the last partial global batch
    (:func:`tfmodels.training.fit.replica_batches`); a dropped chunk would be a count missing.
    """
    missing = -len(x) % global_batch
    return tuple(np.concatenate([a, np.full((missing, a.shape[1]), PAD_ID, a.dtype)]) for a in (x, y))


def datasets(cfg: NgramLmConfig) -> Splits:
    """The language models' validation and test windows (:func:`~tfmodels.recipes.language_models.datasets`); counting chunks of their training stream."""
    splits = lm.datasets(cfg)
    train = counting_chunks(lm.token_corpus(cfg).streams["train"], cfg.order, cfg.num_steps)
    train = _pad_to_whole_batches(*train, cfg.batch_size * make_strategy(cfg.strategy).num_replicas_in_sync)
    sizes = {**splits.info["sizes"], "train": len(train[0])}
    return dataclasses.replace(splits, train=tf.data.Dataset.from_tensor_slices(train), info={**splits.info, "sizes": sizes})


def model(cfg: NgramLmConfig) -> keras.Model:
    """Empty count tables for the run's vocabulary; refuses tables larger than :data:`MAX_TABLE_ENTRIES`."""
    vocab_size = lm.run_vocabulary(cfg).size
    entries = dense_table_entries(vocab_size, cfg.order)
    if entries > MAX_TABLE_ENTRIES:
        raise ConfigError(
            f"an order-{cfg.order} model of {vocab_size} tokens needs {entries:,} dense counts "
            f"(more than {MAX_TABLE_ENTRIES:,}): use a smaller order, level=char or a larger min_freq"
        )
    return CountingNgramLM(vocab_size, cfg.order, cfg.epsilon, pad_id=PAD_ID)


def compile_args(cfg: NgramLmConfig) -> dict:
    """The language models' loss and metrics; ``<pad>`` labels (the chunks' padding) are weighted 0 in training."""
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
        "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), Perplexity()],
    }


def report(cfg: NgramLmConfig, net: keras.Model, splits, run_dir) -> dict:
    """The language models' report (test perplexity beside the n-gram baselines on the same windows), plus the order and ε."""
    return {**lm.report(cfg, net, splits, run_dir), "order": cfg.order, "epsilon": cfg.epsilon}


RECIPE = register(
    Recipe(
        name="ngram_lm",
        description="Laplace-smoothed character trigram LM fitted by counting in train_step, generate/score serving (notes-002-part2 §22-23)",
        config=NgramLmConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=lm.serving,
        serving_examples=lm.serving_examples,
        report=report,
    )
)
