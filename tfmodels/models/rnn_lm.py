"""Recurrent language models: RNN, GRU and LSTM, one or several layers, ``[B, T]`` ids → ``[B, T, V]`` logits.

Specs: notes-002-part2.md §32 (seed 002 L2943–3110: RNN, character-level LM), §36 (L3112–3190:
GRU), §37 (L3192–3252: LSTM), §38 (L3254–3281: deep RNN); notes-001.md §3–§5 (seed 001 L42–244).
The equations (the notes show most of them only as images; the specs give the standard forms):

* RNN (§32, [IMG L2974, L2981]): ``H_t = tanh(X_t W_xh + H_{t−1} W_hh + b_h)``,
  ``O_t = H_t W_hq + b_q``.
* GRU (§36, [IMG L3143–3169]): ``R_t = σ(X_t W_xr + H_{t−1} W_hr + b_r)``,
  ``Z_t = σ(X_t W_xz + H_{t−1} W_hz + b_z)``,
  ``H̃_t = tanh(X_t W_xh + (R_t ⊙ H_{t−1}) W_hh + b_h)``, ``H_t = Z_t ⊙ H_{t−1} + (1 − Z_t) ⊙ H̃_t``.
* LSTM (§37, [IMG L3225–3242]): input, forget and output gates ``I, F, O = σ(X W_x· + H W_h· + b_·)``,
  ``C̃_t = tanh(X_t W_xc + H_{t−1} W_hc + b_c)``, ``C_t = F_t ⊙ C_{t−1} + I_t ⊙ C̃_t``,
  ``H_t = O_t ⊙ tanh(C_t)``. (The notes' "diary" ``f2`` at L3212 feeds ``[x_{t−1}; x_t]`` to the
  sigmoid: a [BUG]; the gate reads ``[s_{t−1}; x_t]`` as in the equations above.)
* Deep RNN (§38, [IMG L3264–3266]): layer l reads layer l−1's hidden state of the same step;
  the output layer reads the last layer's.

The layers are Keras' ``SimpleRNN`` (tanh), ``GRU`` and ``LSTM``, which compute exactly these
equations. **GRU uses ``reset_after=False``**: the notes apply the reset gate to ``H_{t−1}``
*before* the recurrent matrix, ``(R_t ⊙ H_{t−1}) W_hh``. Keras' default ``reset_after=True`` (the
cuDNN variant) computes ``R_t ⊙ (H_{t−1} W_hh + b_hh)`` with a second recurrent bias: another
function, with ``3·h`` more parameters than the notes' "3 × the RNN's" (L3177). The price is that
Keras never runs this GRU on cuDNN (only a GPU would notice). The LSTM keeps Keras'
``unit_forget_bias=True`` (forget-gate bias initialised to 1); it changes the initialisation, not
the function or the parameter count. Initialisers are Keras' (Glorot kernels, orthogonal recurrent
kernels), not d2l's ``N(0, 0.01)`` ([REF d2l] §32): with them the default preset trains with Adam
without further tuning.

Input: the notes (d2l, [REF d2l] §32) feed **one-hot** vectors, so ``W_xh`` is ``V × h``;
``embedding_dim`` replaces them by a learned embedding of that width (cheaper for word-level
vocabularies of thousands of tokens, where a one-hot ``[B, T, V]`` input is wasteful).

Parameter counts (§32 [REF d2l]: ``V·H + H·H + H + H·V + V`` for the one-layer RNN; §36 L3177
"3 × the RNN's"; §37 "4 × the RNN's"), for a recurrent layer with input width ``d``:
``g·(d·h + h·h + h)`` with ``g`` = 1 (RNN), 3 (GRU), 4 (LSTM); see :func:`parameter_count`.
"""

from __future__ import annotations

import keras

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per recurrent layer (§32, §36 L3177, §37)


def recurrent_layer(cell: str, units: int, name: str, **kwargs) -> keras.layers.Layer:
    """One Keras recurrent layer computing the notes' equations for ``cell``.

    Args:
        cell: ``rnn`` (``SimpleRNN`` with tanh, §32), ``gru`` (``GRU(reset_after=False)``, §36) or
            ``lstm`` (§37).
        units: ``h``, the hidden-state width.
        name: the layer name.
        **kwargs: passed to the layer (``return_sequences``, ``go_backwards``, ...).

    Example:
        >>> layer = recurrent_layer("gru", 8, "gru")
        >>> layer.reset_after
        False
    """
    if cell == "rnn":
        return keras.layers.SimpleRNN(units, activation="tanh", name=name, **kwargs)
    if cell == "gru":
        return keras.layers.GRU(units, reset_after=False, name=name, **kwargs)
    if cell == "lstm":
        return keras.layers.LSTM(units, name=name, **kwargs)
    raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")


@keras.saving.register_keras_serializable(package="tfmodels")
class OneHot(keras.layers.Layer):
    """Int ids ``[...]`` → float one-hot vectors ``[..., depth]``: the notes' RNN input (§32 [REF d2l]).

    Keras' ``CategoryEncoding`` would do the same, but it validates its input with Python
    conditionals on tensors, which fail inside a ``tf.while_loop`` (the generation loop).

    Args:
        depth: the vocabulary size ``V``.

    Example:
        >>> OneHot(4)(keras.ops.convert_to_tensor([[1, 3]])).numpy().tolist()
        [[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]]
    """

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, ids):
        return keras.ops.one_hot(ids, self.depth, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.depth)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def token_features(ids, vocab_size: int, embedding_dim: int | None, mask_zero: bool = False):
    """``[B, T]`` ids → ``[B, T, V]`` one-hot vectors (``embedding_dim=None``, the notes) or ``[B, T, E]`` embeddings."""
    if embedding_dim is None:
        return OneHot(vocab_size, name="one_hot")(ids)
    return keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=mask_zero, name="embedding")(ids)


def build_rnn_lm(
    vocab_size: int,
    cell: str = "rnn",
    hidden_units: int = 256,
    num_layers: int = 1,
    embedding_dim: int | None = None,
    dropout: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """A (deep) RNN / GRU / LSTM language model: token ids → next-token logits at every step.

    Layout: one-hot (or embedding) → ``num_layers`` recurrent layers, each returning its whole
    hidden-state sequence (§38) → ``Dense(V)`` logits (the notes' ``O_t = H_t W_hq + b_q``). The
    output at step t depends on ids ``0..t`` only (a causal model), so it predicts id ``t + 1``
    (the notes' labels "shifted by one", §32 L3014) and serves generation by
    :mod:`tfmodels.models.generation`. Each sequence starts from a zero state.

    Args:
        vocab_size: ``V``, the number of token ids.
        cell: ``rnn``, ``gru`` or ``lstm`` (see the module docstring; GRU with ``reset_after=False``).
        hidden_units: ``h`` of every recurrent layer ([REF d2l]: 256; 512 for the from-scratch RNN).
        num_layers: stacked recurrent layers (§38; [REF d2l] ``deep_lstm``: 2).
        embedding_dim: ``None`` feeds one-hot vectors as the notes do; an int, a learned embedding.
        dropout: dropout rate on the output of every recurrent layer (0 = none, as the notes).
        name: model name (default ``<cell>_lm``).

    Returns:
        A ``keras.Model`` from int ids ``[B, T]`` (any T) to float logits ``[B, T, V]``.

    Example:
        >>> model = build_rnn_lm(28, "rnn", hidden_units=512)
        >>> model.count_params() == 28 * 512 + 512 * 512 + 512 + 512 * 28 + 28   # §32 [REF d2l]
        True
    """
    if num_layers < 1 or hidden_units < 1 or vocab_size < 2:
        raise ValueError(f"need num_layers >= 1, hidden_units >= 1 and vocab_size >= 2; got {num_layers}, {hidden_units}, {vocab_size}")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = token_features(ids, vocab_size, embedding_dim)
    for layer in range(1, num_layers + 1):
        x = recurrent_layer(cell, hidden_units, f"{cell}_{layer}", return_sequences=True)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{layer}")(x)
    logits = keras.layers.Dense(vocab_size, name="logits", dtype="float32")(x)
    return keras.Model(ids, logits, name=name or f"{cell}_lm")


def recurrent_parameter_count(cell: str, input_dim: int, hidden_units: int) -> int:
    """``g·(d·h + h·h + h)``: one recurrent layer with input width ``d`` (§32; §36 L3177; §37).

    Example:
        >>> recurrent_parameter_count("gru", 10, 20) == 3 * recurrent_parameter_count("rnn", 10, 20)
        True
    """
    if cell not in GATES:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    return GATES[cell] * (input_dim * hidden_units + hidden_units * hidden_units + hidden_units)


def parameter_count(
    vocab_size: int, cell: str, hidden_units: int, num_layers: int = 1, embedding_dim: int | None = None
) -> int:
    """The closed-form parameter count of :func:`build_rnn_lm` with the same arguments.

    ``[V·E] + Σ_l g·(d_l·h + h·h + h) + h·V + V`` with ``d_1 = V`` (one-hot) or ``E``, ``d_l = h``
    after the first layer; for the one-layer one-hot RNN this is the notes' ``V·H + H·H + H + H·V + V``.

    Example:
        >>> parameter_count(28, "lstm", 256)                   # 4·(28·256 + 256² + 256) + 256·28 + 28
        299036
    """
    embedding = 0 if embedding_dim is None else vocab_size * embedding_dim
    widths = [vocab_size if embedding_dim is None else embedding_dim] + [hidden_units] * (num_layers - 1)
    recurrent = sum(recurrent_parameter_count(cell, d, hidden_units) for d in widths)
    return embedding + recurrent + hidden_units * vocab_size + vocab_size
