"""Masked autoencoder (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners").

Spec: notes-001.md §26 (seed 001 L677-718): BERT's cloze task for images on top of ViT. Split the
image into patches, mask a large random subset (75%, L695), encode **only the visible patches**
with a ViT (L693-697), and let a light decoder that also receives the positions of the masked
patches (mask tokens, L699-703) reconstruct the pixels; the loss is a pixel MSE (L705-708). The
decoder exists only for pre-training; downstream tasks use the encoder (L701). The notes' [not in
notes] details are the paper's and are paper defaults here: the loss on the masked patches only,
per-patch normalised pixel targets, random masking by ``argsort`` of noise and an unshuffle with
``ids_restore``, a decoder of 8 blocks of width 512 for ViT-B.

The graph, top to bottom (the encoder's layers are :func:`tfmodels.models.vit.build_vit`'s own,
with its names, so :func:`encoder_weights_to_vit` hands them to a ViT for fine-tuning)::

    pixels [B, H, W, 3], 0..255
    preprocess                 the ViT's normalisation (x / 127.5 − 1 by default)
    patch_projection           Conv2D, kernel = stride = p                 -> [B, g, g, D]
    position_embedding         + learned grid table, then flattened        -> [B, N, D]
    masking                    RandomPatchMasking: keep K = N − round(0.75 N) -> [B, K, D]
    class_token                                                            -> [B, 1 + K, D]
    encoder_block_{i}, encoder_norm   the ViT encoder, on the visible patches only
    decoder_embed              Dense(decoder_dim)                           -> [B, 1 + K, D_d]
    mask_token                 one learned vector for each of the N − K masked patches
    (unshuffle)                [visible, mask tokens] taken at ids_restore  -> [B, N, D_d]
    decoder_position_embedding + learned grid table; class token in front   -> [B, 1 + N, D_d]
    decoder_block_{i}, decoder_norm   pre-LN Transformer blocks (ViT's block, ViT's ε)
    decoder_prediction         Dense(p·p·3), class token dropped            -> [B, N, p·p·3]

The position embeddings are added before masking, so every kept token carries its position
(paper §3). The paper uses fixed 2-D sine-cosine position embeddings in the encoder and the
decoder; ours are learned tables (the ViT's ``GridPositionEmbedding``), so that the encoder is
exactly the ViT that it initialises. No dropout anywhere (the paper pre-trains without). A
prediction row is a patch of the *normalised* image in :func:`~tfmodels.layers.patchify.patchify`'s
layout.

Training: ``model.compile(optimizer=...)`` and ``model.fit(data)``, where ``data`` yields batches
of raw images ``[B, H, W, 3]`` (0..255, any numeric dtype) or ``(images, anything)`` tuples whose
second part (labels) is ignored. :meth:`MaskedAutoencoder.compute_loss` is the masked MSE. The
encoder used for fine-tuning, linear probing and serving is a ViT built by ``build_vit`` and filled
by :func:`encoder_weights_to_vit`; it has no masking layer (facebookresearch/mae#203).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfmodels.layers.grid_position_embedding import GridPositionEmbedding
from tfmodels.layers.patchify import patchify, unpatchify
from tfmodels.layers.random_patch_masking import RandomPatchMasking
from tfmodels.layers.transformer_encoder import TransformerEncoderBlock
from tfmodels.models.vit import LAYER_NORM_EPSILON, build_vit, vit_config

NORM_PIX_EPSILON = 1e-6  # the paper's code: (target − mean) / (var + 1e-6) ** 0.5
CHANNELS = 3
# The decoder by variant. b16: the paper's default for ViT-B/16 (width 512, 8 blocks, 16 heads,
# MLP 4 x 512); tiny: notes-001.md §26's CPU configuration (decoder width 32, 2 blocks).
MAE_DECODER_CONFIGS = {
    "b16": dict(decoder_dim=512, decoder_layers=8, decoder_heads=16, decoder_mlp_dim=2048),
    "tiny": dict(decoder_dim=32, decoder_layers=2, decoder_heads=2, decoder_mlp_dim=128),
}


def mae_config(variant: str) -> dict:
    """Keyword arguments of :func:`build_mae` for a named variant: the ViT's encoder plus a decoder.

    Args:
        variant: ``"b16"`` (ViT-B/16 at 224², decoder 512-wide with 8 blocks: paper default) or
            ``"tiny"`` (notes-001.md §26: 32², patch 4, encoder D 64 / 4 layers / 4 heads / MLP
            128, decoder D 32 / 2 layers / 2 heads / MLP 128).

    Returns:
        A new dict: :func:`tfmodels.models.vit.vit_config`'s keys and the ``decoder_*`` keys.

    Example:
        >>> config = mae_config("tiny")
        >>> config["image_size"], config["patch_size"], config["decoder_dim"]
        (32, 4, 32)
    """
    if variant not in MAE_DECODER_CONFIGS:
        raise ValueError(f"unknown MAE variant {variant!r}; choose from {sorted(MAE_DECODER_CONFIGS)}")
    return {**vit_config(variant), **MAE_DECODER_CONFIGS[variant]}


def _encoder_layer_names(num_layers: int) -> list[str]:
    """The names of the ViT layers with weights that MAE pre-trains, in graph order."""
    return ["patch_projection", "position_embedding", "class_token",
            *(f"encoder_block_{i}" for i in range(num_layers)), "encoder_norm"]


def patch_statistics(patches, epsilon: float = NORM_PIX_EPSILON):
    """Each patch's mean and ``sqrt(var + ε)``: the scale of MAE's normalised pixel targets.

    The paper's code takes ``target.var(dim=-1)``, PyTorch's *unbiased* variance (divided by
    ``P − 1`` for a patch of P values); so does this function (paper default).

    Args:
        patches: ``[..., P]`` patches (rows of :func:`~tfmodels.layers.patchify.patchify`).
        epsilon: added to the variance (paper: 1e-6).

    Returns:
        ``(mean, std)``, each ``[..., 1]`` float32.

    Example:
        >>> mean, std = patch_statistics(np.array([[1.0, 2.0, 3.0]], "float32"), epsilon=0.0)
        >>> float(mean[0, 0]), float(std[0, 0])
        (2.0, 1.0)
    """
    patches = ops.cast(patches, "float32")
    mean = ops.mean(patches, axis=-1, keepdims=True)
    variance = ops.sum(ops.square(patches - mean), axis=-1, keepdims=True) / (patches.shape[-1] - 1)
    return mean, ops.sqrt(variance + epsilon)


def _decoder_block(num_heads: int, mlp_dim: int, name: str) -> TransformerEncoderBlock:
    """A decoder block: the ViT's pre-LN block (GELU, ε 1e-6) without dropout, as in the paper's decoder."""
    return TransformerEncoderBlock(
        num_heads=num_heads, intermediate_dim=mlp_dim, dropout=0.0, attention_dropout=0.0, activation="gelu",
        layer_norm_epsilon=LAYER_NORM_EPSILON, normalize_first=True, name=name,
    )


@keras.saving.register_keras_serializable(package="tfmodels")
class MaskedAutoencoder(keras.Model):
    """MAE pre-training model on raw pixels: masked ViT encoder, light decoder, masked-patch MSE.

    See the module docstring for the graph. ``call(images)`` masks a fresh random subset at every
    call and returns ``{"predictions": [B, N, p·p·3], "mask": [B, N]}`` (float32; mask 1 = masked,
    in patch order). :meth:`compute_loss` turns that into the paper's loss, so ``compile`` needs
    only an optimizer. The masking noise comes from the ``masking`` layer's ``SeedGenerator``
    (saved with the trainer's ``EpochBackup`` checkpoints, not in ``.keras`` files).

    Args:
        image_size: side of the square training images (a multiple of ``patch_size``).
        patch_size: p.
        hidden_dim, num_layers, num_heads, mlp_dim: the ViT encoder (:func:`build_vit`).
        decoder_dim, decoder_layers, decoder_heads, decoder_mlp_dim: the decoder (paper for
            ViT-B: 512, 8, 16, 2048).
        mask_ratio: fraction of patches masked (paper and notes: 0.75).
        norm_pix_loss: per-patch normalised targets (paper default ``True``); ``False`` regresses
            the normalised image's pixels directly.
        normalization: the ViT's ``preprocess`` (``"tf"``, ``"torch"`` or ``None``); the
            fine-tuned ViT must use the same.
        seed: seed of the masking.
        name: model name.

    Example:
        >>> model = MaskedAutoencoder(32, 4, 64, 2, 4, 128, 32, 1, 2, 64, mask_ratio=0.75, seed=0)
        >>> out = model(np.zeros((2, 32, 32, 3), "float32"))
        >>> tuple(out["predictions"].shape), out["mask"].numpy().sum(axis=1).tolist()
        ((2, 64, 48), [48.0, 48.0])
    """

    def __init__(self, image_size: int, patch_size: int, hidden_dim: int, num_layers: int, num_heads: int,
                 mlp_dim: int, decoder_dim: int, decoder_layers: int, decoder_heads: int, decoder_mlp_dim: int,
                 mask_ratio: float = 0.75, norm_pix_loss: bool = True, normalization: str | None = "tf",
                 seed: int | None = None, name: str = "mae", **kwargs):
        super().__init__(name=name, **kwargs)
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        if not 0.0 < mask_ratio < 1.0:  # the loss averages over the masked patches: there must be some
            raise ValueError(f"MAE needs 0 < mask_ratio < 1, got {mask_ratio}")
        self.encoder_config = dict(image_size=image_size, patch_size=patch_size, hidden_dim=hidden_dim,
                                   num_layers=num_layers, num_heads=num_heads, mlp_dim=mlp_dim,
                                   normalization=normalization)
        self.decoder_config = dict(decoder_dim=decoder_dim, decoder_layers=decoder_layers,
                                   decoder_heads=decoder_heads, decoder_mlp_dim=decoder_mlp_dim)
        self.mask_ratio, self.norm_pix_loss, self.seed = float(mask_ratio), bool(norm_pix_loss), seed
        self.grid_size = image_size // patch_size
        self._take_vit_encoder_layers()
        self.masking = RandomPatchMasking(mask_ratio, seed=seed, name="masking")
        self._build_decoder()
        self.built = True

    def _take_vit_encoder_layers(self):
        """Builds a ViT and keeps its encoder layers: the same layers, names and settings as a ViT's."""
        vit = build_vit(input_shape=(self.encoder_config["image_size"],) * 2 + (CHANNELS,), include_top=False,
                        name=f"{self.name}_encoder", **self.encoder_config)
        self.preprocess = vit.get_layer("preprocess") if self.encoder_config["normalization"] else None
        self.patch_projection = vit.get_layer("patch_projection")
        self.position_embedding = vit.get_layer("position_embedding")
        self.class_token = vit.get_layer("class_token")
        self.encoder_blocks = [vit.get_layer(f"encoder_block_{i}") for i in range(self.encoder_config["num_layers"])]
        self.encoder_norm = vit.get_layer("encoder_norm")

    def _build_decoder(self):
        hidden, config = self.encoder_config["hidden_dim"], self.decoder_config
        width, patch = config["decoder_dim"], self.encoder_config["patch_size"]
        num_patches = self.grid_size**2
        self.decoder_embed = keras.layers.Dense(width, name="decoder_embed")
        self.decoder_embed.build((None, None, hidden))
        # paper: torch.nn.init.normal_(mask_token, std=.02)
        self.mask_token = self.add_weight(shape=(width,), initializer=keras.initializers.RandomNormal(stddev=0.02),
                                          name="mask_token")
        self.decoder_position_embedding = GridPositionEmbedding(self.grid_size, name="decoder_position_embedding")
        self.decoder_position_embedding.build((None, self.grid_size, self.grid_size, width))
        self.decoder_blocks = [
            _decoder_block(config["decoder_heads"], config["decoder_mlp_dim"], f"decoder_block_{i}")
            for i in range(config["decoder_layers"])
        ]
        for block in self.decoder_blocks:
            block.build((None, 1 + num_patches, width))
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="decoder_norm")
        self.decoder_norm.build((None, None, width))
        # float32 predictions: the loss compares them with float32 targets under mixed precision too
        self.decoder_prediction = keras.layers.Dense(
            patch * patch * CHANNELS, dtype="float32", name="decoder_prediction"
        )
        self.decoder_prediction.build((None, None, width))

    # ---- the encoder ---------------------------------------------------------------------------

    def normalize(self, images):
        """Raw pixels 0..255 -> the encoder's input space (the ViT's ``preprocess``), float32 ``[B, H, W, 3]``."""
        images = ops.cast(images, "float32")
        return images if self.preprocess is None else ops.cast(self.preprocess(images), "float32")

    def _embed(self, images):
        """Normalised images -> patch tokens with their position embeddings ``[B, N, D]`` (before masking)."""
        grid = self.patch_projection(images)
        grid = grid + self.position_embedding(grid)
        return ops.reshape(grid, (-1, self.grid_size**2, self.encoder_config["hidden_dim"]))

    def _encode_tokens(self, tokens, training=None):
        x = self.class_token(tokens)
        for block in self.encoder_blocks:
            x = block(x, training=training)
        return self.encoder_norm(x)

    def encode(self, images, training=None):
        """The encoder without masking: ``[B, 1 + N, D]``, what ``build_vit(include_top=False)`` returns.

        Args:
            images: raw pixels ``[B, H, W, 3]`` at the training size.
            training: passed to the blocks.

        Returns:
            ``encoder_norm``'s output: the class token, then the N patch tokens.
        """
        return self._encode_tokens(self._embed(self.normalize(images)), training=training)

    # ---- the decoder ---------------------------------------------------------------------------

    def _decode(self, encoded, ids_restore, training=None):
        """Encoder output of the visible patches ``[B, 1 + K, D]`` -> predictions ``[B, N, p·p·3]``."""
        x = self.decoder_embed(encoded)
        width, num_patches = x.shape[-1], self.grid_size**2
        batch, num_visible = ops.shape(x)[0], x.shape[1] - 1
        mask_tokens = ops.broadcast_to(ops.cast(self.mask_token, x.dtype), (batch, num_patches - num_visible, width))
        shuffled = ops.concatenate([x[:, 1:], mask_tokens], axis=1)
        patches = ops.take_along_axis(shuffled, ops.expand_dims(ids_restore, -1), axis=1)  # original patch order
        grid = ops.reshape(patches, (-1, self.grid_size, self.grid_size, width))
        grid = grid + self.decoder_position_embedding(grid)
        x = ops.concatenate([x[:, :1], ops.reshape(grid, (-1, num_patches, width))], axis=1)
        for block in self.decoder_blocks:
            x = block(x, training=training)
        return self.decoder_prediction(self.decoder_norm(x))[:, 1:]

    def call(self, images, training=None):
        tokens = self._embed(self.normalize(images))
        visible, mask, ids_restore = self.masking(tokens)
        predictions = self._decode(self._encode_tokens(visible, training=training), ids_restore, training=training)
        return {"predictions": predictions, "mask": ops.cast(mask, "float32")}

    # ---- the loss ------------------------------------------------------------------------------

    def targets(self, images):
        """The reconstruction targets ``[B, N, p·p·3]`` float32: normalised patches, per-patch normalised with ``norm_pix_loss``."""
        patches = patchify(self.normalize(images), self.encoder_config["patch_size"])
        if not self.norm_pix_loss:
            return patches
        mean, std = patch_statistics(patches)
        return (patches - mean) / std

    def reconstruction_loss(self, images, predictions, mask):
        """The paper's loss: the per-patch mean squared error, averaged over the masked patches only.

        ``sum_n mask[b, n] · mean_j (pred[b, n, j] − target[b, n, j])² / sum mask`` over the batch.

        Args:
            images: the raw pixels the predictions were made from, ``[B, H, W, 3]``.
            predictions: ``[B, N, p·p·3]``.
            mask: ``[B, N]``, 1 on masked patches.

        Returns:
            A float32 scalar.
        """
        per_patch = ops.mean(ops.square(ops.cast(predictions, "float32") - self.targets(images)), axis=-1)
        mask = ops.cast(mask, "float32")
        return ops.sum(per_patch * mask) / ops.sum(mask)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' hook: the masked reconstruction loss of the batch ``x`` (``y`` and ``sample_weight`` unused)."""
        loss = self.reconstruction_loss(x, y_pred["predictions"], y_pred["mask"])
        if self.losses:
            loss = loss + ops.cast(ops.sum(self.losses), "float32")
        # Keras sums the replicas' gradients under tf.distribute: each replica returns its share,
        # as keras.losses.Loss does (and the trainer multiplies it back for the logged loss).
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    # ---- pictures ------------------------------------------------------------------------------

    def _to_pixels(self, normalized):
        """The inverse of :meth:`normalize` (an affine map per channel, read off at 0 and 1)."""
        probe = self.normalize(ops.convert_to_tensor(np.array([[[[0.0] * CHANNELS, [1.0] * CHANNELS]]], "float32")))
        offset, scale = probe[0, 0, 0], probe[0, 0, 1] - probe[0, 0, 0]
        return (normalized - offset) / scale

    def reconstruct(self, images):
        """Masks ``images`` afresh and reconstructs them, in pixels, for a ``reconstructions.png``.

        With ``norm_pix_loss`` the predictions are per-patch normalised; they are mapped back with
        each original patch's own mean and standard deviation, as the paper's visualisation does
        (so a reconstructed patch has the right brightness and contrast by construction; its
        structure is the model's).

        Args:
            images: raw pixels ``[B, H, W, 3]``, 0..255, at the training size.

        Returns:
            ``(masked, reconstructed)``, float32 pixels ``[B, H, W, 3]`` in 0..255: the visible
            patches with the masked ones grey (127.5); the visible patches with the masked ones
            predicted.
        """
        images = ops.cast(images, "float32")
        out = self(images, training=False)
        patch, size = self.encoder_config["patch_size"], images.shape[1:3]
        mask = ops.expand_dims(out["mask"], -1)
        # masked: the visible pixel patches, grey elsewhere
        masked = ops.where(mask > 0, 127.5, patchify(images, patch))
        # reconstructed: in the encoder's space, visible patches kept and masked ones predicted
        patches = patchify(self.normalize(images), patch)
        predicted = out["predictions"]
        if self.norm_pix_loss:
            mean, std = patch_statistics(patches)
            predicted = predicted * std + mean
        reconstructed = self._to_pixels(unpatchify(patches * (1 - mask) + predicted * mask, patch, *size, CHANNELS))
        return unpatchify(masked, patch, *size, CHANNELS), ops.clip(reconstructed, 0.0, 255.0)

    def get_config(self):
        return {**self.encoder_config, **self.decoder_config, "mask_ratio": self.mask_ratio,
                "norm_pix_loss": self.norm_pix_loss, "seed": self.seed, "name": self.name}


def build_mae(image_size: int, patch_size: int, hidden_dim: int, num_layers: int, num_heads: int, mlp_dim: int,
              decoder_dim: int, decoder_layers: int, decoder_heads: int, decoder_mlp_dim: int, mask_ratio: float = 0.75,
              norm_pix_loss: bool = True, normalization: str | None = "tf", seed: int | None = None,
              name: str = "mae") -> MaskedAutoencoder:
    """Builds the MAE pre-training model (see :class:`MaskedAutoencoder` for the arguments).

    Returns:
        A :class:`MaskedAutoencoder`: ``compile(optimizer=...)`` and ``fit`` on batches of raw
        images (or ``(images, labels)``, labels ignored).

    Example:
        >>> model = build_mae(**mae_config("tiny"), mask_ratio=0.75, seed=0)
        >>> model.masking.mask_ratio, model.get_layer("encoder_block_3").name
        (0.75, 'encoder_block_3')
    """
    return MaskedAutoencoder(image_size, patch_size, hidden_dim, num_layers, num_heads, mlp_dim, decoder_dim,
                             decoder_layers, decoder_heads, decoder_mlp_dim, mask_ratio=mask_ratio,
                             norm_pix_loss=norm_pix_loss, normalization=normalization, seed=seed, name=name)


def encoder_weights_to_vit(mae_model: MaskedAutoencoder, vit_model: keras.Model) -> int:
    """Copies the pre-trained encoder into a ViT by layer name, for fine-tuning or a linear probe.

    Copies ``patch_projection``, ``position_embedding``, ``class_token``, every
    ``encoder_block_{i}`` and ``encoder_norm``; a ViT built with ``pooling="gap"`` has no class
    token, and the pre-trained one is then left out. The decoder and the ViT's ``head`` are not
    touched. Build the ViT with ``build_vit(**mae_model.encoder_config, ...)`` (the same
    normalisation and training size); the ViT may take other input sizes (its position table is
    resized at run time).

    Args:
        mae_model: a pre-trained :class:`MaskedAutoencoder`.
        vit_model: a model from :func:`tfmodels.models.vit.build_vit` with the same encoder sizes.

    Returns:
        The number of layers copied.

    Raises:
        ValueError: a layer is missing from the ViT, the ViT has more encoder blocks, or a weight's
            shape differs (the message names the layer).

    Example:
        >>> mae = build_mae(16, 4, 16, 2, 2, 32, 8, 1, 2, 16, seed=0)   # 2 encoder blocks
        >>> vit = build_vit(10, **mae.encoder_config)
        >>> encoder_weights_to_vit(mae, vit)   # projection, positions, class token, 2 blocks, norm
        6
    """
    names = _encoder_layer_names(mae_model.encoder_config["num_layers"])
    vit_names = {layer.name for layer in vit_model.layers}
    if "class_token" not in vit_names and "pool" in vit_names:  # pooling="gap"
        names.remove("class_token")
    missing = [name for name in names if name not in vit_names]
    extra = sorted(name for name in vit_names if name.startswith("encoder_block_") and name not in names)
    if missing or extra:
        raise ValueError(f"the ViT's encoder does not match the MAE's: missing {missing}, extra {extra}")
    for name in names:
        source, target = mae_model.get_layer(name).get_weights(), vit_model.get_layer(name)
        shapes = [w.shape for w in source], [tuple(w.shape) for w in target.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(f"layer {name!r}: MAE weight shapes {shapes[0]} differ from the ViT's {shapes[1]}")
        target.set_weights(source)
    return len(names)
