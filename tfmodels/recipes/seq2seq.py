"""Machine translation: ``seq2seq``, ``seq2seq_attention`` (GRU encoder–decoders) and ``transformer_mt``.

Specs: notes-002-part2.md §40–§41 (seed 002 L3337–3433: encoder–decoder, seq2seq, teacher
forcing, ``<bos>``/``<eos>``), §42 (L3435–3462: BLEU), §43 (L3464–3526: greedy and beam search,
the length penalty), §45–§46 (L3614–3659: masked softmax, Bahdanau attention), §48–§53
(L3687–3836: the Transformer); notes-001.md §1 (temperature softmax), §8–§9. Models:
:func:`tfmodels.models.seq2seq.build_seq2seq` (``attention=False`` / ``True``) and
:func:`tfmodels.models.transformer.build_transformer`.

Data (``DATA=embedded``, offline): English number words → digits, 0–999,999
(:mod:`pipelines.text.translation`; ``"three thousand and five" → "3 0 0 5"``), split 80 / 10 / 10 %
by source with ``data_seed``, so every test number is unseen in training. ``file:<path>`` reads
tab-separated pairs (d2l's ``fra.txt``; use ``--set min_freq=2`` as d2l does) and ``tfds:<name>``
a TFDS translation set (e.g. ``tfds:ted_hrlr_translate/pt_to_en``).

Run assets (:func:`vocabularies`): the source and target vocabularies are counted on the training
pairs only, in the run's data stage, and saved as ``assets/source_vocabulary.txt`` and
``assets/target_vocabulary.txt`` (one token a line, in id order). The model's sizes, the report
and the export read them from the run folder, so a copied run exports and evaluates with its
data source gone. The tokenizer learns nothing: :func:`pipelines.text.translation.normalize` and
``num_steps`` (in ``config.json``) fix it.

Examples (§41, [REF d2l]): source ids truncated/padded to ``num_steps``; label = target +
``<eos>``, truncated/padded to ``num_steps``; decoder input = ``<bos>`` + label without its last
position (teacher forcing).

Loss: the notes' masked softmax cross-entropy — ``<pad>`` label positions are left out and the
loss is the mean over real target tokens (Keras ``ignore_class=0``). d2l averages each sentence
over all ``num_steps`` positions with zeros at the padding; the token mean weighs every real
token the same. Metric: ``token_accuracy``, each sentence's share of correct non-pad tokens,
averaged. Gradients clipped to global norm 1 ([REF d2l] θ = 1).

Report (``metrics.json``): on the held-out test pairs, the notes' BLEU (§42, k = 2 as d2l
evaluates; the mean of sentence scores) and corpus BLEU (same weights and penalty, counts summed
over the corpus; :func:`tfmodels.metrics.bleu.corpus_bleu`), exact-match accuracy, for **greedy**
and **beam** search, beside baselines scored the same way: ``copy_source`` (the source tokens as
the translation), ``most_frequent_target`` (the most frequent training target for every input)
and ``nearest_source`` (the target of the training pair whose source shares the most words,
Jaccard overlap of word sets — a retrieval "translation memory"; computed over at most 20,000
training pairs). BLEU compares token lists after the training normalisation; a reference longer
than ``num_steps − 1`` tokens is kept whole, so truncation costs the model BLEU. Sample
translations of the first test pairs are included. The model decodes the test pipeline's source
ids (:func:`evaluation_translations`), not the raw strings.

Serving (core TensorFlow only; both vocabularies travel in the graph):

* ``serving_default`` — beam search with ``beam_width`` (fixed by the config at export; default
  4, notes-001 §9's tiny config; the notes recommend 3–10) and the length penalty
  ``length_penalty`` / ``alpha`` (default the notes' ``score / (5 + L)^0.75``).
* ``greedy`` — the same with k = 1 (greedy search, §43).
* ``sample`` — temperature-softmax sampling (notes-001 §1): also ``temperature`` float32 scalar
  (0 = greedy; larger = more varied) and ``seed`` int64 scalar (the same request and seed give
  the same translation); ``score`` is then the log-probability.

All take ``source`` string [B] and return ``translation`` string [B] (target tokens joined with
spaces, ``<eos>`` and padding dropped), ``translation_ids`` int32 [B, num_steps] (with ``<eos>``
and ``<pad>``), ``translation_length`` int32 [B] (tokens, ``<eos>`` included), ``score`` float32
[B] (the length-penalised log-probability that picked it), ``log_probability`` float32 [B] and
``source_tokens`` int32 [B] (tokens read from the source after normalisation, before
truncation). Defined answers: a source is normalised like the training text; unknown words read
as ``<unk>``; a source longer than ``num_steps`` tokens is **truncated** to its first
``num_steps`` tokens, as training examples are (``source_tokens > num_steps`` tells the client);
an empty source (no tokens after normalisation) returns an empty translation with length 0 and
score 0 instead of decoding from an empty encoding. The decoder writes at most ``num_steps``
tokens; a translation cut off there has no ``<eos>`` (``translation_length == num_steps`` and the
last id is not ``<eos>``).

Serving examples (:func:`serving_examples`, checked by ``verify-export``): three test examples
(the test split's first, middle and last), their source strings rebuilt from the test pipeline's
ids with the run's source vocabulary, and every output as the evaluation path gives it — the
model decoding those ids (greedy, beam, and for ``sample`` temperature 0.8 with seed 7,
reproduced from the same stateless seeds), with text and lengths made in NumPy.

Presets: ``tiny`` (tests: the first 600 pairs, small widths, 2 epochs), ``default`` (d2l's widths,
Adam with a cosine decay, all 9,681 training pairs, 20 epochs; about 9–12 minutes on 2 shared CPU
cores) and ``paper``: for the GRU models d2l's [REF d2l] §41/§46 settings (embedding 32, hidden 32,
2 layers, dropout 0.1, batch 64, num_steps 10, Adam 0.005, θ = 1, 300 epochs for seq2seq and 250
with attention); for ``transformer_mt`` Transformer-base (d_model 512, 8 heads, FFN 2048, 6 + 6
layers, dropout 0.1; paper default) — its ``default`` is d2l's small translator (32, 4 heads, FFN
64, 2 + 2 layers, [REF d2l] §53) with Adam 0.001.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from pipelines.text import translation
from pipelines.text.vocabulary import BOS_ID, EOS_ID, PAD_ID, Vocabulary, string_lookup
from tfmodels.config import ConfigError, TrainConfig
from tfmodels.export.signatures import Endpoint, Serving, ServingExample
from tfmodels.metrics.bleu import bleu, corpus_bleu
from tfmodels.models import seq2seq as seq2seq_model
from tfmodels.models import transformer
from tfmodels.models.beam_search import LENGTH_PENALTIES, sample, translate
from tfmodels.models.seq2seq import build_seq2seq
from tfmodels.models.transformer import build_transformer
from tfmodels.registry import Recipe, register
from tfmodels.training.run_assets import lines_asset

BLEU_K = 2  # d2l evaluates its translations with k = 2 (§41 [REF d2l]); the notes' example too
RETRIEVAL_LIMIT = 20_000
SAMPLES = 8
VOCABULARIES = ("source_vocabulary.txt", "target_vocabulary.txt")  # run assets, in id order one token a line
EXAMPLES = 3  # test examples in each export's serving examples, spread over the test split
SAMPLE_REQUEST = {"temperature": np.float32(0.8), "seed": np.int64(7)}


@dataclasses.dataclass
class TranslationConfig(TrainConfig):
    """What every translation recipe shares: data, lengths and decoding.

    Args:
        num_steps: source and target length in tokens, ``<eos>`` included ([REF d2l] 10); also
            the most tokens a translation may have and the source truncation length.
        min_freq: training tokens seen fewer times map to ``<unk>`` ([REF d2l] 2 on fra.txt).
        num_examples: keep the first pairs of the data before splitting (0 = all).
        beam_width: k of the served beam search (§43; the notes recommend 3–10).
        alpha: α of the length penalty (§43 L3513: 0.75).
        length_penalty: ``notes`` (``/(5+L)^α``, notes-001 L430–439), ``gnmt`` or ``average``
            (``/L^α``, notes-002 §43); see :mod:`tfmodels.models.beam_search`.
    """

    num_steps: int = 10
    min_freq: int = 0
    num_examples: int = 0
    beam_width: int = 4
    alpha: float = 0.75
    length_penalty: str = "notes"
    learning_rate: float = 0.005
    clip_global_norm: float = 1.0

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {**TrainConfig.CHOICES, "length_penalty": LENGTH_PENALTIES}
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_steps < 2 or self.beam_width < 1:
            raise ConfigError("num_steps must be >= 2 and beam_width >= 1")


@dataclasses.dataclass
class Seq2SeqConfig(TranslationConfig):
    """GRU encoder–decoder config (attention comes from the MODEL name).

    Args:
        embedding_dim: embedding width of source and target ([REF d2l] 32).
        hidden_units: GRU width ([REF d2l] 32).
        num_layers: stacked GRUs on each side ([REF d2l] 2).
        dropout: between GRU layers and on attention weights ([REF d2l] 0.1).
    """

    embedding_dim: int = 32
    hidden_units: int = 32
    num_layers: int = 2
    dropout: float = 0.1


def _presets(paper_epochs: int) -> dict[str, dict[str, Any]]:
    tiny = {"epochs": 2, "num_examples": 600, "embedding_dim": 16, "hidden_units": 16, "num_layers": 1, "verbose": 0}
    default = {"epochs": 20, "lr_schedule": "cosine", "verbose": 2}
    # [REF d2l] §41/§46: batch 64, num_steps 10, Adam lr 0.005, θ = 1, 300 / 250 epochs.
    paper = {"epochs": paper_epochs, "batch_size": 64, "num_steps": 10, "learning_rate": 0.005}
    return {"tiny": tiny, "default": default, "paper": paper}


@dataclasses.dataclass
class Seq2SeqGruConfig(Seq2SeqConfig):
    """``seq2seq``: the encoder's final state as the fixed context (§41)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _presets(300)


@dataclasses.dataclass
class Seq2SeqAttentionConfig(Seq2SeqConfig):
    """``seq2seq_attention``: Bahdanau attention over the encoder outputs (§46)."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _presets(250)


@dataclasses.dataclass
class TransformerMtConfig(TranslationConfig):
    """``transformer_mt``: the encoder–decoder Transformer (§48–§53).

    Args:
        d_model: model width ([REF d2l] 32; Transformer-base 512).
        num_heads: attention heads ([REF d2l] 4; base 8).
        ffn_dim: position-wise FFN width ([REF d2l] 64; base 2048).
        num_layers: blocks on each side ([REF d2l] 2; base 6).
        dropout: everywhere ([REF d2l] and base 0.1).
    """

    d_model: int = 32
    num_heads: int = 4
    ffn_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.1

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {"epochs": 2, "num_examples": 600, "d_model": 16, "num_heads": 2, "ffn_dim": 32, "num_layers": 1, "verbose": 0},
        "default": {"epochs": 20, "lr_schedule": "cosine", "learning_rate": 0.001, "verbose": 2},
        # Transformer-base (Vaswani et al. 2017, paper default); d2l trains its small one 200 epochs.
        "paper": {"d_model": 512, "num_heads": 8, "ffn_dim": 2048, "num_layers": 6, "dropout": 0.1, "epochs": 200},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be a multiple of num_heads ({self.num_heads})")


def split_pairs(cfg: TranslationConfig) -> dict[str, list[tuple[str, str]]]:
    """The config's raw pairs per split (split with ``data_seed``); read by the data stage and the report only."""
    return translation.split_data(cfg.data, cfg.data_seed, cfg.num_examples)


def vocabularies(cfg: TranslationConfig, pairs: Mapping[str, list] | None = None) -> tuple[Vocabulary, Vocabulary]:
    """The run's source and target vocabularies, the assets ``source_vocabulary.txt`` and ``target_vocabulary.txt``.

    Counted on the training pairs (``pairs``, else the config's data) while the run's data stage
    runs and saved in the run folder; read from there afterwards, never counted again.
    """
    train = functools.cache(lambda: (pairs or split_pairs(cfg))["train"])  # the data are read once, and only to count
    return tuple(
        Vocabulary(lines_asset(cfg, name, lambda column=column: translation.count_vocabulary(
            [pair[column] for pair in train()], cfg.min_freq).tokens))
        for column, name in enumerate(VOCABULARIES)
    )


def datasets(cfg: TranslationConfig):
    pairs = split_pairs(cfg)
    return translation.TranslationData(*vocabularies(cfg, pairs), pairs, cfg.data).splits(cfg.num_steps)


def _seq2seq_builder(attention: bool, name: str):
    def model(cfg: Seq2SeqConfig) -> keras.Model:
        source, target = vocabularies(cfg)
        return build_seq2seq(
            source.size, target.size, cfg.embedding_dim, cfg.hidden_units, cfg.num_layers, cfg.dropout, attention, name=name,
        )

    return model


def transformer_model(cfg: TransformerMtConfig) -> keras.Model:
    source, target = vocabularies(cfg)
    return build_transformer(
        source.size, target.size, cfg.d_model, cfg.num_heads, cfg.ffn_dim,
        cfg.num_layers, cfg.dropout, max_length=max(cfg.num_steps, 16), name="transformer_mt",
    )


def token_accuracy(labels, logits):
    """Per sentence: the share of its real (non-``<pad>``) label tokens predicted correctly."""
    labels = tf.cast(labels, tf.int32)
    real = tf.cast(labels != PAD_ID, tf.float32)
    correct = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32) == labels, tf.float32) * real
    return tf.math.divide_no_nan(tf.reduce_sum(correct, axis=-1), tf.reduce_sum(real, axis=-1))


def compile_args(cfg: TranslationConfig) -> dict:
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
        "metrics": [keras.metrics.MeanMetricWrapper(token_accuracy, name="token_accuracy")],
    }


DECODER_STEPS = {"seq2seq": seq2seq_model.decoder_step, "transformer_mt": transformer.decoder_step}


def _decoder_step(cfg: TranslationConfig):
    return DECODER_STEPS["transformer_mt" if isinstance(cfg, TransformerMtConfig) else "seq2seq"]


def search(cfg: TranslationConfig, model: keras.Model, source_ids: tf.Tensor, beam_width: int) -> dict[str, tf.Tensor]:
    """Beam search over ``[B, num_steps]`` source ids (greedy for ``beam_width=1``): ``ids``, ``lengths``, ``log_prob``, ``score``."""
    return translate(_decoder_step(cfg), model, source_ids, cfg.num_steps, BOS_ID, EOS_ID, beam_width, cfg.alpha,
                     cfg.length_penalty)


def draw(cfg: TranslationConfig, model: keras.Model, source_ids: tf.Tensor, temperature, seed) -> dict[str, tf.Tensor]:
    """Temperature sampling (notes-001 §1) over ``[B, num_steps]`` source ids; ``score`` = ``log_prob``."""
    step, state = _decoder_step(cfg)(model, source_ids, cfg.num_steps)
    out = sample(step, state, tf.shape(source_ids)[0], cfg.num_steps, BOS_ID, EOS_ID, temperature, seed)
    return {**out, "score": out["log_prob"]}


class Translator:
    """Raw source strings → translations with a trained model, in core TensorFlow ops (the serving computation).

    Args:
        cfg: the run's config (lengths, beam width, length penalty).
        model: a :func:`~tfmodels.models.seq2seq.build_seq2seq` or
            :func:`~tfmodels.models.transformer.build_transformer` model trained on ``cfg``'s data.
    """

    def __init__(self, cfg: TranslationConfig, model: keras.Model):
        source, target = vocabularies(cfg)
        sizes = (model.get_layer("encoder").vocab_size, model.output_shape[-1])
        if sizes != (source.size, target.size):
            raise ConfigError(
                f"the model reads {sizes[0]} source and writes {sizes[1]} target tokens but {cfg.data!r} "
                f"(num_examples={cfg.num_examples}, min_freq={cfg.min_freq}) gives vocabularies of "
                f"{source.size} and {target.size}: export with the training run's settings"
            )
        self.cfg, self.model = cfg, model
        self.source_lookup = string_lookup(source.tokens, name="source_lookup")
        self.target_tokens = tf.constant(target.tokens)

    def text(self, ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """``[B, N]`` target ids → ``[B]`` strings: the tokens before ``<eos>``, joined with spaces."""
        keep = (tf.range(tf.shape(ids)[1])[None, :] < lengths[:, None]) & (ids != EOS_ID) & (ids != PAD_ID)
        return tf.strings.reduce_join(tf.ragged.boolean_mask(tf.gather(self.target_tokens, ids), keep), axis=1, separator=" ")

    def __call__(self, source: tf.Tensor, beam_width: int = 1, temperature=None, seed=None) -> dict[str, tf.Tensor]:
        """Translates ``[B]`` strings: beam search of ``beam_width``, or sampling when ``temperature`` is given."""
        tokens = translation.tokenize(source)
        source_ids = translation.pad_ids(self.source_lookup(tokens), self.cfg.num_steps)
        if temperature is None:
            out = search(self.cfg, self.model, source_ids, beam_width)
        else:
            out = draw(self.cfg, self.model, source_ids, temperature, seed)
        empty = tokens.row_lengths() == 0  # nothing to translate: an empty answer, not a decoding of nothing
        lengths = tf.where(empty, 0, out["lengths"])
        ids = tf.where(empty[:, None], PAD_ID, out["ids"])
        return {
            "translation": self.text(ids, lengths),
            "translation_ids": ids,
            "translation_length": lengths,
            "score": tf.where(empty, 0.0, out["score"]),
            "log_probability": tf.where(empty, 0.0, out["log_prob"]),
            "source_tokens": tf.cast(tokens.row_lengths(), tf.int32),
        }


OUTPUTS = {
    "translation": "string [B]: the target tokens joined with spaces (<eos> and padding dropped)",
    "translation_ids": "int32 [B, num_steps]: the target ids, <eos> included, then <pad>",
    "translation_length": "int32 [B]: target tokens including <eos> (num_steps when cut off; 0 for an empty source)",
    "score": "float32 [B]: log-probability / length penalty, the beam's final score (sample: the log-probability)",
    "log_probability": "float32 [B]: natural-log probability of the translation",
    "source_tokens": "int32 [B]: source tokens after normalisation, before truncation to num_steps",
}


def serving(cfg: TranslationConfig, model: keras.Model) -> Serving:
    translator = Translator(cfg, model)
    # The export tracks the model's objects only: as an attribute, the lookup table is saved with it.
    model.source_lookup = translator.source_lookup
    spec = {"source": tf.TensorSpec([None], tf.string)}
    sample_spec = {**spec, "temperature": tf.TensorSpec([], tf.float32), "seed": tf.TensorSpec([], tf.int64)}
    return Serving(
        {
            "serving_default": Endpoint(lambda source: translator(source, cfg.beam_width), spec, OUTPUTS),
            "greedy": Endpoint(lambda source: translator(source, 1), spec, OUTPUTS),
            "sample": Endpoint(
                lambda source, temperature, seed: translator(source, temperature=temperature, seed=seed), sample_spec, OUTPUTS
            ),
        }
    )


def pipeline_source_ids(test: tf.data.Dataset) -> np.ndarray:
    """``[N, num_steps]`` source ids of the unbatched test split."""
    return np.stack(list(test.map(lambda features, *_: features["source_ids"]).as_numpy_iterator()))


def evaluation_translations(
    cfg: TranslationConfig, model: keras.Model, source_ids: np.ndarray, target_tokens: list[str], batch_size: int = 256, **decoding
) -> dict[str, np.ndarray]:
    """The evaluation path's translations of test-pipeline source ids, in the form of the served outputs.

    The model decodes the pipeline's ``[N, num_steps]`` ids with the decoding algorithms serving
    runs too (:func:`search` / :func:`draw` over :mod:`tfmodels.models.beam_search`: the model's
    encoder and decoder step, no strings); the text, the lengths and the empty-source answer are
    made here in NumPy. None of the serving graph's normalising, tokenising, lookup, truncation
    or text assembly takes part, so comparing the two checks them.

    Args:
        decoding: ``beam_width=k`` (1 = greedy), or ``temperature`` and ``seed`` for sampling
            (the draws are stateless in ``(seed, step)``, so the same rows, temperature and seed
            reproduce a served sample exactly).
    """
    decoder = draw if "temperature" in decoding else search
    decode = tf.function(lambda ids: decoder(cfg, model, ids, **decoding),
                         input_signature=[tf.TensorSpec([None, cfg.num_steps], tf.int32)])
    batches = [decode(tf.constant(source_ids[start : start + batch_size], tf.int32))
               for start in range(0, len(source_ids), batch_size)]
    out = {key: np.concatenate([batch[key].numpy() for batch in batches]) for key in batches[0]}
    source_tokens = (source_ids != PAD_ID).sum(axis=1).astype(np.int32)
    empty = source_tokens == 0  # the documented answer to an empty source: an empty translation
    ids = np.where(empty[:, None], PAD_ID, out["ids"]).astype(np.int32)
    lengths = np.where(empty, 0, out["lengths"]).astype(np.int32)
    texts = [" ".join(target_tokens[i] for i in row[:length] if i not in (EOS_ID, PAD_ID)) for row, length in zip(ids, lengths)]
    return {
        "translation": np.array([text.encode() for text in texts], object),
        "translation_ids": ids,
        "translation_length": lengths,
        "score": np.where(empty, 0.0, out["score"]).astype(np.float32),
        "log_probability": np.where(empty, 0.0, out["log_prob"]).astype(np.float32),
        "source_tokens": source_tokens,
    }


def serving_examples(cfg: TranslationConfig, model: keras.Model, test: tf.data.Dataset) -> dict[str, ServingExample]:
    """Test examples spread over the test split as source strings, with the evaluation path's translations.

    A source string is rebuilt from the test pipeline's ids with the run's source vocabulary
    (its tokens joined with spaces: normalisation is idempotent, so it tokenises to the same
    ids; ``<unk>`` reads back as ``<unk>``). ``sample`` asks for temperature 0.8 with seed 7 and
    expects every output: its draws are reproduced from the same seed (see
    :func:`evaluation_translations`).
    """
    source, target = vocabularies(cfg)
    source_ids = pipeline_source_ids(test)
    source_ids = source_ids[np.linspace(0, len(source_ids) - 1, EXAMPLES).round().astype(int)]
    request = {"source": np.array([" ".join(source.tokens[i] for i in row if i != PAD_ID).encode() for row in source_ids], object)}

    def expected(**decoding):
        return evaluation_translations(cfg, model, source_ids, target.tokens, **decoding)

    return {
        "serving_default": ServingExample(request, expected(beam_width=cfg.beam_width)),
        "greedy": ServingExample(request, expected(beam_width=1)),
        "sample": ServingExample({**request, **SAMPLE_REQUEST}, expected(**SAMPLE_REQUEST)),
    }


def _scores(predictions: list[list[str]], references: list[list[str]]) -> dict[str, float]:
    return {
        "bleu": float(np.mean([bleu(p, r, BLEU_K) for p, r in zip(predictions, references)])),
        "corpus_bleu": corpus_bleu(predictions, references, BLEU_K),
        "exact_match": float(np.mean([p == r for p, r in zip(predictions, references)])),
    }


def _tokens(texts: list[str]) -> list[list[str]]:
    return [[t.decode() for t in row] for row in translation.tokenize(tf.constant(texts)).to_list()]


def nearest_source_targets(train_sources, train_targets, test_sources) -> list[list[str]]:
    """The retrieval baseline: for each test source, the target of the training source with the highest word-set Jaccard overlap."""
    from scipy import sparse

    vocabulary = {token: i for i, token in enumerate(sorted({t for s in train_sources for t in s}))}

    def bag(sentences):
        rows, cols = zip(*[(i, vocabulary[t]) for i, s in enumerate(sentences) for t in set(s) if t in vocabulary]) or ((), ())
        return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sentences), len(vocabulary)))

    train_bag, test_bag = bag(train_sources), bag(test_sources)
    overlap = (test_bag @ train_bag.T).toarray()
    union = np.asarray(test_bag.sum(1)) + np.asarray(train_bag.sum(1)).T - overlap
    best = np.argmax(np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0), axis=1)
    return [train_targets[i] for i in best]


def report(cfg: TranslationConfig, model: keras.Model, splits, run_dir) -> dict:
    pairs = split_pairs(cfg)  # raw strings: the references and the baselines' training pairs
    target_tokens = vocabularies(cfg)[1].tokens
    test_sources, test_targets = (list(c) for c in zip(*pairs["test"]))
    references = _tokens(test_targets)
    source_ids = pipeline_source_ids(splits.test)  # the test pipeline's ids, in the pairs' order
    results, samples = {}, {}
    for name, k in (("greedy", 1), (f"beam_{cfg.beam_width}", cfg.beam_width)):
        texts = [t.decode() for t in evaluation_translations(cfg, model, source_ids, target_tokens, beam_width=k)["translation"]]
        results[name] = _scores([t.split() for t in texts], references)
        samples[name] = texts[:SAMPLES]
    train_sources, train_targets = (list(c) for c in zip(*pairs["train"][:RETRIEVAL_LIMIT]))
    train_target_tokens = _tokens(train_targets)
    source_tokens = _tokens(test_sources)
    counts = collections.Counter(" ".join(t) for t in train_target_tokens)
    most_frequent = counts.most_common(1)[0][0].split()
    baselines = {
        "copy_source": _scores(source_tokens, references),
        "most_frequent_target": {**_scores([most_frequent] * len(references), references), "target": " ".join(most_frequent)},
        "nearest_source": _scores(nearest_source_targets(_tokens(train_sources), train_target_tokens, source_tokens), references),
    }
    return {
        "bleu_k": BLEU_K,
        "test_pairs": len(references),
        **results,
        "baselines": baselines,
        "samples": [
            {"source": s, "reference": r, **{name: samples[name][i] for name in samples}}
            for i, (s, r) in enumerate(zip(test_sources[:SAMPLES], test_targets[:SAMPLES]))
        ],
        "beam_width": cfg.beam_width,
        "length_penalty": f"{cfg.length_penalty}, alpha={cfg.alpha}",
    }


def _register(name: str, config: type[TranslationConfig], model, description: str) -> Recipe:
    return register(
        Recipe(
            name=name,
            description=description,
            config=config,
            datasets=datasets,
            model=model,
            compile_args=compile_args,
            serving=serving,
            serving_examples=serving_examples,
            report=report,
        )
    )


SEQ2SEQ = _register("seq2seq", Seq2SeqGruConfig, _seq2seq_builder(False, "seq2seq"),
                    "GRU encoder-decoder translation, beam search in the served graph (notes-002-part2 §40-43)")
SEQ2SEQ_ATTENTION = _register("seq2seq_attention", Seq2SeqAttentionConfig, _seq2seq_builder(True, "seq2seq_attention"),
                              "GRU encoder-decoder with Bahdanau attention, beam search served (notes-002-part2 §45-46)")
TRANSFORMER_MT = _register("transformer_mt", TransformerMtConfig, transformer_model,
                           "encoder-decoder Transformer translation, beam search and sampling served (notes-002-part2 §48-53)")
