"""GRU encoder–decoder for sequence-to-sequence learning, without or with Bahdanau attention.

Specs: notes-002-part2.md §40 (seed 002 L3337–3379: encoder → fixed-shape state → decoder),
§41 (L3381–3433: seq2seq; the encoder's final hidden state initialises the decoder; the decoder
reads ``<bos>`` + the target without ``<eos>`` in training — teacher forcing — and its own previous
prediction at inference, until ``<eos>``), §46 (L3636–3659: the decoder's previous hidden state
queries all encoder outputs, keys = values = encoder outputs, and the attention output is
concatenated with the next word's embedding as the decoder RNN's input); notes-001.md §8.
Architecture details are d2l's ([REF d2l] §41/§46, "paper default"):

* **Encoder**: embedding → ``num_layers`` stacked GRUs, dropout between layers (PyTorch's
  ``nn.GRU(dropout=…)``). Padding (id 0) is masked, so each row's final state is the state at its
  last real token (d2l runs its GRU over the padding too).
* **Decoder**: embedding; its GRU stack starts from the encoder's final states (one per layer); at
  every step the GRU input is ``[context ; embedding(y_{t−1})]``; a Dense layer gives the logits.
  Without attention (§41) the context is the encoder's final top-layer state, the same at every
  step. With attention (§46) it is :class:`~tfmodels.layers.additive_attention.AdditiveAttention`
  with the decoder's previous top-layer state as the query over the encoder outputs (padding
  masked). Both are written as attention over a *memory* (:meth:`Seq2SeqDecoder.memory`): d2l's
  fixed context is the memory of the one final state, which gets all the weight.
* GRU cells compute the notes' equations (§36, ``reset_after=False``, as in
  :mod:`tfmodels.models.rnn_lm`).

The decoder runs one cell step at a time (``tf.scan`` in training, the decoding loop of
:mod:`tfmodels.models.beam_search` at inference) through the same :meth:`Seq2SeqDecoder.step`,
so teacher-forced logits and decoding logits are one computation. With attention the loop is
required — each step's query is the previous step's state; without it, it keeps both variants
one piece of code.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.layers.additive_attention import AdditiveAttention


@keras.saving.register_keras_serializable(package="tfmodels")
class Seq2SeqEncoder(keras.layers.Layer):
    """Embedding and stacked GRUs over the source (§41): ids ``[B, S]`` → (outputs ``[B, S, h]``, states ``[B, L, h]``).

    Args:
        vocab_size: source vocabulary size.
        embedding_dim: embedding width ([REF d2l] 32).
        hidden_units: GRU width ``h`` ([REF d2l] 32).
        num_layers: stacked GRUs ``L`` ([REF d2l] 2).
        dropout: dropout between GRU layers ([REF d2l] 0.1).

    Example:
        >>> outputs, states = Seq2SeqEncoder(10, 4, 8, 2)(tf.constant([[5, 6, 0]]))
        >>> outputs.shape, states.shape
        (TensorShape([1, 3, 8]), TensorShape([1, 2, 8]))
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_units: int, num_layers: int = 1, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.hidden_units = vocab_size, embedding_dim, hidden_units
        self.num_layers, self.dropout = num_layers, dropout
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.grus = [
            keras.layers.GRU(hidden_units, reset_after=False, return_sequences=True, return_state=True, name=f"gru_{i}")
            for i in range(num_layers)
        ]
        self.between = keras.layers.Dropout(dropout)

    def build(self, ids_shape):
        self.embedding.build(ids_shape)
        width = self.embedding_dim
        for gru in self.grus:
            gru.build((*ids_shape, width))
            width = self.hidden_units
        super().build(ids_shape)

    def call(self, ids, training=False):
        mask = ids != 0
        x, states = self.embedding(ids), []
        for i, gru in enumerate(self.grus):
            if i:
                x = self.between(x, training=training)
            x, state = gru(x, mask=mask, training=training)
            states.append(state)
        return x, tf.stack(states, axis=1)

    def compute_output_shape(self, ids_shape):
        return (*ids_shape, self.hidden_units), (ids_shape[0], self.num_layers, self.hidden_units)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "hidden_units": self.hidden_units, "num_layers": self.num_layers, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="tfmodels")
class Seq2SeqDecoder(keras.layers.Layer):
    """The GRU decoder, one step at a time, with a fixed context (§41) or Bahdanau attention (§46).

    Args:
        vocab_size: target vocabulary size ``V``.
        embedding_dim: embedding width.
        hidden_units: GRU width ``h`` (the encoder's).
        num_layers: stacked GRU cells (the encoder's).
        dropout: dropout between GRU layers and on the attention weights.
        attention: ``True`` for Bahdanau attention over the encoder outputs (§46).

    Call arguments:
        decoder_input_ids: ``[B, T]``, ``<bos>`` + the target without ``<eos>`` (teacher forcing).
        encoder_outputs: ``[B, S, h]``.
        encoder_states: ``[B, L, h]``, the decoder's initial states.
        source_mask: ``[B, S]`` boolean, True on real source tokens.
        return_attention: also return the attention weights ``[B, T, S]`` (all 1 on the one
            memory slot without attention).

    Returns:
        logits ``[B, T, V]`` (and the weights with ``return_attention``).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_units: int, num_layers: int = 1, dropout: float = 0.0,
                 attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.hidden_units = vocab_size, embedding_dim, hidden_units
        self.num_layers, self.dropout, self.attention = num_layers, dropout, attention
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.cells = [keras.layers.GRUCell(hidden_units, reset_after=False, name=f"gru_cell_{i}") for i in range(num_layers)]
        self.additive_attention = AdditiveAttention(hidden_units, dropout, name="attention") if attention else None
        self.logits = keras.layers.Dense(vocab_size, name="logits")
        self.seed_generator = keras.random.SeedGenerator(0)

    def build(self, decoder_input_ids_shape, encoder_outputs_shape=None, encoder_states_shape=None, source_mask_shape=None):
        h = self.hidden_units
        self.embedding.build(decoder_input_ids_shape)
        for i, cell in enumerate(self.cells):
            cell.build((None, self.embedding_dim + h if i == 0 else h))
        if self.additive_attention is not None:
            self.additive_attention.build((None, 1, h), (None, None, h), (None, None, h))
        self.logits.build((None, h))
        super().build(decoder_input_ids_shape)

    def memory(self, encoder_outputs, encoder_states, source_mask):
        """What every step attends to: the encoder outputs and mask (attention), else the final top state alone."""
        if self.attention:
            return encoder_outputs, tf.cast(source_mask, tf.bool)
        return encoder_states[:, -1:, :], tf.ones_like(encoder_states[:, -1:, 0], tf.bool)

    def step(self, tokens, states, memory, memory_mask, dropout_masks=None, training=False):
        """One decoder step for ``N`` rows.

        Args:
            tokens: ``[N]`` the previous token of every row.
            states: ``[N, L, h]`` the GRU states.
            memory, memory_mask: from :meth:`memory`.
            dropout_masks: ``[L − 1, N, h]`` scaled keep-masks between layers, or ``None``.
            training: dropout on the attention weights.

        Returns:
            ``(logits [N, V], states [N, L, h], weights [N, S])``.
        """
        if self.attention:
            context, weights = self.additive_attention(states[:, -1:, :], memory, memory, memory_mask, training=training)
            context, weights = context[:, 0], weights[:, 0]
        else:
            context, weights = memory[:, 0], tf.ones_like(memory[:, :, 0])
        x = tf.concat([context, self.embedding(tokens)], axis=-1)
        new_states = []
        for i, cell in enumerate(self.cells):
            if i and dropout_masks is not None:
                x = x * dropout_masks[i - 1]
            x, _ = cell(x, [states[:, i]], training=training)
            new_states.append(x)
        return self.logits(x), tf.stack(new_states, axis=1), weights

    def call(self, decoder_input_ids, encoder_outputs, encoder_states, source_mask, return_attention=False, training=False):
        memory, memory_mask = self.memory(encoder_outputs, encoder_states, source_mask)
        tokens = tf.transpose(decoder_input_ids)  # [T, B]: scan runs over time
        steps, batch = tf.shape(tokens)[0], tf.shape(tokens)[1]
        if training and self.dropout > 0 and self.num_layers > 1:
            ones = tf.ones([steps, self.num_layers - 1, batch, self.hidden_units])
            masks = keras.random.dropout(ones, self.dropout, seed=self.seed_generator)  # kept = 1 / (1 − p)
        else:
            masks = tf.ones([steps, 0, batch, self.hidden_units])  # no dropout: an empty mask axis

        def one_step(carry, inputs):
            token, mask = inputs
            return self.step(token, carry[1], memory, memory_mask, mask if masks.shape[1] else None, training)

        start = (
            tf.zeros([batch, self.vocab_size], self.compute_dtype),
            tf.cast(encoder_states, self.compute_dtype),
            tf.zeros_like(memory_mask, self.compute_dtype),
        )
        logits, _, weights = tf.scan(one_step, (tokens, masks), start)  # carry = step's (logits, states, weights)
        logits = tf.transpose(logits, [1, 0, 2])
        if return_attention:
            return logits, tf.transpose(weights, [1, 0, 2])
        return logits

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "hidden_units": self.hidden_units, "num_layers": self.num_layers, "dropout": self.dropout,
                "attention": self.attention}


def build_seq2seq(
    source_vocab_size: int,
    target_vocab_size: int,
    embedding_dim: int = 32,
    hidden_units: int = 32,
    num_layers: int = 2,
    dropout: float = 0.1,
    attention: bool = False,
    name: str = "seq2seq",
) -> keras.Model:
    """The teacher-forced training model: ``{"source_ids", "decoder_input_ids"}`` ``[B, S]``, ``[B, T]`` → logits ``[B, T, V]``.

    Defaults are d2l's (paper default, [REF d2l] §41/§46): embedding 32, hidden 32, 2 layers,
    dropout 0.1. The layers named ``encoder`` (:class:`Seq2SeqEncoder`) and ``decoder``
    (:class:`Seq2SeqDecoder`) are the pieces :func:`decoder_step` decodes with.

    Args:
        source_vocab_size: source vocabulary size (id 0 = ``<pad>``, masked).
        target_vocab_size: target vocabulary size.
        embedding_dim: embedding width of both sides.
        hidden_units: GRU width of both sides.
        num_layers: stacked GRUs on both sides.
        dropout: between GRU layers (and on the attention weights).
        attention: Bahdanau attention (§46) instead of the fixed context (§41).
        name: the model name.

    Example:
        >>> model = build_seq2seq(20, 12, attention=True)
        >>> model({"source_ids": tf.ones([2, 5], tf.int32), "decoder_input_ids": tf.ones([2, 4], tf.int32)}).shape
        TensorShape([2, 4, 12])
    """
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    decoder_input_ids = keras.Input((None,), dtype="int32", name="decoder_input_ids")
    encoder = Seq2SeqEncoder(source_vocab_size, embedding_dim, hidden_units, num_layers, dropout, name="encoder")
    decoder = Seq2SeqDecoder(target_vocab_size, embedding_dim, hidden_units, num_layers, dropout, attention, name="decoder")
    outputs, states = encoder(source_ids)
    logits = decoder(decoder_input_ids, outputs, states, keras.ops.not_equal(source_ids, 0))
    return keras.Model({"source_ids": source_ids, "decoder_input_ids": decoder_input_ids}, logits, name=name)


def decoder_step(model: keras.Model, source_ids: tf.Tensor, max_length: int, copies: int = 1):
    """``(step_fn, initial_state)`` for the decoding loops of :mod:`tfmodels.models.beam_search`.

    Args:
        model: a :func:`build_seq2seq` model.
        source_ids: ``[B, S]`` int32.
        max_length: the decoding length; the GRU state does not depend on it (the argument keeps
            one signature with :func:`tfmodels.models.transformer.decoder_step`).
        copies: each row repeated this many times (the beam width).

    Returns:
        ``step(tokens [N], states [N, L, h]) -> (logits [N, V], states)`` and the encoder's final
        states, ``N = B · copies``.
    """
    del max_length
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    outputs, states = encoder(source_ids, training=False)
    memory, memory_mask = decoder.memory(outputs, states, source_ids != 0)
    memory, memory_mask, states = (tf.repeat(t, copies, axis=0) for t in (memory, memory_mask, states))

    def step(tokens, states):
        logits, states, _ = decoder.step(tokens, states, memory, memory_mask)
        return logits, states

    return step, states
