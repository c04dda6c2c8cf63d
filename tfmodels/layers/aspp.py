"""Atrous spatial pyramid pooling (ASPP): parallel atrous convolutions over one feature map.

Spec: notes-001.md §7 (seed 001 L290-301: parallel atrous convolutions at several rates, an
image-level pooling branch, concatenation, a 1x1 fusion with BN + ReLU) and notes-003-004.md D4
(seed 003 L279-295; the papers' settings are [ref], i.e. paper defaults). One concept, two forms:

* ``fusion="sum"`` — DeepLab v2 (Chen et al., TPAMI 2017, Fig. 4 and 7): every branch is a 3x3
  atrous conv at its own rate that already predicts the class scores, and the branch scores are
  summed. On ResNet-101 a branch is one conv (rates 6, 12, 18, 24: "ASPP"); on VGG-16 (ASPP-L) a
  branch is fc6 (3x3 atrous, 1024) → fc7 (1x1, 1024) → fc8 (1x1, classes) with ReLU and dropout
  0.5, selected here by ``hidden_filters=1024``. DeepLab v1's LargeFOV head is that branch alone
  at rate 12 (the v2 paper draws it so).
* ``fusion="concat"`` — DeepLab v3 (Chen et al., arXiv 1706.05587, §3.3) and v3+: a 1x1 conv,
  three 3x3 atrous convs (6, 12, 18 at output stride 16) and the image-level branch (global average
  pooling → 1x1 conv → bilinear up-sampling back to the map), each 256 channels with BN + ReLU
  and no conv bias; concatenated → 1x1 conv (256) → BN → ReLU → dropout. The up-sampling of a
  1x1 map is a broadcast, which is how it is done here: exact, and valid for any input size.

The ``concat`` form is keras-hub's ``SpatialPyramidPooling`` layer for layer (branch order, BN
defaults, no biases), so its weights copy over (see ``tfmodels/models/deeplab_keras_hub.py``).
The output keeps the input's spatial size in both forms.
"""

from __future__ import annotations

import keras
from keras import ops

FUSIONS = ("concat", "sum")


@keras.saving.register_keras_serializable(package="tfmodels")
class AtrousSpatialPyramidPooling(keras.layers.Layer):
    """ASPP of DeepLab v2 (``fusion="sum"``) or v3/v3+ (``fusion="concat"``); see the module docstring.

    Args:
        filters: output channels: every branch's width in the ``concat`` form (256 in v3), the
            number of classes in the ``sum`` form (the branches predict class scores).
        rates: dilation rates of the 3x3 atrous branches, e.g. ``(6, 12, 18)`` (v3 at output
            stride 16) or ``(6, 12, 18, 24)`` (v2).
        fusion: ``"concat"`` (v3: concatenate → 1x1 projection → BN → ReLU → dropout) or ``"sum"``
            (v2: add the branches' class scores).
        include_1x1: a 1x1-conv branch (v3; ``concat`` form only).
        image_pooling: the image-level branch: global average pooling → 1x1 conv → BN → ReLU,
            broadcast over the map (v3; ``concat`` form only).
        hidden_filters: ``sum`` form only. ``None``: a branch is one 3x3 atrous conv to
            ``filters`` (v2 on ResNet). An int: fc6 (3x3 atrous, ``hidden_filters``) → ReLU →
            dropout → fc7 (1x1, ``hidden_filters``) → ReLU → dropout → fc8 (1x1, ``filters``) (v2
            ASPP-L on VGG-16 and v1 LargeFOV: 1024).
        dropout: dropout rate after the projection (``concat``; 0.1 in the official DeepLab code)
            or after fc6 and fc7 (``sum`` with hidden layers; 0.5 in the papers' Caffe models).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> aspp = AtrousSpatialPyramidPooling(256, rates=(6, 12, 18))
        >>> tuple(aspp(keras.ops.zeros((2, 17, 11, 64))).shape)
        (2, 17, 11, 256)
        >>> len(aspp.branches)  # 1x1 + three atrous + image pooling
        5
        >>> v2 = AtrousSpatialPyramidPooling(21, rates=(6, 12, 18, 24), fusion="sum", include_1x1=False, image_pooling=False)
        >>> tuple(v2(keras.ops.zeros((1, 9, 9, 32))).shape)
        (1, 9, 9, 21)
    """

    def __init__(
        self,
        filters: int,
        rates=(6, 12, 18),
        fusion: str = "concat",
        include_1x1: bool = True,
        image_pooling: bool = True,
        hidden_filters: int | None = None,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if fusion == "sum" and (include_1x1 or image_pooling):
            raise ValueError("the 'sum' form (DeepLab v2) has only atrous branches: set include_1x1=False, image_pooling=False")
        if fusion == "concat" and hidden_filters is not None:
            raise ValueError("hidden_filters belongs to the 'sum' form (DeepLab v2 ASPP-L)")
        if not rates and not include_1x1:
            raise ValueError("ASPP needs at least one convolution branch (rates or include_1x1)")
        self.filters = int(filters)
        self.rates = tuple(int(rate) for rate in rates)
        self.fusion = fusion
        self.include_1x1 = bool(include_1x1)
        self.image_pooling = bool(image_pooling)
        self.hidden_filters = None if hidden_filters is None else int(hidden_filters)
        self.dropout = float(dropout)
        if fusion == "concat":
            self.branches = self._concat_branches()
            self.projection = self._conv_bn_relu(1, 1, "projection") + [keras.layers.Dropout(self.dropout, name="dropout")]
        else:
            self.branches = [self._sum_branch(rate, f"rate{rate}") for rate in self.rates]
            self.projection = []

    def _conv_bn_relu(self, kernel_size: int, rate: int, name: str) -> list:
        return [
            keras.layers.Conv2D(
                self.filters, kernel_size, padding="same", dilation_rate=rate, use_bias=False, name=f"{name}_conv"
            ),
            keras.layers.BatchNormalization(name=f"{name}_bn"),
            keras.layers.ReLU(name=f"{name}_relu"),
        ]

    def _concat_branches(self) -> list[list]:
        """Branch order as in the v3 paper's Fig. 5 and keras-hub: 1x1, atrous by rate, image pooling."""
        branches = [self._conv_bn_relu(1, 1, "1x1")] if self.include_1x1 else []
        branches += [self._conv_bn_relu(3, rate, f"rate{rate}") for rate in self.rates]
        if self.image_pooling:
            pool = keras.layers.GlobalAveragePooling2D(keepdims=True, name="image_pooling")
            branches.append([pool, *self._conv_bn_relu(1, 1, "image_pooling")])
        return branches

    def _sum_branch(self, rate: int, name: str) -> list:
        if self.hidden_filters is None:
            return [keras.layers.Conv2D(self.filters, 3, padding="same", dilation_rate=rate, name=f"{name}_conv")]
        return [
            keras.layers.Conv2D(
                self.hidden_filters, 3, padding="same", dilation_rate=rate, activation="relu", name=f"{name}_fc6"
            ),
            keras.layers.Dropout(self.dropout, name=f"{name}_fc6_dropout"),
            keras.layers.Conv2D(self.hidden_filters, 1, activation="relu", name=f"{name}_fc7"),
            keras.layers.Dropout(self.dropout, name=f"{name}_fc7_dropout"),
            keras.layers.Conv2D(self.filters, 1, name=f"{name}_fc8"),
        ]

    def build(self, input_shape):
        for branch in self.branches:
            self._build_chain(branch, input_shape)
        if self.projection:
            self._build_chain(self.projection, (*input_shape[:-1], len(self.branches) * self.filters))
        self.built = True

    @staticmethod
    def _build_chain(layers: list, shape) -> None:
        for layer in layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    @staticmethod
    def _apply(layers: list, x, training):
        for layer in layers:
            x = layer(x, training=training) if isinstance(layer, (keras.layers.Dropout, keras.layers.BatchNormalization)) else layer(x)
        return x

    def call(self, inputs, training=None):
        outputs = [self._apply(branch, inputs, training) for branch in self.branches]
        if self.fusion == "sum":
            return sum(outputs[1:], outputs[0])
        if self.image_pooling:  # the bilinear up-sampling of a 1x1 map is a broadcast
            outputs[-1] = ops.broadcast_to(outputs[-1], ops.shape(outputs[0]))
        return self._apply(self.projection, ops.concatenate(outputs, axis=-1), training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "rates": self.rates,
            "fusion": self.fusion,
            "include_1x1": self.include_1x1,
            "image_pooling": self.image_pooling,
            "hidden_filters": self.hidden_filters,
            "dropout": self.dropout,
        }
