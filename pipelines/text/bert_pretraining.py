"""BERT pre-training examples: next-sentence pairs, ``[CLS] A [SEP] B [SEP]`` packing, dynamic masking.

Specs: notes-001.md §25 (seed 001 L643-666: each sample is a sentence pair with segment
embeddings; 15% of the tokens are selected, of those 80% → ``[MASK]``, 10% → a random token, 10%
unchanged; NSP pairs are 50% adjacent and 50% random) and notes-002-part2.md §54 (outputs, masking
inside tf.data, special tokens never selected). Where the notes are silent, BERT's paper and its
``create_pretraining_data.py`` decide (paper default):

* pairs: A is a sentence of a document; B is the sentence after it (``nsp_label`` **1**) or, with
  probability 0.5, a random sentence of another document of the same split (``nsp_label`` **0**).
  (google-research/bert labels the other way round, 0 = "is next"; here 1 means "B follows A".)
* truncation: while ``len(A) + len(B) > seq_length - 3`` the longer of the two (B on a tie) loses
  its last token (BERT's ``truncate_seq_pair``, which also drops from the front at random);
* packing: ``[CLS] A [SEP] B [SEP] [PAD]…``; ``segment_ids`` 0 for ``[CLS] A [SEP]``, 1 for
  ``B [SEP]`` and 0 on padding; ``padding_mask`` true on real tokens;
* masking: ``min(max_predictions, max(1, round(0.15 · n)))`` of the ``n`` selectable tokens of a
  sequence (never ``[PAD] [CLS] [SEP] [MASK]``; ``[UNK]`` is an ordinary token as in BERT's
  code), uniformly at random; each becomes ``[MASK]`` (80%), a uniformly random non-special token
  (10%) or stays (10%). ``max_predictions`` 20 for length 128 (paper default).

Masks are drawn with stateless random ops from explicit seeds: the training split redraws them on
every pass over the dataset (seeded by ``tf.data.Dataset.random(seed, rerandomize_each_iteration)``);
validation and test draw them once from (seed, example index), so evaluation is reproducible. A
trainer that caches the training split (``tfmodels.training`` does) freezes the first draw: give it
:meth:`Masker.train_transform` as the recipe's ``train_transform``, which re-masks every batch from
the ``masks`` stream of :mod:`pipelines.random_streams` (a function of the seed and the batch, so a
resumed run re-masks exactly as an uninterrupted one).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from pipelines.random_streams import batch_seed, stream_seed
from pipelines.splits import Splits
from pipelines.text.sentences import split_sentences
from pipelines.text.wordpiece import WordPieceTokenizer
from pipelines.text.wordpiece_vocabulary import CLS, MASK, PAD, SEP

NEXT_SENTENCE_RATE = 0.5  # paper default: half of the pairs are true next sentences


def truncated_lengths(first: tf.Tensor, second: tf.Tensor, max_tokens: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Lengths after BERT's "trim the longer one (B on a tie) one token at a time" to ``max_tokens``.

    Closed form of the loop: B keeps ``min(len_b, max(max_tokens - len_a, max_tokens // 2))``, A
    keeps the rest of the budget.

    Example:
        >>> [int(n) for n in truncated_lengths(tf.constant([10, 3, 4]), tf.constant([3, 10, 4]), 5)[0]]
        [3, 3, 3]
    """
    keep_second = tf.minimum(second, tf.maximum(max_tokens - first, max_tokens // 2))
    return tf.minimum(first, max_tokens - keep_second), keep_second


def pack_pairs(first: tf.RaggedTensor, second: tf.RaggedTensor, seq_length: int, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """Packs ``[CLS] A [SEP] B [SEP]``, truncated and padded to ``seq_length``.

    Args:
        first, second: ``[batch, (tokens)]`` int ids of the A and B sentences.
        seq_length: the packed length (the special tokens included).
        cls_id, sep_id, pad_id: ids of ``[CLS]``, ``[SEP]`` and ``[PAD]``.

    Returns:
        ``token_ids`` int32, ``segment_ids`` int32 and ``padding_mask`` bool, each ``[batch, seq_length]``.

    Example:
        >>> packed = pack_pairs(tf.ragged.constant([[7, 8, 9]]), tf.ragged.constant([[5, 6]]), 8, 2, 3, 0)
        >>> packed["token_ids"].numpy().tolist(), packed["segment_ids"].numpy().tolist()
        ([[2, 7, 8, 9, 3, 5, 6, 3]], [[0, 0, 0, 0, 0, 1, 1, 1]])
    """
    first, second = (tf.cast(t, tf.int32) for t in (first, second))
    keep_first, keep_second = truncated_lengths(
        tf.cast(first.row_lengths(), tf.int32), tf.cast(second.row_lengths(), tf.int32), seq_length - 3
    )
    first = tf.ragged.boolean_mask(first, tf.ragged.range(first.row_lengths()) < tf.cast(keep_first, tf.int64)[:, None])
    second = tf.ragged.boolean_mask(second, tf.ragged.range(second.row_lengths()) < tf.cast(keep_second, tf.int64)[:, None])
    one = tf.ones_like(keep_first)[:, None]  # one column: a token per sequence
    tokens = tf.concat([one * cls_id, first, one * sep_id, second, one * sep_id], axis=1)
    segments = tf.concat([one * 0, tf.zeros_like(first), one * 0, tf.ones_like(second), one], axis=1)
    shape = [None, seq_length]
    return {
        "token_ids": tokens.to_tensor(pad_id, shape=shape),
        "segment_ids": segments.to_tensor(0, shape=shape),
        "padding_mask": tf.ones_like(tokens, tf.bool).to_tensor(False, shape=shape),
    }


@dataclasses.dataclass(frozen=True)
class Masker:
    """BERT's masked-LM corruption of packed sequences, with stateless random ops.

    Args:
        vocabulary_size: ids are ``0 .. vocabulary_size - 1``.
        mask_id: the id of ``[MASK]``.
        special_ids: ids never selected and never drawn as random replacements
            (``[PAD] [CLS] [SEP] [MASK]``; padding is ``[PAD]``).
        max_predictions: prediction slots per sequence (20 for length 128, paper default).
        selection_rate: the share of selectable tokens to predict (0.15, paper default).
        mask_token_rate: the share of predicted tokens replaced by ``[MASK]`` (0.8).
        random_token_rate: the share replaced by a random token (0.1); the rest stays.
    """

    vocabulary_size: int
    mask_id: int
    special_ids: tuple[int, ...]
    max_predictions: int = 20
    selection_rate: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1

    def __call__(self, token_ids: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, dict, dict]:
        """Masks a batch.

        Args:
            token_ids: ``[batch, length]`` int32 packed sequences (``length >= max_predictions``).
            seed: a stateless seed, shape ``[2]`` (the draw is a function of it).

        Returns:
            ``(masked_token_ids [B, L] int32, mask_positions [B, P] int32,
            {"mlm_labels": [B, P] int32, "mlm_weights": [B, P] float32})``; positions are
            ascending, unused slots have position 0, label 0 and weight 0.
        """
        token_ids = tf.cast(token_ids, tf.int32)
        selection_seed, action_seed, random_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        length = tf.shape(token_ids)[1]
        selectable = tf.reduce_all(token_ids[..., None] != tf.constant(self.special_ids, tf.int32), axis=-1)
        count = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=1)
        # Python 3's round (half to even), as BERT's create_pretraining_data.py; at least 1 if possible.
        wanted = tf.minimum(tf.maximum(tf.round(count * self.selection_rate), tf.minimum(count, 1.0)), self.max_predictions)
        scores = tf.where(selectable, tf.random.stateless_uniform(tf.shape(token_ids), selection_seed), -1.0)
        chosen = tf.math.top_k(scores, self.max_predictions).indices
        used = tf.range(self.max_predictions)[None, :] < tf.cast(wanted, tf.int32)[:, None]
        positions = tf.sort(tf.where(used, chosen, length), axis=1)  # unused slots sort last
        used = positions < length
        positions = tf.where(used, positions, 0)
        labels = tf.where(used, tf.gather(token_ids, positions, batch_dims=1), 0)

        action = tf.random.stateless_uniform(tf.shape(positions), action_seed)
        ordinary = np.setdiff1d(np.arange(self.vocabulary_size), self.special_ids).astype(np.int32)
        random_tokens = tf.gather(ordinary, tf.random.stateless_uniform(tf.shape(positions), random_seed, 0, len(ordinary), tf.int32))
        replacement = tf.where(
            action < self.mask_token_rate,
            self.mask_id,
            tf.where(action < self.mask_token_rate + self.random_token_rate, random_tokens, labels),
        )
        where_used = tf.where(used)  # [slots, 2]: (row, slot)
        rows = tf.cast(where_used[:, 0], tf.int32)
        masked = tf.tensor_scatter_nd_update(
            token_ids, tf.stack([rows, tf.gather_nd(positions, where_used)], axis=1), tf.gather_nd(replacement, where_used)
        )
        return masked, positions, {"mlm_labels": labels, "mlm_weights": tf.cast(used, tf.float32)}

    def mask_example(self, features: dict, nsp_label: tf.Tensor, seed: tf.Tensor) -> tuple[dict, dict]:
        """Masks one packed example (``features`` of :func:`pack_pairs`, unbatched) → (features, labels)."""
        masked, positions, labels = self(features["token_ids"][None], seed)
        features = {**features, "token_ids": masked[0], "mask_positions": positions[0]}
        return features, {**{k: v[0] for k, v in labels.items()}, "nsp_label": nsp_label}

    def remask(self, features: dict, labels: dict, seed: tf.Tensor) -> tuple[dict, dict]:
        """Draws new masks for a batch of masked examples (the originals come back from the labels)."""
        weights, positions = labels["mlm_weights"] > 0, features["mask_positions"]
        where_used = tf.where(weights)
        index = tf.stack([tf.cast(where_used[:, 0], tf.int32), tf.gather_nd(positions, where_used)], axis=1)
        original = tf.tensor_scatter_nd_update(features["token_ids"], index, tf.gather_nd(labels["mlm_labels"], where_used))
        masked, positions, mlm = self(original, seed)
        return {**features, "token_ids": masked, "mask_positions": positions}, {**labels, **mlm}

    def train_transform(self, seed: int = 0):
        """A batch function ``(features, labels) -> (features, labels)`` that re-masks every batch.

        For a trainer that caches the training split and maps this over its batches every epoch
        (``Recipe.train_transform``). The masks are a stateless function of ``seed`` and the
        batch's token ids (the ``masks`` stream of :mod:`pipelines.random_streams`): the same
        batch is masked the same way, a batch of another epoch's shuffle gets new masks, and a
        run resumed after a kill draws exactly what the uninterrupted run did.
        """

        def transform(features, labels):
            return self.remask(features, labels, stream_seed(batch_seed(seed, features["token_ids"]), "masks"))

        return transform


def masker_for(tokenizer: WordPieceTokenizer, max_predictions: int = 20, **rates) -> Masker:
    """A :class:`Masker` with the special ids of ``tokenizer``'s vocabulary."""
    special = tuple(tokenizer.token_to_id(t) for t in (PAD, CLS, SEP, MASK))
    return Masker(tokenizer.vocabulary_size(), tokenizer.token_to_id(MASK), special, max_predictions, **rates)


def _sentences(documents: tf.data.Dataset, tokenizer: WordPieceTokenizer) -> tuple[tf.RaggedTensor, np.ndarray]:
    """Token ids of every non-empty sentence, ``[sentences, (tokens)]``, and each one's document."""

    def tokenize(docs):
        sentences = split_sentences(docs)
        return sentences.with_flat_values(tokenizer.tokenize(sentences.flat_values))

    ids, doc_of_sentence, first_doc = [], [], 0
    for batch in documents.batch(64).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE):
        sentences = batch.merge_dims(0, 1)
        keep = (sentences.row_lengths() > 0).numpy()
        ids.append(tf.ragged.boolean_mask(sentences, keep))
        doc_of_sentence.append((first_doc + batch.value_rowids().numpy())[keep])
        first_doc += int(batch.nrows())
    return tf.concat(ids, axis=0), np.concatenate(doc_of_sentence)


def sentence_pairs(doc_of_sentence: np.ndarray, rng: np.random.Generator, next_sentence_rate: float = NEXT_SENTENCE_RATE):
    """NSP pairs over sentences listed document by document.

    Every sentence that has a successor in its document is an A; B is that successor with
    probability ``next_sentence_rate`` (label 1), else a uniformly random sentence of a uniformly
    random *other* document (label 0).

    Args:
        doc_of_sentence: ``[sentences]`` document index of each sentence, non-decreasing.
        rng: the random generator (the pairs are a function of its state).
        next_sentence_rate: the share of true next sentences (0.5, paper default).

    Returns:
        ``(first [pairs], second [pairs], nsp_label [pairs])``: sentence indices and labels.

    Example:
        >>> first, second, label = sentence_pairs(np.array([0, 0, 0, 1, 1]), np.random.default_rng(0))
        >>> first.tolist()
        [0, 1, 3]
    """
    docs, doc_start, doc_count = np.unique(doc_of_sentence, return_index=True, return_counts=True)
    if len(docs) < 2:
        raise ValueError("next-sentence pairs need sentences from at least two documents")
    first = np.flatnonzero(doc_of_sentence[:-1] == doc_of_sentence[1:])
    label = (rng.random(len(first)) < next_sentence_rate).astype(np.int32)
    own = np.searchsorted(docs, doc_of_sentence[first])
    other = rng.integers(0, len(docs) - 1, len(first))
    other += other >= own  # uniform over the other documents
    random_sentence = doc_start[other] + (rng.random(len(first)) * doc_count[other]).astype(np.int64)
    second = np.where(label == 1, first + 1, random_sentence)
    return first, second, label


def _examples(sentences: tf.RaggedTensor, first, second, label, seq_length: int, tokenizer: WordPieceTokenizer):
    ids = {name: tokenizer.token_to_id(token) for name, token in (("cls_id", CLS), ("sep_id", SEP), ("pad_id", PAD))}
    packed = pack_pairs(tf.gather(sentences, first), tf.gather(sentences, second), seq_length, **ids)
    return tf.data.Dataset.from_tensor_slices((packed, tf.constant(label, tf.int32)))


def bert_pretraining_datasets(
    documents: Splits,
    tokenizer: WordPieceTokenizer,
    seq_length: int = 128,
    max_predictions: int = 20,
    seed: int = 0,
    next_sentence_rate: float = NEXT_SENTENCE_RATE,
    **mask_rates,
) -> Splits:
    """Unbatched BERT pre-training ``(features, labels)`` datasets from document splits.

    Args:
        documents: :class:`pipelines.splits.Splits` of documents (scalar strings), e.g.
            :func:`pipelines.text.corpus.load`. Pairs never cross splits.
        tokenizer: the WordPiece tokenizer (its vocabulary holds ``[PAD] [UNK] [CLS] [SEP] [MASK]``).
        seq_length: packed length, special tokens included (128, paper default for 90% of steps).
        max_predictions: masked-LM slots per sequence (20 for 128, paper default).
        seed: seeds the pairs (per split), the fixed validation/test masks and the training masks.
        next_sentence_rate: share of true next-sentence pairs (0.5).
        **mask_rates: ``selection_rate``, ``mask_token_rate``, ``random_token_rate`` of :class:`Masker`.

    Returns:
        :class:`pipelines.splits.Splits`; each element is ``(features, labels)``::

            features = {"token_ids": [L] int32, "segment_ids": [L] int32,
                        "padding_mask": [L] bool, "mask_positions": [P] int32}
            labels = {"mlm_labels": [P] int32, "mlm_weights": [P] float32, "nsp_label": [] int32}

        with ``L = seq_length``, ``P = max_predictions``, ``nsp_label`` 1 when B follows A.
        ``info`` (JSON-ready) holds ``sizes`` (pairs per split), ``sentences``, ``documents``,
        ``source``, ``seq_length``, ``max_predictions`` and ``vocabulary_size``. For a trainer
        that caches the training split, re-mask per batch with
        ``masker_for(tokenizer, max_predictions, **mask_rates).train_transform(seed)``.
    """
    masker = masker_for(tokenizer, max_predictions, **mask_rates)
    parts, info = {}, {"sizes": {}, "sentences": {}}
    for index, name in enumerate(("train", "validation", "test")):
        sentences, doc_of_sentence = _sentences(getattr(documents, name), tokenizer)
        pairs = sentence_pairs(doc_of_sentence, np.random.default_rng([seed, index]), next_sentence_rate)
        examples = _examples(sentences, *pairs, seq_length, tokenizer)
        if name == "train":
            # A new random stream on every pass over the dataset: masks are redrawn every epoch.
            streams = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            masked = tf.data.Dataset.zip(examples, streams).map(
                lambda example, r: masker.mask_example(*example, tf.stack([r, tf.constant(seed, tf.int64)])),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        else:
            # Drawn once from (example index, seed and split): the same masks on every pass.
            masked = examples.enumerate().map(
                lambda i, example: masker.mask_example(*example, tf.stack([i, tf.constant(seed * 3 + index, tf.int64)])),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        parts[name] = masked
        info["sizes"][name] = len(pairs[0])
        info["sentences"][name] = int(sentences.nrows())
    info.update(
        source=documents.info.get("source"),
        documents=documents.info.get("sizes"),
        seq_length=seq_length,
        max_predictions=max_predictions,
        vocabulary_size=tokenizer.vocabulary_size(),
    )
    return Splits(parts["train"], parts["validation"], parts["test"], info)
