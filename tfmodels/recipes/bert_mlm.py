"""``bert_mlm``: BERT pre-training (masked LM + next-sentence prediction) from raw text to TF-Serving.

Specs: notes-002-part2.md §54 (seed 002 L3838-3875: masked tokens predicted through a linear map +
softmax with cross-entropy, [CLS] output for next-sentence prediction) and notes-001.md §25 (seed
001 L633-673: sentence pairs, segment and learned position embeddings, 15% masking with 80/10/10,
NSP 50/50). The model is :func:`tfmodels.models.bert.build_bert_pretraining` (post-LN encoder, MLM
head tied to the token embedding, NSP head on the tanh pooler).

Data (``DATA=embedded``, offline): the help texts of CPython's ``pydoc_data`` (79 documents,
:mod:`pipelines.text.corpus`), split by document with the seed (80 / 10 / 10 %); ``file:<path>``
(documents separated by blank lines) and ``tfds:<name>`` work too. A WordPiece vocabulary of at
most ``vocabulary_size`` tokens is learned on the **training documents only**
(:func:`pipelines.text.wordpiece_vocabulary.learn_vocabulary`, ``[PAD] [UNK] [CLS] [SEP] [MASK]``
at ids 0..4). Examples are :func:`pipelines.text.bert_pretraining.bert_pretraining_datasets`:
``[CLS] A [SEP] B [SEP]`` pairs of ``seq_length`` tokens, B the next sentence of A or (50%) a random
sentence of another document, 15% of the ordinary tokens selected (at most ``max_predictions``)
and 80/10/10 corrupted. Training batches are re-masked every time they are drawn
(:func:`train_transform`: the trainer caches the training split, which would freeze the masks);
validation and test keep one fixed draw, so held-out numbers are reproducible.

Run assets (:mod:`tfmodels.training.run_assets`, written at the data stage, read by every later
stage, a copied run folder and ``tfmodels export|evaluate``, never learned again): ``vocabulary.txt``
(the WordPiece vocabulary, one token per line, id = line) and ``tokenizer.json`` (the tokenizer's
settings: ``lower_case`` — BERT's basic tokenizer is uncased —, ``suffix_indicator``,
``unknown_token``, ``max_word_length`` and ``word_length_unit`` of WordPiece, ``errors`` for
invalid UTF-8, and the packing length ``seq_length``). ``bert_classifier`` copies both.

Loss: masked-LM cross-entropy averaged over the real masked tokens (sample weights 0 on padded
prediction slots) + NSP cross-entropy, unit weights (paper default). Metrics (Keras names them
after the outputs): ``mlm_logits_accuracy`` and ``mlm_logits_perplexity`` on masked tokens only
(weighted), ``nsp_logits_accuracy``.

Report (``metrics.json``): held-out (test) MLM accuracy and perplexity beside the unigram
baselines computed from the training documents' token counts — always predicting the most frequent
training token, and the perplexity of the add-one-smoothed unigram distribution — and NSP accuracy
beside chance (0.5) and the majority training label; plus the ``fill_mask`` answer to
``example_text`` and the path of the run's vocabulary.

Serving (core TensorFlow only: the tokenizer is :class:`pipelines.text.wordpiece.WordPieceTokenizer`,
its vocabulary travels in the graph):

* ``serving_default`` (fill-mask): ``text`` string [B], raw text with one or more ``[MASK]``
  (matched without regard to case). The text around each ``[MASK]`` is tokenized like the
  training text and the pieces are joined with ``[MASK]`` tokens, packed as ``[CLS] text [SEP]``
  (one segment) and cut to ``seq_length`` tokens. Returns, per mask slot ``M = max(1, most masks in
  the batch)``: ``tokens`` string [B, M, k] (top-``top_k`` vocabulary entries, ``##`` marks a word
  continuation), ``probabilities`` float32 [B, M, k], ``token_ids`` int32 [B, M, k], and
  ``num_masks`` int32 [B] (slots at and beyond it are padding: ``""``, 0 and -1) and ``truncated``
  bool [B] (the text had more than ``seq_length - 2`` tokens; the rest, masks included, was
  dropped). A text without ``[MASK]`` and an empty text get ``num_masks`` 0.
* ``encode``: ``text`` string [B] (packed the same way) → ``pooled_output`` float32 [B, H] (tanh
  pooler on [CLS]), ``sequence_output`` float32 [B, L, H], ``padding_mask`` int32 [B, L] (1 on real
  tokens; ``L`` is the longest packed text of the batch) and ``truncated`` bool [B].

Serving examples (:func:`serving_examples`): the first sentences of test pairs, rebuilt as text from
their ids with the run's vocabulary — with ``[MASK]`` at the pair's masked positions for
``serving_default``, with the original tokens for ``encode`` — and the Keras model's answers for
``[CLS] sentence [SEP]`` cut from the test pair's ids (top-k and softmax in NumPy).

Presets: ``tiny`` (tests), ``default`` (4 layers, H 128, 2 heads, FFN 512, 64-token pairs with 10
predictions, 3 pairings of the training sentences × 3 epochs = 867 Adam steps of 32 pairs; measured
on the shared 2-core machine under a load average of 9-12 from other jobs: 0.83-1.4 s per step,
19 min 40 s wall for vocabulary, data, training, report and export; held-out masked-LM accuracy
0.154 against 0.010 for the most frequent training token, perplexity 171 against 340 for the
unigram, NSP accuracy 0.596 on 218 test pairs — see the README) and ``paper`` (BERT-base, paper default: L 12, H 768, A 12, FFN 3072, 512
positions, 30,522 WordPiece tokens, batch 256, Adam(W) 1e-4 with weight decay 0.01 and warm-up;
BERT trains 1M steps, 90% of them at 128 tokens with 20 predictions and the last 10% at 512 with
80 — the preset is the 512-token setting; the 128-token phase is ``--set seq_length=128
max_predictions=20``. Meant for a corpus of billions of words and an accelerator: never run here).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.splits import Splits
from pipelines.text import corpus
from pipelines.text.bert_pretraining import bert_pretraining_datasets, masker_for
from pipelines.text.wordpiece import WordPieceTokenizer
from pipelines.text.wordpiece_vocabulary import CLS, MASK, PAD, RESERVED_TOKENS, SEP, UNK, learn_vocabulary
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.metrics.perplexity import Perplexity
from tfmodels.models import bert  # registers the BERT layers for .keras loads
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import asset_path, json_asset, lines_asset

MASK_PATTERN = r"(?i)\[mask\]"
VOCABULARY_FILE = "vocabulary.txt"
TOKENIZER_FILE = "tokenizer.json"
# BERT's uncased tokenizer (paper default): the basic tokenizer always lower-cases and strips
# accents (``lower_case`` records it for other tools), WordPiece reads words of up to 100 bytes.
WORDPIECE_SETTINGS = {
    "lower_case": True, "suffix_indicator": "##", "unknown_token": UNK, "max_word_length": 100,
    "word_length_unit": "BYTE", "errors": "replace",
}


@dataclasses.dataclass
class BertMlmConfig(TrainConfig):
    """BERT pre-training config.

    Args:
        vocabulary_size: the most WordPiece tokens to learn, reserved tokens included (30,522 in
            BERT, paper default); a small corpus gives fewer.
        min_frequency: a piece seen fewer times in the training documents is not learned.
        num_layers, hidden_dim, num_heads, intermediate_dim, max_sequence_length, dropout: the
            encoder (:func:`tfmodels.models.bert.build_bert_encoder`).
        seq_length: tokens per packed pair, special tokens included (at most ``max_sequence_length``).
        max_predictions: masked-LM slots per pair (20 for 128 tokens, 80 for 512: paper default).
        dupe_factor: pairings of the training sentences per epoch, each with its own next-sentence
            pairs and masks (google-research/bert's ``dupe_factor``, 10: paper default). With one
            pairing a small corpus has few distinct NSP pairs, and the model memorises them.
        top_k: candidates ``fill_mask`` returns per mask.
        example_text: the report's fill-mask sample.
    """

    vocabulary_size: int = 8192
    min_frequency: int = 5
    num_layers: int = 4
    hidden_dim: int = 128
    num_heads: int = 2
    intermediate_dim: int = 512
    max_sequence_length: int = 128
    dropout: float = 0.1
    seq_length: int = 64
    max_predictions: int = 10
    dupe_factor: int = 1
    top_k: int = 5
    example_text: str = "the [MASK] of the function is returned."

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            **bert.PRESETS["tiny"], "seq_length": 32, "max_predictions": 5, "vocabulary_size": 400,
            "min_frequency": 10, "epochs": 1, "batch_size": 64, "learning_rate": 1e-3, "verbose": 0,
        },
        # 3 × 3,081 pairs per epoch. One pairing for 8 epochs (776 steps) reached test MLM accuracy
        # 0.142 (0.154 with this preset), and NSP memorised its fixed pairs (train 0.68, val 0.50).
        "default": {
            **bert.PRESETS["default"], "dupe_factor": 3, "epochs": 3, "batch_size": 32, "optimizer": "adamw",
            "learning_rate": 1e-3, "weight_decay": 0.01, "lr_schedule": "cosine", "warmup_epochs": 1,
            "clip_global_norm": 1.0, "verbose": 2,
        },
        # BERT-base (paper default): Adam 1e-4, β 0.9/0.999, L2 decay 0.01, warm-up 10k of 1M steps.
        "paper": {
            **bert.PRESETS["paper"], "vocabulary_size": bert.PAPER_VOCABULARY_SIZE, "seq_length": 512,
            "max_predictions": 80, "dupe_factor": 10, "batch_size": 256, "optimizer": "adamw", "learning_rate": 1e-4,
            "weight_decay": 0.01, "lr_schedule": "cosine", "warmup_epochs": 1, "epochs": 40, "clip_global_norm": 1.0,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 8 <= self.seq_length <= self.max_sequence_length:
            raise ConfigError(f"seq_length must be between 8 and max_sequence_length ({self.max_sequence_length})")
        if not 1 <= self.max_predictions <= self.seq_length or self.top_k < 1 or self.dupe_factor < 1:
            raise ConfigError("max_predictions must be between 1 and seq_length, top_k and dupe_factor >= 1")
        if self.vocabulary_size <= len(RESERVED_TOKENS):
            raise ConfigError(f"vocabulary_size must exceed the {len(RESERVED_TOKENS)} reserved tokens")


def vocabulary(cfg: BertMlmConfig) -> list[str]:
    """The run's WordPiece vocabulary (``vocabulary.txt``), learned on the training documents at the data stage."""
    return lines_asset(
        cfg, VOCABULARY_FILE,
        lambda: learn_vocabulary(corpus.load(cfg.data, seed=cfg.data_seed).train, cfg.vocabulary_size, min_frequency=cfg.min_frequency),
    )


def tokenizer_settings(cfg: BertMlmConfig) -> dict:
    """The run's tokenizer settings (``tokenizer.json``): :data:`WORDPIECE_SETTINGS` and ``seq_length``."""
    return json_asset(cfg, TOKENIZER_FILE, lambda: {**WORDPIECE_SETTINGS, "seq_length": cfg.seq_length})


def wordpiece_tokenizer(vocabulary: list[str], settings: Mapping[str, Any]) -> WordPieceTokenizer:
    """A core-TF WordPiece tokenizer of a run's vocabulary and ``tokenizer.json`` settings."""
    arguments = {k: settings[k] for k in WORDPIECE_SETTINGS if k != "lower_case"}  # the basic tokenizer is uncased
    return WordPieceTokenizer(vocabulary, **arguments, name="wordpiece_tokenizer")


def tokenizer(cfg: BertMlmConfig) -> WordPieceTokenizer:
    """The run's tokenizer: :func:`vocabulary` with :func:`tokenizer_settings`."""
    return wordpiece_tokenizer(vocabulary(cfg), tokenizer_settings(cfg))


def datasets(cfg: BertMlmConfig) -> Splits:
    """Unbatched ``(features, labels, sample_weights)`` keyed by the model's inputs and outputs.

    The training split holds ``dupe_factor`` pairings of the training sentences (seeds ``seed``,
    ``seed + 1``, ...); validation and test hold the first one.
    """
    documents, tok = corpus.load(cfg.data, seed=cfg.data_seed), tokenizer(cfg)
    pairings = [
        bert_pretraining_datasets(documents, tok, cfg.seq_length, cfg.max_predictions, cfg.data_seed + i)
        for i in range(cfg.dupe_factor)
    ]
    examples = pairings[0]
    train = functools.reduce(tf.data.Dataset.concatenate, [p.train for p in pairings])
    info = {**examples.info, "dupe_factor": cfg.dupe_factor}
    info["sizes"] = {**info["sizes"], "train": sum(p.info["sizes"]["train"] for p in pairings)}

    def for_keras(features, labels):
        x = {**features, "padding_mask": tf.cast(features["padding_mask"], tf.int32)}
        y = {"mlm_logits": labels["mlm_labels"], "nsp_logits": labels["nsp_label"]}
        weights = {"mlm_logits": labels["mlm_weights"], "nsp_logits": tf.ones([], tf.float32)}
        return x, y, weights

    parts = (s.map(for_keras, num_parallel_calls=tf.data.AUTOTUNE) for s in (train, examples.validation, examples.test))
    return Splits(*parts, info)


def train_transform(cfg: BertMlmConfig):
    """Re-masks every training batch (:meth:`pipelines.text.bert_pretraining.Masker.train_transform`)."""
    remask = masker_for(tokenizer(cfg), cfg.max_predictions).train_transform(cfg.seed)

    def transform(x, y, weights):
        features, labels = remask(x, {"mlm_labels": y["mlm_logits"], "mlm_weights": weights["mlm_logits"]})
        return features, {**y, "mlm_logits": labels["mlm_labels"]}, {**weights, "mlm_logits": labels["mlm_weights"]}

    return transform


def model(cfg: BertMlmConfig) -> bert.BertPretrainer:
    return bert.build_bert_pretraining(
        len(vocabulary(cfg)), cfg.num_layers, cfg.hidden_dim, cfg.num_heads, cfg.intermediate_dim,
        cfg.max_sequence_length, dropout=cfg.dropout, name="bert_mlm",
    )


def compile_args(cfg: BertMlmConfig) -> dict:
    return {
        "loss": {
            # BERT's mean over the real masked tokens: Σ w·CE / Σ w.
            "mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "nsp_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        # weighted_metrics see the sample weights: masked positions only.
        "weighted_metrics": {"mlm_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), Perplexity()]},
        "metrics": {"nsp_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
    }


def encoder_inputs(tokenizer: WordPieceTokenizer, texts, seq_length: int, pad_to_length: bool = False) -> dict:
    """Raw texts → the encoder's inputs ``[CLS] text [SEP]``, with ``[MASK]`` in the text kept as the token.

    The text between ``[MASK]`` markers (case-insensitive) is tokenized like training text; each
    marker becomes the ``[MASK]`` id. Texts longer than ``seq_length - 2`` tokens are cut.

    Args:
        tokenizer: the WordPiece tokenizer of the model's vocabulary.
        texts: ``[B]`` strings.
        seq_length: the most tokens per packed text, ``[CLS]`` and ``[SEP]`` included.
        pad_to_length: pad to ``seq_length`` (fixed shapes for datasets) instead of the batch's longest.

    Returns:
        ``token_ids``, ``segment_ids`` (zeros) and ``padding_mask`` int32 ``[B, L]``, and
        ``truncated`` bool ``[B]``.

    Example:
        >>> t = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"])
        >>> encoder_inputs(t, tf.constant(["a [MASK] b", ""]), 8)["token_ids"].numpy().tolist()
        [[2, 5, 4, 6, 3], [2, 3, 0, 0, 0]]
    """
    texts = tf.strings.regex_replace(tf.convert_to_tensor(texts, tf.string), MASK_PATTERN, MASK)
    pieces = tf.strings.split(texts, MASK)  # [B, (masks + 1)]
    piece_ids = tokenizer.tokenize(pieces.flat_values)
    # Every piece but the last of its text is followed by a [MASK].
    followed = tf.cast(tf.range(tf.size(pieces.flat_values, out_type=tf.int64)) + 1 < tf.repeat(pieces.row_limits(), pieces.row_lengths()), tf.int64)
    masks = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(followed)], tokenizer.token_to_id(MASK)), followed)
    ids = tf.RaggedTensor.from_row_splits(tf.concat([piece_ids, masks], axis=1), pieces.row_splits).merge_dims(1, 2)
    keep = seq_length - 2
    truncated = ids.row_lengths() > keep
    ids = ids[:, :keep]
    one = tf.ones_like(ids.row_lengths(), tf.int32)[:, None]
    packed = tf.concat([one * tokenizer.token_to_id(CLS), ids, one * tokenizer.token_to_id(SEP)], axis=1)
    shape = [None, seq_length if pad_to_length else None]
    token_ids = packed.to_tensor(tokenizer.token_to_id(PAD), shape=shape)
    padding_mask = tf.ones_like(packed).to_tensor(0, shape=shape)
    return {
        "token_ids": token_ids,
        "segment_ids": tf.zeros_like(token_ids),
        "padding_mask": padding_mask,
        "truncated": truncated,
    }


def fill_mask(model: bert.BertPretrainer, tokenizer: WordPieceTokenizer, texts, seq_length: int, top_k: int) -> dict:
    """The ``serving_default`` computation: the top-k tokens at every ``[MASK]`` (module docstring)."""
    inputs = encoder_inputs(tokenizer, texts, seq_length)
    token_ids = inputs["token_ids"]
    positions = tf.ragged.boolean_mask(
        tf.broadcast_to(tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids)), token_ids == tokenizer.token_to_id(MASK)
    )
    num_masks = tf.cast(positions.row_lengths(), tf.int32)
    slots = tf.maximum(tf.reduce_max(tf.concat([num_masks, [0]], 0)), 1)  # one slot even when no text has a mask
    mask_positions = positions.to_tensor(0, shape=tf.stack([tf.size(num_masks), slots]))
    logits = model(
        {"token_ids": token_ids, "segment_ids": inputs["segment_ids"], "padding_mask": inputs["padding_mask"],
         "mask_positions": mask_positions},
        training=False,
    )["mlm_logits"]
    probabilities, ids = tf.math.top_k(tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1), k=top_k)
    real = (tf.range(slots)[None, :] < num_masks[:, None])[..., None]
    return {
        "tokens": tf.where(real, tf.gather(tf.constant(tokenizer.vocabulary), ids), ""),
        "probabilities": tf.where(real, probabilities, 0.0),
        "token_ids": tf.where(real, ids, -1),
        "num_masks": num_masks,
        "truncated": inputs["truncated"],
    }


def encode(encoder: keras.Model, tokenizer: WordPieceTokenizer, texts, seq_length: int) -> dict:
    """The ``encode`` computation: pooled and per-token embeddings of raw texts."""
    inputs = encoder_inputs(tokenizer, texts, seq_length)
    truncated = inputs.pop("truncated")
    outputs = encoder(inputs, training=False)
    return {
        "pooled_output": tf.cast(outputs["pooled_output"], tf.float32),
        "sequence_output": tf.cast(outputs["sequence_output"], tf.float32),
        "padding_mask": inputs["padding_mask"],
        "truncated": truncated,
    }


def checked_tokenizer(cfg: BertMlmConfig, model: bert.BertPretrainer) -> WordPieceTokenizer:
    """:func:`tokenizer`, checked against the model's token embedding."""
    tok = tokenizer(cfg)
    rows = model.encoder.get_layer("token_embedding").input_dim
    if rows != tok.vocabulary_size():
        raise ConfigError(
            f"the model embeds {rows} tokens but the run's {VOCABULARY_FILE} has {tok.vocabulary_size()}: "
            "the run folder's assets do not belong to its model.keras"
        )
    return tok


def serving(cfg: BertMlmConfig, model: bert.BertPretrainer) -> Serving:
    tok, seq_length = checked_tokenizer(cfg, model), tokenizer_settings(cfg)["seq_length"]
    # The export tracks the model's objects: as its attribute, the tokenizer's tables are saved.
    model.wordpiece_tokenizer = tok
    text = {"text": tf.TensorSpec([None], tf.string)}
    return Serving(
        {
            "serving_default": Endpoint(
                lambda text: fill_mask(model, tok, text, seq_length, cfg.top_k),
                text,
                {
                    "tokens": "string [B, M, k]: the k most likely tokens at each [MASK], best first ('' on padded slots)",
                    "probabilities": "float32 [B, M, k]: their probabilities (0 on padded slots)",
                    "token_ids": "int32 [B, M, k]: their vocabulary ids (-1 on padded slots)",
                    "num_masks": "int32 [B]: [MASK]s answered; slots from num_masks on are padding",
                    "truncated": f"bool [B]: the text had more than {seq_length - 2} tokens; the rest (masks included) was dropped",
                },
            ),
            "encode": Endpoint(
                lambda text: encode(model.encoder, tok, text, seq_length),
                text,
                {
                    "pooled_output": "float32 [B, H]: tanh pooler output on [CLS]",
                    "sequence_output": "float32 [B, L, H]: the last encoder block's output per token ([CLS] text [SEP] padding)",
                    "padding_mask": "int32 [B, L]: 1 on real tokens, 0 on padding",
                    "truncated": f"bool [B]: the text had more than {seq_length - 2} tokens and was cut",
                },
            ),
        }
    )


def text_of(ids, vocabulary: list[str], settings: Mapping[str, Any], masked=frozenset()) -> str | None:
    """WordPiece ids → a text the tokenizer splits back into them, ``[MASK]`` for the pieces at ``masked``.

    Continuation pieces are glued to the word before them. ``None`` where no text gives the ids
    back: an ``[UNK]`` (its word is lost) or a continuation piece right after a ``[MASK]``.

    Args:
        ids: the pieces of one text (no special tokens).
        vocabulary: the run's vocabulary; settings: its ``tokenizer.json``.
        masked: indices into ``ids`` written as ``[MASK]``.

    Example:
        >>> settings = {"suffix_indicator": "##", "unknown_token": "[UNK]"}
        >>> text_of([2, 3, 4, 1], ["[UNK]", ".", "the", "val", "##ue"], settings, masked={0})
        '[MASK] value .'
    """
    suffix, words = settings["suffix_indicator"], []
    for i, token in enumerate(vocabulary[t] for t in ids):
        continuation = token.startswith(suffix) and i not in masked
        if (token == settings["unknown_token"] and i not in masked) or (continuation and (i == 0 or i - 1 in masked)):
            return None
        if i in masked:
            words.append(MASK)
        elif continuation:
            words[-1] += token[len(suffix) :]
        else:
            words.append(token)
    return " ".join(words)


def _one_segment(rows: list[list[int]]) -> dict[str, np.ndarray]:
    """One-segment encoder inputs of id rows (``[CLS] … [SEP]``), padded with 0 to the longest."""
    length = max(len(row) for row in rows)
    token_ids = np.array([[*row, *[0] * (length - len(row))] for row in rows], np.int32)
    padding_mask = (np.arange(length)[None, :] < np.array([len(row) for row in rows])[:, None]).astype(np.int32)
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis in float64 (the serving examples' NumPy post-processing)."""
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def serving_examples(cfg: BertMlmConfig, model: bert.BertPretrainer, test: tf.data.Dataset, count: int = 3) -> dict:
    """The first sentences of ``count`` test pairs as raw text, and the Keras model's answers for them.

    A pair is used when its first sentence A holds a masked token and :func:`text_of` can write A
    both with ``[MASK]`` at the masked positions (``serving_default``) and with its original tokens
    (``encode``). The model reads ``[CLS] A [SEP]`` (one segment), taken from the pair's ids.
    """
    vocab, settings = vocabulary(cfg), tokenizer_settings(cfg)
    cls, sep, mask = (vocab.index(token) for token in (CLS, SEP, MASK))
    sentences, masks, requests = [], [], []
    for x, y, weights in test.as_numpy_iterator():
        used = weights["mlm_logits"] > 0
        ids = x["token_ids"].copy()
        ids[x["mask_positions"][used]] = y["mlm_logits"][used]  # the original tokens
        sentence = ids[1 : np.argmax(ids == sep)]  # A of [CLS] A [SEP] B [SEP]
        masked = sorted(int(p) - 1 for p in x["mask_positions"][used] if p <= len(sentence))
        texts = (text_of(sentence, vocab, settings, set(masked)), text_of(sentence, vocab, settings))
        if masked and None not in texts:
            sentences.append(sentence)
            masks.append(masked)
            requests.append(texts)
        if len(sentences) == count:
            break
    if not sentences:
        raise ValueError("no test pair has a first sentence with a masked token that can be written as text")

    plain = _one_segment([[cls, *s, sep] for s in sentences])
    encoded = model.encoder(plain, training=False)
    inputs = _one_segment([[cls, *np.where(np.isin(np.arange(len(s)), m), mask, s), sep] for s, m in zip(sentences, masks)])
    num_masks = np.array([len(m) for m in masks], np.int32)
    slots = int(num_masks.max())
    positions = np.array([[p + 1 for p in m] + [0] * (slots - len(m)) for m in masks], np.int32)
    probabilities = softmax(model({**inputs, "mask_positions": positions}, training=False)["mlm_logits"])
    top = np.argsort(-probabilities, axis=-1, kind="stable")[..., : cfg.top_k]
    real = (np.arange(slots)[None, :] < num_masks[:, None])[..., None]
    tokens = np.array([token.encode() for token in vocab], object)
    not_truncated = np.zeros(len(sentences), bool)  # A fitted in the pair, so [CLS] A [SEP] fits
    return {
        "serving_default": ServingExample(
            {"text": np.array([with_masks.encode() for with_masks, _ in requests], object)},
            {
                "tokens": np.where(real, tokens[top], b""),
                "probabilities": np.where(real, np.take_along_axis(probabilities, top, -1), 0.0).astype(np.float32),
                "token_ids": np.where(real, top, -1).astype(np.int32),
                "num_masks": num_masks,
                "truncated": not_truncated,
            },
        ),
        "encode": ServingExample(
            {"text": np.array([original.encode() for _, original in requests], object)},
            {
                "pooled_output": np.asarray(encoded["pooled_output"], np.float32),
                "sequence_output": np.asarray(encoded["sequence_output"], np.float32),
                "padding_mask": plain["padding_mask"],
                "truncated": not_truncated,
            },
        ),
    }


def unigram_baselines(train_counts: np.ndarray, labels: np.ndarray) -> dict:
    """Most-frequent-token accuracy and add-one unigram perplexity of ``labels`` (masked tokens).

    Example:
        >>> unigram_baselines(np.array([0, 3, 1]), np.array([1, 1, 2]))["most_frequent_token_accuracy"]
        0.6666666666666666
    """
    probabilities = (train_counts + 1.0) / (train_counts.sum() + len(train_counts))
    return {
        "most_frequent_token_id": int(np.argmax(train_counts)),
        "most_frequent_token_accuracy": float(np.mean(labels == np.argmax(train_counts))),
        "unigram_perplexity": float(math.exp(-np.mean(np.log(probabilities[labels])))),
    }


def report(cfg: BertMlmConfig, model: bert.BertPretrainer, splits: Splits, run_dir) -> dict:
    tok = checked_tokenizer(cfg, model)
    counts = np.zeros(tok.vocabulary_size(), np.int64)
    for ids in corpus.load(cfg.data, seed=cfg.data_seed).train.batch(64).map(lambda d: tok.tokenize(d).flat_values).as_numpy_iterator():
        counts += np.bincount(ids, minlength=len(counts))
    mlm_labels, nsp_labels = [], []
    for _, y, weights in splits.test.batch(256).as_numpy_iterator():
        mlm_labels.append(y["mlm_logits"][weights["mlm_logits"] > 0])
        nsp_labels.append(y["nsp_logits"])
    train_nsp = np.concatenate([y["nsp_logits"] for _, y, _ in splits.train.batch(1024).as_numpy_iterator()])
    nsp_labels = np.concatenate(nsp_labels)
    majority = int(np.mean(train_nsp) >= 0.5)
    test = model.evaluate(splits.test.batch(cfg.batch_size or 64), verbose=0, return_dict=True)
    answer = fill_mask(model, tok, tf.constant([cfg.example_text]), cfg.seq_length, cfg.top_k)
    tokens = [t.decode() for t in answer["tokens"].numpy()[0, 0]]
    unigram = unigram_baselines(counts, np.concatenate(mlm_labels))
    return {
        "test_mlm_accuracy": float(test["mlm_logits_accuracy"]),
        "test_mlm_perplexity": float(test["mlm_logits_perplexity"]),
        "test_nsp_accuracy": float(test["nsp_logits_accuracy"]),
        "baselines": {
            **unigram,
            "most_frequent_token": tok.vocabulary[unigram["most_frequent_token_id"]],
            "nsp_chance_accuracy": 0.5,
            "nsp_majority_accuracy": float(np.mean(nsp_labels == majority)),
        },
        "test_masked_tokens": int(sum(len(m) for m in mlm_labels)),
        "fill_mask_example": {
            "text": cfg.example_text,
            "tokens": tokens,
            "probabilities": [round(float(p), 4) for p in answer["probabilities"].numpy()[0, 0]],
        },
        "vocab_size": tok.vocabulary_size(),
        "vocabulary": str(asset_path(cfg, VOCABULARY_FILE)),
    }


RECIPE = register(
    Recipe(
        name="bert_mlm",
        description="BERT pre-training (masked LM + next sentence) on pydoc text, fill_mask/encode serving from raw strings (notes-002-part2 §54)",
        config=BertMlmConfig,
        datasets=datasets,
        model=model,
        compile_args=compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
        train_transform=train_transform,
    )
)
