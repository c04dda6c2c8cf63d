"""MAE's per-sample random masking of patch tokens: shuffle by noise, keep the first K (He et al. 2022).

Spec: notes-001.md §26 (seed 001 L693-697: randomly mask a fixed proportion of the patches, e.g.
75%, and feed only the visible ones to the encoder). The mechanism is the paper's (paper default,
facebookresearch/mae ``random_masking``): draw uniform noise ``[B, N]``, ``argsort`` it per sample
(``ids_shuffle``), keep the first K patches of that order, and return ``ids_restore =
argsort(ids_shuffle)``, which puts a sequence in shuffled order back into the original order.
Every sample gets its own permutation, hence its own mask.

**How many are kept.** The paper keeps ``int(N · (1 − ratio))``; in floating point that floor
can drop one (``1 − 0.9 = 0.0999…``, so ``int(10 · (1 − 0.9)) = 0``). Here ``K = N −
round(N · ratio)`` (Python's ``round``): the same count whenever ``N · ratio`` is a whole number
(196 → 49 and 64 → 16 at 75%, every configuration of the paper), and free of that slip. At least
one patch must stay visible.

**Randomness.** The noise comes from the layer's ``keras.random.SeedGenerator``: its state is a
variable, so a checkpoint holding it (``tfmodels.training.callbacks.EpochBackup``) resumes the mask
sequence, and two layers with the same seed draw the same masks. Under a ``tf.distribute``
strategy the replica id is folded into the seed, so the replicas' shares of a global batch get
different masks too.

The layer is only active where it is called: MAE's pre-training model calls it, the encoder used
for fine-tuning and inference never contains it (masking left on there is a known trap,
facebookresearch/mae#203).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def num_visible_patches(num_patches: int, mask_ratio: float) -> int:
    """K, the number of patches the encoder sees: ``N − round(N · mask_ratio)`` (module docstring).

    Args:
        num_patches: N.
        mask_ratio: the fraction of patches masked, in ``[0, 1)``.

    Returns:
        K, between 1 and N.

    Example:
        >>> num_visible_patches(196, 0.75), num_visible_patches(64, 0.75), num_visible_patches(10, 0.9)
        (49, 16, 1)
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    visible = num_patches - round(num_patches * mask_ratio)
    if visible < 1:
        raise ValueError(f"mask_ratio={mask_ratio} masks all {num_patches} patches; at least one must stay visible")
    return visible


@keras.saving.register_keras_serializable(package="tfmodels")
class RandomPatchMasking(keras.layers.Layer):
    """Masks a random ``mask_ratio`` of each sample's tokens and returns the visible ones (paper default).

    Args:
        mask_ratio: the fraction of tokens masked (MAE: 0.75, notes-001.md §26 L695).
        seed: the seed of the layer's ``SeedGenerator``.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Call args:
        tokens: ``[B, N, D]`` with a static N.

    Returns:
        ``(visible, mask, ids_restore)``: ``visible [B, K, D]`` (the kept tokens, in shuffled
        order), ``mask [B, N]`` (1 = masked, 0 = visible, in the original order, the tokens'
        dtype) and ``ids_restore [B, N]`` int32 (``take_along_axis(shuffled, ids_restore)``
        restores the original order of a sequence in shuffled order).

    Example:
        >>> import numpy as np
        >>> masking = RandomPatchMasking(mask_ratio=0.75, seed=0)
        >>> visible, mask, ids_restore = masking(np.zeros((2, 64, 8), "float32"))
        >>> tuple(visible.shape), mask.numpy().sum(axis=1).tolist(), tuple(ids_restore.shape)
        ((2, 16, 8), [48.0, 48.0], (2, 64))
    """

    def __init__(self, mask_ratio: float = 0.75, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        num_visible_patches(1000, mask_ratio)  # validates the ratio before any call
        self.mask_ratio = float(mask_ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _noise(self, shape):
        """Uniform noise from the generator's next seed, with the replica id folded in."""
        seed = self.seed_generator.next()
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
        # The generator's state is int64 on TensorFlow; XLA wants int32 seeds (as keras.random does).
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        return tf.random.stateless_uniform(shape, seed=seed)

    def call(self, tokens):
        num_patches = tokens.shape[1]
        if num_patches is None:
            raise ValueError("RandomPatchMasking needs a static number of tokens (axis 1)")
        num_visible = num_visible_patches(num_patches, self.mask_ratio)
        batch = ops.shape(tokens)[0]
        ids_shuffle = ops.cast(ops.argsort(self._noise((batch, num_patches)), axis=1), "int32")
        ids_restore = ops.cast(ops.argsort(ids_shuffle, axis=1), "int32")
        visible = ops.take_along_axis(tokens, ops.expand_dims(ids_shuffle[:, :num_visible], -1), axis=1)
        shuffled_mask = ops.concatenate(
            [ops.zeros((batch, num_visible), tokens.dtype), ops.ones((batch, num_patches - num_visible), tokens.dtype)],
            axis=1,
        )
        mask = ops.take_along_axis(shuffled_mask, ids_restore, axis=1)
        return visible, mask, ids_restore

    def compute_output_shape(self, tokens_shape):
        batch, num_patches, depth = tokens_shape
        num_visible = num_visible_patches(num_patches, self.mask_ratio)
        return (batch, num_visible, depth), (batch, num_patches), (batch, num_patches)

    def get_config(self):
        return {**super().get_config(), "mask_ratio": self.mask_ratio, "seed": self.seed}
