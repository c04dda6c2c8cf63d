"""The DDPM U-Net's residual block: GroupNorm + swish + 3x3 conv, with the time embedding added.

Spec: notes-003-004.md F1 (the U-Net's blocks are "PixelCNN++-style wide-ResNet blocks, GroupNorm",
the time embedding "is added inside every residual block"); the layout is the paper's code
(Ho et al. 2020, ``diffusion_tf/models/unet.py: resnet_block``; paper default):

    h = conv3x3(swish(GroupNorm(x)))                      → C_out channels
    h = h + Dense(C_out)(swish(temb))[:, None, None, :]   the step, per channel
    h = conv3x3(dropout(swish(GroupNorm(h))))             initialised ≈ 0 (scale 1e-10)
    out = shortcut(x) + h,   shortcut = 1x1 conv when C_in ≠ C_out, else the identity

GroupNorm has 32 groups and ε = 1e-6 (TF1's ``group_norm`` defaults, which the paper's code uses).
The other kernels are Glorot-uniform, the code's ``variance_scaling(1, 'fan_avg', 'uniform')``.
"""

from __future__ import annotations

import keras
from keras import ops

GROUP_NORM_GROUPS = 32  # paper default
GROUP_NORM_EPSILON = 1e-6  # paper default (TF1 group_norm)


def near_zero_initializer():
    """The paper code's ``default_init(1e-10)``: variance scaling with scale 1e-10, fan-avg, uniform.

    The last layer of each residual branch starts ≈ 0, so every block starts as (almost) the identity.

    Returns:
        A ``keras.initializers.VarianceScaling``.

    Example:
        >>> float(abs(near_zero_initializer()((64, 64))).numpy().max()) < 1e-5
        True
    """
    return keras.initializers.VarianceScaling(1e-10, mode="fan_avg", distribution="uniform")


def group_norm(groups: int, name: str) -> keras.layers.GroupNormalization:
    """The paper code's GroupNorm: ``groups`` groups, ε = 1e-6, with scale and offset.

    Args:
        groups: number of groups (32 in the paper); must divide the channels.
        name: layer name.

    Returns:
        A ``keras.layers.GroupNormalization``.

    Example:
        >>> group_norm(32, "norm").epsilon
        1e-06
    """
    return keras.layers.GroupNormalization(groups=groups, epsilon=GROUP_NORM_EPSILON, name=name)


@keras.saving.register_keras_serializable(package="tfmodels")
class DiffusionResidualBlock(keras.layers.Layer):
    """``[x [B, H, W, C_in], temb [B, D]]`` → ``[B, H, W, out_channels]`` (module docstring).

    Args:
        out_channels: C_out.
        dropout: dropout rate before the second conv (0.1 on CIFAR-10, paper default).
        groups: GroupNorm groups (32, paper default); must divide C_in and C_out.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Example:
        >>> block = DiffusionResidualBlock(16, groups=8)
        >>> y = block([keras.ops.ones((2, 4, 4, 8)), keras.ops.ones((2, 32))])
        >>> tuple(y.shape)
        (2, 4, 4, 16)
        >>> block.count_params()  # 2·8 + (9·8·16 + 16) + (32·16 + 16) + 2·16 + (9·16·16 + 16) + (8·16 + 16)
        4208
    """

    def __init__(self, out_channels: int, dropout: float = 0.0, groups: int = GROUP_NORM_GROUPS, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = int(out_channels)
        self.dropout = float(dropout)
        self.groups = int(groups)
        self.norm1 = group_norm(self.groups, "norm1")
        self.conv1 = keras.layers.Conv2D(self.out_channels, 3, padding="same", name="conv1")
        self.temb_projection = keras.layers.Dense(self.out_channels, name="temb_projection")
        self.norm2 = group_norm(self.groups, "norm2")
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.conv2 = keras.layers.Conv2D(
            self.out_channels, 3, padding="same", kernel_initializer=near_zero_initializer(), name="conv2"
        )
        self.shortcut = None

    def build(self, input_shape):
        x_shape, temb_shape = input_shape
        in_channels = x_shape[-1]
        out_shape = (*x_shape[:-1], self.out_channels)
        self.norm1.build(x_shape)
        self.conv1.build(x_shape)
        self.temb_projection.build(temb_shape)
        self.norm2.build(out_shape)
        self.conv2.build(out_shape)
        if in_channels != self.out_channels:  # the paper code's "nin" shortcut
            self.shortcut = keras.layers.Conv2D(self.out_channels, 1, name="shortcut")
            self.shortcut.build(x_shape)
        self.built = True

    def call(self, inputs, training=None):
        x, temb = inputs
        h = self.conv1(ops.silu(self.norm1(x)))
        h = h + self.temb_projection(ops.silu(temb))[:, None, None, :]
        h = self.conv2(self.dropout_layer(ops.silu(self.norm2(h)), training=training))
        return (x if self.shortcut is None else self.shortcut(x)) + h

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.out_channels)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "dropout": self.dropout, "groups": self.groups}
