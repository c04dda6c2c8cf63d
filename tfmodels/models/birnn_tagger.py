"""A bidirectional RNN sequence tagger: one label per token from the tokens before *and after* it.

Specs: notes-002-part2.md §39 (seed 002 L3283–3336), notes-001.md §6 (seed 001 L246–269), §35
(L3065–3084: the aligned many-to-many "tagging" pattern). Two recurrent layers read the sequence,
one forward and one backward; their states are concatenated at every step and an output layer
maps them to tag logits ([IMG L3294]):

    →H_t = φ(X_t W_xh^f + →H_{t−1} W_hh^f + b_h^f)     ←H_t = φ(X_t W_xh^b + ←H_{t+1} W_hh^b + b_h^b)
    H_t = [→H_t ; ←H_t]                                 O_t = H_t W_hq + b_q

The notes' implementation (L3296: run a reversed copy, flip its outputs back, concatenate) is
``keras.layers.Bidirectional(..., merge_mode="concat")``; deep bidirectional layers feed both
halves to the next layer (L3292).

**Why this is a tagger and not a next-token language model** (§39 L3302–3303, L3323–3324): the
backward state ``←H_t`` has read ``x_{t+1}, …, x_T``. Trained to predict ``x_{t+1}`` it would read
the answer from its input — d2l's bidirectional LSTM LM reaches perplexity ≈ 1.1 and then writes
nonsense ([REF d2l] §39) — and at generation time the future tokens it learned to rely on do not
exist yet. Where the whole sequence is known in advance (tagging, filling in words, encoding a
sentence, L3311–3315) the backward half is an advantage; ``bidirectional=False`` gives the same
network with the forward layer only (the causal baseline).

Token ids are embedded with ``mask_zero=True``: ``<pad>`` (id 0) is masked, so a padded batch
gives each sequence the tags it gets alone (the backward layer starts at the last real token).
"""

from __future__ import annotations

import keras

from tfmodels.models.rnn_lm import recurrent_layer, recurrent_parameter_count


def build_birnn_tagger(
    vocab_size: int,
    num_tags: int,
    cell: str = "lstm",
    hidden_units: int = 64,
    embedding_dim: int = 16,
    num_layers: int = 1,
    bidirectional: bool = True,
    dropout: float = 0.0,
    name: str = "birnn_tagger",
) -> keras.Model:
    """Embedding → ``num_layers`` (bidirectional) recurrent layers → ``Dense(num_tags)`` logits at every step.

    Args:
        vocab_size: token ids ``0..V−1``; id 0 is padding (masked).
        num_tags: tag classes.
        cell: ``rnn``, ``gru`` or ``lstm`` (:func:`tfmodels.models.rnn_lm.recurrent_layer`).
        hidden_units: ``h`` of each direction (a bidirectional layer outputs ``2h``).
        embedding_dim: width of the learned token embedding.
        num_layers: stacked layers (§39 L3292: both directions feed the next layer).
        bidirectional: ``False`` drops the backward layers (the forward-only baseline).
        dropout: dropout after every recurrent layer.
        name: model name.

    Returns:
        A ``keras.Model`` from int ids ``[B, T]`` to tag logits ``[B, T, num_tags]``.

    Example:
        >>> model = build_birnn_tagger(30, 2, hidden_units=8, embedding_dim=4)
        >>> model.count_params() == tagger_parameter_count(30, 2, "lstm", 8, 4)
        True
    """
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(ids)
    for layer in range(1, num_layers + 1):
        rnn = recurrent_layer(cell, hidden_units, f"{cell}_{layer}", return_sequences=True)
        if bidirectional:
            rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", name=f"bidirectional_{layer}")
        x = rnn(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{layer}")(x)
    logits = keras.layers.Dense(num_tags, name="tag_logits", dtype="float32")(x)
    return keras.Model(ids, logits, name=name)


def tagger_parameter_count(
    vocab_size: int, num_tags: int, cell: str, hidden_units: int, embedding_dim: int,
    num_layers: int = 1, bidirectional: bool = True,
) -> int:
    """Closed-form count of :func:`build_birnn_tagger`: ``V·E + Σ_l D·g·(d_l·h + h·h + h) + D·h·tags + tags``.

    ``D`` = 2 directions (1 without the backward layer), ``d_1 = E`` and ``d_l = D·h`` above it.

    Example:
        >>> tagger_parameter_count(30, 2, "rnn", 8, 4, bidirectional=False)  # 30·4 + (4·8 + 8·8 + 8) + 8·2 + 2
        242
    """
    directions = 2 if bidirectional else 1
    widths = [embedding_dim] + [directions * hidden_units] * (num_layers - 1)
    recurrent = sum(directions * recurrent_parameter_count(cell, d, hidden_units) for d in widths)
    return vocab_size * embedding_dim + recurrent + directions * hidden_units * num_tags + num_tags
