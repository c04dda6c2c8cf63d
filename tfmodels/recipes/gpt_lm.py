"""``gpt_lm``: the decoder-only Transformer language model of notes-001 §1 on the recurrent models' corpus.

Specs: notes-001.md §1 (seed 000/001 "KeyPoint" L1–24: token embedding, stacked causal
self-attention + MLP blocks with residuals, un-embedding, softmax with temperature T, GPT-3's
96 layers / 96 heads / d = 12288 / MLP ≈ 2/3 of 175 B); notes-002-part2.md §47–§51 (self-attention,
multi-head attention, the causal mask, the position-wise MLP). The model is
:func:`tfmodels.models.gpt.build_gpt_lm` (pre-LN blocks, learned positions and tied embeddings as
GPT-2/3 — paper defaults; see that module).

Everything but the model is :mod:`tfmodels.recipes.language_models`' (imported, not copied):
the data (Python's ``pydoc_data`` topics by default, character level, vocabulary counted on the
training documents and kept as the run asset ``assets/vocabulary.txt``, ``<bos>`` before each
document), the training windows of ``num_steps`` tokens at a random offset per epoch, the loss
(sparse cross-entropy on logits at every position), accuracy and perplexity, gradient clipping
to a global norm of 1, and the report's perplexity baselines (uniform, unigram, best n-gram on
the same test windows). Fields of
:class:`~tfmodels.recipes.language_models.LanguageModelConfig` keep their meaning; for the GPT,
``hidden_units`` is the model width d, ``num_layers`` the number of blocks and ``num_steps``
the context: the training windows **and** the position table (``max_positions``), since
positions the windows never reach would stay untrained.

Serving (core TensorFlow only) has the recurrent models' two signatures, with their inputs,
outputs and documentation (``serving_default`` generate: ``prefix``, ``temperature`` (0 =
greedy), ``num_tokens``, ``seed`` → ``continuation``, ``continuation_ids``, ``prefix_tokens``;
``score``: ``text`` → ``perplexity``, ``log_likelihood``, ``num_tokens``), with two differences
that come from the learned positions:

* generation keeps each row's newest ``num_steps`` tokens as its context once the prefix and
  the new tokens are longer (:func:`tfmodels.models.gpt.context_window`), so any prefix and up to
  ``max_new_tokens`` tokens work;
* ``score`` reads at most ``num_steps − 1`` tokens of a text (plus ``<bos>``); a longer text is
  rejected with an error that says so (a perplexity over a sliding context would be another
  quantity than the model's).

The serving examples are the recurrent models' (test texts of at most ``num_steps − 1`` tokens);
their greedy reference loop crops its context to the newest ``num_steps`` ids like generation.

Report (``metrics.json``): the recurrent models' report (test perplexity beside the baselines,
greedy and T = 0.8 continuations of ``sample_prefix``), plus the next-token distribution after
``sample_prefix`` at temperatures 0, 0.5, 1 and 2 (notes L7: entropy grows with T, T = 0 is
all weight on the maximum) and the parameter count by part.

Presets:

* ``tiny``: tests, seconds.
* ``default``: 4 blocks, d = 128, 4 heads, context 64, no dropout, 5 epochs of Adam with a
  cosine decay from 2e-3 on batches of 16; about 10 minutes on 2 CPU cores (measured result in
  the README).
* ``paper``: GPT-3 175B's architecture (96 blocks, 96 heads, d = 12288, context 2048) and
  optimisation (Brown et al. 2020 Table 2.1 and §C: batch 3.2 M tokens ≈ 1536 × 2048, learning
  rate 0.6e-4 with cosine decay, AdamW weight decay 0.1, clipping at 1.0; their Adam β₂ = 0.95
  is not a field here, Keras' 0.999 is used). It is for counting: its weights alone are 0.7 TB
  in float32, so building it stops with an error naming the count and the memory needed
  (:func:`paper_parameter_breakdown` counts it with GPT-3's 50257-token vocabulary, never
  instantiated). GPT-3 reads BPE tokens; this corpus is characters or words.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar, Mapping

import keras
import numpy as np
import tensorflow as tf

from tfmodels.config import ConfigError, resolve
from tfmodels.export.signatures import Serving
from tfmodels.models.gpt import GPT3_175B, build_gpt_lm, context_window, gpt_parameter_breakdown, temperature_softmax
from tfmodels.recipes import language_models as lm
from tfmodels.registry import Recipe, register

REPORT_TEMPERATURES = (0.0, 0.5, 1.0, 2.0)
# Training holds the weights, their gradient and Adam's two moments: four float32 copies.
TRAINING_COPIES = 4


@dataclasses.dataclass
class GptLmConfig(lm.LanguageModelConfig):
    """``gpt_lm`` config: :class:`~tfmodels.recipes.language_models.LanguageModelConfig` plus the Transformer's fields.

    Args:
        num_heads: attention heads per block; ``hidden_units`` (the width d) must be a multiple.
        tie_embeddings: logits through the transposed token embedding (GPT-2/3, paper default).
        hidden_units: d, the width of the embeddings and the residual stream.
        num_layers: GPT blocks.
        num_steps: tokens per training window and the model's context (``max_positions``).
        dropout: on the embeddings, the attention probabilities and both sub-layer outputs.
    """

    num_heads: int = 4
    tie_embeddings: bool = True
    hidden_units: int = 128
    num_layers: int = 4
    num_steps: int = 128
    dropout: float = 0.1

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {
            "epochs": 2, "batch_size": 16, "num_steps": 16, "hidden_units": 32, "num_layers": 2, "num_heads": 2,
            "dropout": 0.0, "max_tokens": 3000, "learning_rate": 1e-2, "max_new_tokens": 50, "verbose": 0,
        },
        # Five passes over the 270,000 training characters fit in 10 minutes of 2 shared CPU
        # cores (an epoch took 66-197 s, with the machine's load). Batches of 16 windows of 64
        # make four times as many steps as 32 of 128 for the same tokens (validation perplexity
        # 9.7 after one epoch against 10.8). No dropout: the model still underfits (3 epochs:
        # validation perplexity 8.3, 5.5, 4.8; test 4.73).
        "default": {
            "epochs": 5, "batch_size": 16, "num_steps": 64, "learning_rate": 2e-3, "lr_schedule": "cosine",
            "dropout": 0.0, "verbose": 2,
        },
        "paper": {
            "num_layers": GPT3_175B["num_layers"], "num_heads": GPT3_175B["num_heads"],
            "hidden_units": GPT3_175B["hidden_dim"], "num_steps": GPT3_175B["max_positions"],
            "batch_size": 1536, "optimizer": "adamw", "learning_rate": 0.6e-4, "weight_decay": 0.1,
            "lr_schedule": "cosine", "clip_global_norm": 1.0,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_heads < 1 or self.hidden_units % self.num_heads:
            raise ConfigError(f"hidden_units ({self.hidden_units}) must be a multiple of num_heads ({self.num_heads})")
        if self.embedding_dim:
            raise ConfigError("gpt_lm embeds tokens at the model width: set hidden_units, not embedding_dim")


def parameter_breakdown(cfg: GptLmConfig, vocab_size: int) -> dict[str, int]:
    """The closed-form parameter count of ``cfg``'s model with ``vocab_size`` tokens, by part (nothing is built)."""
    return gpt_parameter_breakdown(vocab_size, cfg.num_layers, cfg.num_heads, cfg.hidden_units, cfg.num_steps, cfg.tie_embeddings)


def paper_parameter_breakdown() -> dict[str, int]:
    """The ``paper`` preset counted with GPT-3's 50257-token vocabulary: 174,604,259,328 in all (never instantiated).

    Example:
        >>> parts = paper_parameter_breakdown()
        >>> round(parts["mlp"] / parts["total"], 3)         # notes-001 §1 L24: "two thirds"
        0.664
    """
    return parameter_breakdown(resolve(GptLmConfig, "paper"), GPT3_175B["vocab_size"])


def model(cfg: GptLmConfig) -> keras.Model:
    """The GPT of ``cfg`` on the corpus vocabulary; refuses sizes whose training state cannot fit in memory."""
    vocab_size = lm.run_vocabulary(cfg).size
    count = parameter_breakdown(cfg, vocab_size)["total"]
    needed = TRAINING_COPIES * 4 * count  # float32 weights, gradient and Adam's two moments
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ConfigError(
            f"gpt_lm with {count:,} parameters needs about {needed / 2**30:,.0f} GiB to train "
            f"(weights, gradients and Adam's moments in float32); this machine has {available / 2**30:,.0f} GiB. "
            "The paper preset is for counting (tfmodels.recipes.gpt_lm.paper_parameter_breakdown)."
        )
    return build_gpt_lm(
        vocab_size, cfg.num_layers, cfg.num_heads, cfg.hidden_units, cfg.num_steps, cfg.dropout, cfg.tie_embeddings
    )


def cropped_context(net: keras.Model, max_positions: int):
    """The ``context`` of the shared generation: each row reads its newest ``max_positions`` tokens."""
    return lambda lengths: context_window(net, lengths, max_positions)


def bounded_context(net: keras.Model, max_positions: int):
    """``net`` as a callable that rejects inputs longer than its context with a message for ``score`` clients."""

    def call(ids, training=False):
        check = tf.debugging.assert_less_equal(
            tf.shape(ids)[1], max_positions,
            message=f"score reads at most {max_positions - 1} tokens per text (the model's context is {max_positions} with <bos>)",
        )
        with tf.control_dependencies([check]):
            return net(tf.identity(ids), training=training)

    return call


def serving(cfg: GptLmConfig, net: keras.Model) -> Serving:
    """The recurrent models' signatures (inputs, documented outputs) computed for a GPT."""
    return lm.serving(cfg, net, context=cropped_context(net, cfg.num_steps), score_model=bounded_context(net, cfg.num_steps))


def serving_examples(cfg: GptLmConfig, net: keras.Model, test: tf.data.Dataset):
    """The recurrent models' examples; the greedy loop reads the newest ``num_steps`` ids, as generation does."""
    return lm.serving_examples(cfg, net, test, max_positions=cfg.num_steps)


def next_token_distributions(net: keras.Model, codec: lm.TextCodec, prefix: str, max_positions: int) -> dict:
    """Entropy (nats) and most likely token of the next-token distribution after ``prefix`` at each of :data:`REPORT_TEMPERATURES`."""
    ids, lengths = codec.documents(tf.constant([prefix]))
    logits = context_window(net, lengths, max_positions)(ids[:, : int(lengths[0])])[0, -1]
    result = {}
    for temperature in REPORT_TEMPERATURES:
        p = temperature_softmax(logits, temperature).numpy().astype(np.float64)
        top = int(np.argmax(p))
        entropy = 0.0 - float(np.sum(p[p > 0] * np.log(p[p > 0])))  # 0.0 - : no "-0.0" at T = 0
        result[f"T={temperature:g}"] = {"entropy": entropy, "top_token": codec.tokens[top], "top_probability": float(p[top])}
    return result


def report(cfg: GptLmConfig, net: keras.Model, splits, run_dir) -> dict:
    result = lm.report(cfg, net, splits, run_dir, context=cropped_context(net, cfg.num_steps))
    codec = lm.text_codec(cfg, net)
    result["next_token_after_sample_prefix"] = next_token_distributions(net, codec, cfg.sample_prefix, cfg.num_steps)
    result["parameters_by_part"] = parameter_breakdown(cfg, result["vocab_size"])
    return result


RECIPE = register(
    Recipe(
        name="gpt_lm",
        description="decoder-only Transformer (GPT) character-level language model, GPT-3 parameter count (notes-001 §1)",
        config=GptLmConfig,
        datasets=lm.datasets,
        model=model,
        compile_args=lm.compile_args,
        serving=serving,
        serving_examples=serving_examples,
        report=report,
        train_transform=lm.train_transform,
    )
)
