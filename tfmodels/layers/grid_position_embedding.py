"""Learned position embeddings of a square patch grid, resized bilinearly to other grids (ViT).

Specs: notes-001.md §24 (seed 001 L611-616: each patch embedding gets a learned position
embedding, since the Transformer itself is order-agnostic); issue 15 item 1 (serve and fine-tune
at image sizes other than the trained one).

ViT learns one ``D``-vector per patch position of the ``g x g`` grid of its training size
(Dosovitskiy et al. 2021, §3.1). At another image size the grid is ``h x w``; the paper (§3.2,
"we perform 2D interpolation of the pre-trained position embeddings") and DeiT resize the learned
table as an image. Here the resize is bilinear with half-pixel centres and no antialiasing
(TensorFlow's ``tf.image.resize(..., "bilinear")``, PyTorch's ``align_corners=False``): output
cell ``i`` of ``n_out`` samples the table at ``(i + 0.5) · n_in / n_out − 0.5``, clamped to the
table's edge. At the trained size that is every cell itself, so the layer is then the identity
on its table. The resize runs in the graph (``ResizeBilinear``, a core op), so ``h`` and ``w``
may be unknown until a batch arrives and a served model takes any image size.

keras-hub's ``ViTBackbone`` keeps one table for ``1 + g²`` positions (class token first) and
refuses other sizes; here the class token's position embedding is folded into the learned class
token (:class:`~tfmodels.layers.class_token.ClassToken`) and the table holds the grid alone.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def interpolate_position_grid(table, height, width):
    """Resizes a ``[g_h, g_w, D]`` position table to ``[height, width, D]``, bilinearly.

    Half-pixel centres, no antialiasing (also when shrinking), in the graph: ``height`` and
    ``width`` may be Python ints or scalar tensors.

    Args:
        table: ``[g_h, g_w, D]`` float tensor or variable, the learned embeddings.
        height: rows of the target grid.
        width: columns of the target grid.

    Returns:
        ``[height, width, D]`` tensor in ``table``'s dtype (float32 is used for the resize).

    Example:
        >>> import numpy as np
        >>> table = np.arange(2.0, dtype="float32").reshape(1, 2, 1)  # one row: 0, 1
        >>> interpolate_position_grid(table, 1, 4)[0, :, 0].numpy()
        array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    """
    table = tf.convert_to_tensor(table)
    resized = tf.image.resize(
        tf.cast(table, "float32"), tf.stack([height, width]), method="bilinear", antialias=False
    )
    return tf.cast(resized, table.dtype)


@keras.saving.register_keras_serializable(package="tfmodels")
class GridPositionEmbedding(keras.layers.Layer):
    """Returns a ``[grid_size, grid_size, D]`` learned table, resized to the input's grid and broadcast.

    The input is only read for its shape ``[B, h, w, D]`` (the patch embeddings before
    flattening, as a Conv2D with kernel = stride = patch size gives them), so the output can be
    added to it. When ``(h, w)`` is statically ``(grid_size, grid_size)`` the table is used as it
    is; otherwise it goes through :func:`interpolate_position_grid` (the identity at the trained
    size, so a dynamic shape that happens to equal it gives the same numbers).

    Args:
        grid_size: patches per side at the trained image size (``image_size // patch_size``;
            14 for ViT-B/16 at 224²).
        initializer: initializer of the table; ``None`` is a normal distribution with stddev
            0.02, the value of keras-hub's ``ViTBackbone``, timm and BERT (paper default).

    Call args:
        inputs: ``[B, h, w, D]`` patch grid; ``h`` and ``w`` may be ``None``.

    Returns:
        ``[B, h, w, D]``, the position embeddings of every patch.

    Example:
        >>> import numpy as np
        >>> layer = GridPositionEmbedding(grid_size=4)
        >>> layer(np.zeros((2, 4, 4, 8), "float32")).shape
        TensorShape([2, 4, 4, 8])
        >>> layer(np.zeros((2, 6, 3, 8), "float32")).shape  # another image size: resized table
        TensorShape([2, 6, 3, 8])
    """

    def __init__(self, grid_size: int, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = int(grid_size)
        self.initializer = keras.initializers.get(initializer or keras.initializers.RandomNormal(stddev=0.02))

    def build(self, inputs_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.grid_size, self.grid_size, inputs_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        shape = ops.shape(inputs)
        if tuple(inputs.shape[1:3]) == (self.grid_size, self.grid_size):
            table = self.embeddings
        else:
            table = interpolate_position_grid(self.embeddings, shape[1], shape[2])
        return ops.broadcast_to(ops.cast(table, self.compute_dtype), shape)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": self.grid_size,
            "initializer": keras.initializers.serialize(self.initializer),
        }
