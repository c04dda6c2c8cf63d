"""Converts keras-hub's ``DeepLabV3ImageSegmenter`` (v3 or v3+) into this zoo's DeepLab, weights included.

Design handbook, non-negotiable 5: where keras-hub has the architecture, ours loads its weights and
gives the same outputs. keras-hub's DeepLabV3 is :func:`~tfmodels.models.deeplab.build_deeplab_v3_plus`
(with a ``low_level_feature_key``) or :func:`~tfmodels.models.deeplab.build_deeplab_v3` (without)
with ``head_style="keras_hub"`` and ``output_stride`` = the stride of its ASPP features, 32 for
"P5" (module docstring of ``deeplab.py``: one 1x1 head conv, no classifier bias, no atrous encoder).

Its image encoder is carried over as a plain Keras graph with its weights. It is not mapped onto
``resnet.py``: keras-hub's ResNet is torchvision's (the stride on the 3x3 conv of a bottleneck,
symmetric zero padding before every strided conv, no conv biases, BN ε 1e-5), ours is
keras.applications' (the stride on the first 1x1 conv, TF "same" padding, conv biases in
bottlenecks, BN ε 1.001e-5): different networks, not different names for one. If the segmenter
has a preprocessor, its image converter's ``scale`` and ``offset`` become our first layer, so ours
takes raw pixels like every model of the zoo (resize the images yourself, as that converter would).

keras-hub is a development dependency only: nothing here imports it; its models are passed in.
"""

from __future__ import annotations

import keras

from tfmodels.models.deeplab import LOW_LEVEL_STRIDE, atrous_features, build_deeplab_v3, build_deeplab_v3_plus


def _hub_aspp(hub_backbone):
    (aspp,) = [layer for layer in hub_backbone.layers if type(layer).__name__ == "SpatialPyramidPooling"]
    return aspp


def _output_stride(hub_backbone) -> int:
    return 2 ** int(hub_backbone.spatial_pyramid_pooling_key[-1])  # keras-hub's "P<level>" keys


def _keras_hub_encoder(hub_backbone, preprocessor) -> keras.Model:
    """keras-hub's image encoder from raw pixels to ``{"low_level", "high_level"}`` (its layers, shared)."""
    pyramid = hub_backbone.image_encoder.pyramid_outputs
    outputs = {"high_level": pyramid[hub_backbone.spatial_pyramid_pooling_key]}
    if hub_backbone.low_level_feature_key:
        outputs["low_level"] = pyramid[hub_backbone.low_level_feature_key]
    features = keras.Model(hub_backbone.image_encoder.input, outputs)
    converter = getattr(preprocessor, "image_converter", None)
    if converter is None or (converter.scale is None and converter.offset is None):
        return features
    images = keras.Input((None, None, 3))
    scaled = keras.layers.Rescaling(
        1.0 if converter.scale is None else converter.scale, 0.0 if converter.offset is None else converter.offset,
        name="preprocess",
    )(images)
    # a flat copy on the rescaled pixels (a nested model would hide its strides from atrous_features)
    return keras.Model(images, atrous_features(features, scaled, _output_stride(hub_backbone)))


def _weighted(layers) -> list:
    return [layer for layer in layers if layer.weights]


def _pairs(part: str, source: list, target: list) -> list[tuple]:
    """(keras-hub layer, our layer) pairs after checking their number and every weight's shape."""
    if len(source) != len(target):
        raise ValueError(f"{part}: keras-hub has {len(source)} layers with weights, ours has {len(target)}")
    for src, dst in zip(source, target):
        if [tuple(w.shape) for w in src.weights] != [tuple(w.shape) for w in dst.weights]:
            raise ValueError(f"{part}: keras-hub {src.name} {[w.shape for w in src.weights]} vs ours {dst.name}")
    return list(zip(source, target))


def _head_pairs(hub_segmenter, ours: keras.Model) -> list[tuple]:
    hub = hub_segmenter.backbone
    hub_aspp = _hub_aspp(hub)
    our_aspp = ours.get_layer("aspp")
    pairs = []
    for index, (source, target) in enumerate(zip(hub_aspp.aspp_parallel_channels, our_aspp.branches)):
        pairs += _pairs(f"aspp branch {index}", _weighted(source.layers), _weighted(target))
    pairs += _pairs("aspp projection", _weighted(hub_aspp.projection.layers), _weighted(our_aspp.projection))
    names = [("segmentation_head_conv", "head1_conv"), ("segmentation_head_norm", "head1_bn")]
    if hub.low_level_feature_key:
        names += [("decoder_conv", "decoder_low_level_conv"), ("decoder_norm", "decoder_low_level_bn")]
    pairs += _pairs("head", [hub.get_layer(h) for h, _ in names], [ours.get_layer(o) for _, o in names])
    return pairs + _pairs("classifier", [hub_segmenter.output_conv], [ours.get_layer("classifier")])


def _check_convertible(hub_segmenter) -> None:
    hub = hub_segmenter.backbone
    if hub_segmenter.activation is not None:
        raise ValueError(f"the segmenter applies {hub_segmenter.activation!r} to its output; ours returns logits")
    hub_aspp = _hub_aspp(hub)
    if hub_aspp.num_channels != 256 or hub_aspp.activation != "relu":
        raise ValueError("keras-hub's ASPP must have its defaults (256 channels, ReLU)")
    size = hub.upsampling_size if isinstance(hub.upsampling_size, int) else hub.upsampling_size[0]
    if not hub.low_level_feature_key and size != 1:
        # keras-hub's v3 runs its 1x1 head conv (BN, ReLU) after this up-sampling; ours before the
        # up-sampling of the logits, which is equal only when there is no up-sampling in between
        raise ValueError(f"a keras-hub DeepLabV3 without low-level features converts only with upsampling_size=1, got {size}")
    if hub.low_level_feature_key and 2 ** int(hub.low_level_feature_key[-1]) != LOW_LEVEL_STRIDE:
        raise ValueError(f"our decoder takes stride-{LOW_LEVEL_STRIDE} features (P2), got {hub.low_level_feature_key}")


def deeplab_from_keras_hub(hub_segmenter) -> keras.Model:
    """Our DeepLab v3 / v3+ with the weights and the outputs of a ``keras_hub.models.DeepLabV3ImageSegmenter``.

    Args:
        hub_segmenter: the keras-hub task (random or pre-trained weights), no output activation.

    Returns:
        ``images [B, H, W, 3]`` → logits ``[B, H, W, num_classes]``: a v3+ when the keras-hub model
        has a ``low_level_feature_key``, else a v3 (then its ``upsampling_size`` must be 1). Same
        outputs (float32 round-off) and parameter count as ``hub_segmenter``.

    Raises:
        ValueError: an output activation, a non-default ASPP width, or a layer whose weights
            differ in number or shape (named); nothing is assigned before every pair is checked.

    Example:
        >>> import keras_hub  # doctest: +SKIP
        >>> hub = keras_hub.models.DeepLabV3ImageSegmenter.from_preset("deeplab_v3_plus_resnet50_pascalvoc")  # doctest: +SKIP
        >>> ours = deeplab_from_keras_hub(hub)  # doctest: +SKIP
    """
    _check_convertible(hub_segmenter)
    hub = hub_segmenter.backbone
    hub_aspp = _hub_aspp(hub)
    options = dict(
        output_stride=_output_stride(hub), multi_grid=None, aspp_rates=tuple(hub.dilation_rates), aspp_channels=hub_aspp.num_channels,
        dropout=hub_aspp.dropout, head_style="keras_hub", encoder=_keras_hub_encoder(hub, hub_segmenter.preprocessor),
        name=f"{hub_segmenter.name}_tfmodels",
    )
    if hub.low_level_feature_key:
        ours = build_deeplab_v3_plus(hub_segmenter.num_classes, low_level_channels=hub.projection_filters, **options)
    else:
        ours = build_deeplab_v3(hub_segmenter.num_classes, **options)
    for source, target in _head_pairs(hub_segmenter, ours):
        target.set_weights(source.get_weights())
    return ours
