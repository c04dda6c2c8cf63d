"""Backbone and head of a classifier, for transfer learning (notes-002-part1 S22-S23).

The notes freeze VGG16's convolutional base (``model.features``), train a new classifier on top,
then unfreeze the base and train everything with a smaller learning rate. For every classifier
of the zoo the same split is drawn from the graph: the **backbone** is every layer with weights
whose output still has positions (a feature map ``[B, H, W, C]`` or a token sequence
``[B, N, D]``); the **head** is every layer with weights after the positions are gone (rank <= 2:
the FC layers after flatten, global pooling or the class token). For VGG16 that is exactly the
notes' ``features`` / ``classifier``; for ResNet, DenseNet, MobileNet or Inception it is the
convolutional trunk / the final dense layer; for ViT and Swin the patch embedding and the
Transformer blocks / the final dense layer.

A layer made of layers (a Transformer block, a Swin block) is one unit: its weights move and
freeze together. Only nested *models* are opened up.

Weights move between models *by position* among the backbone layers, not by name: Keras
auto-names unnamed layers with process-wide counters, so names differ between two builds of the
same architecture, while the order of construction does not.
"""

from __future__ import annotations

import keras


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``model`` that own weights, in build order (nested models flattened)."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layers.extend(weighted_layers(layer))
        elif layer.weights:
            layers.append(layer)
    return layers


def _has_positions(layer: keras.layers.Layer) -> bool:
    return len(layer.output.shape) >= 3


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The weighted layers whose output still has positions: ``[B, H, W, C]`` or ``[B, N, D]``.

    Raises:
        ValueError: when the model has none (not a convolutional or Transformer classifier).
    """
    layers = [layer for layer in weighted_layers(model) if _has_positions(layer)]
    if not layers:
        raise ValueError(
            f"{model.name} has no backbone (no layer outputs a [B, H, W, C] feature map or a [B, N, D] sequence)"
        )
    return layers


def head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The weighted layers after the positions are gone (the classifier head)."""
    return [layer for layer in weighted_layers(model) if not _has_positions(layer)]


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freezes (``False``) or unfreezes (``True``) the backbone; the head stays trainable.

    Unfreezing leaves BatchNormalization layers frozen: Keras runs a frozen BN in inference mode,
    so fine-tuning keeps the moving statistics learnt on the source data (notes-002 S23 test note:
    "BN layers in the base stay in inference mode"). A model must be recompiled after this.
    """
    for layer in backbone_layers(model):
        layer.trainable = trainable and not isinstance(layer, keras.layers.BatchNormalization)


def reset_trainable(model: keras.Model) -> None:
    """Makes every layer trainable again: the state a builder returns."""
    for layer in model._flatten_layers(include_self=True, recursive=True):
        layer.trainable = True


def copy_backbone_weights(source: keras.Model, target: keras.Model) -> int:
    """Copies ``source``'s backbone weights into ``target``'s backbone; the head is left as built.

    ``source`` is the same architecture trained elsewhere (another run of ours, possibly with
    another number of classes or input size) or the ``include_top=False`` base of the same
    architecture (keras.applications ImageNet weights). Convolution weights do not depend on
    the input size, so a backbone trained at one size transfers to another.

    Returns:
        The number of layers copied.

    Raises:
        ValueError: when the backbones differ in length, layer type or weight shapes (naming the
            first mismatch).
    """
    src_layers, dst_layers = backbone_layers(source), backbone_layers(target)
    if len(src_layers) != len(dst_layers):
        raise ValueError(
            f"cannot initialise {target.name} from {source.name}: their backbones have "
            f"{len(dst_layers)} and {len(src_layers)} layers with weights (a different architecture?)"
        )
    for src, dst in zip(src_layers, dst_layers):
        src_shapes = [tuple(w.shape) for w in src.weights]
        dst_shapes = [tuple(w.shape) for w in dst.weights]
        if type(src) is not type(dst) or src_shapes != dst_shapes:
            raise ValueError(
                f"cannot copy backbone layer {src.name} ({type(src).__name__} {src_shapes}) of {source.name} "
                f"into {dst.name} ({type(dst).__name__} {dst_shapes}) of {target.name}"
            )
        dst.set_weights(src.get_weights())
    return len(dst_layers)
