"""Deformable convolution v1 (Dai et al., ICCV 2017), notes-003-004.md A10 (seed 003 L101-105).

The seed: an ordinary convolution samples a fixed regular grid; a deformable one adds a learnable
offset to every sampling point of the kernel, so the grid can stretch (scale), rotate, or spread
out like a dilated convolution (a special case). The mechanics are paper default (DCNv1):
a parallel convolution over the same input predicts ``2 * k_h * k_w`` offsets (dy, dx per tap)
at every output position, zero-initialised so training starts from an ordinary convolution;
``y(p0) = sum_n w(p_n) * x(p0 + p_n + dp_n)`` with fractional positions read by bilinear
interpolation and zeros outside the image.

Neither Keras nor TensorFlow has this layer. It is written with core TF ops only (``tf.gather``
with computed indices) so that a SavedModel using it loads in stock TF-Serving.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.layers.conv_arithmetic import conv_output_size, effective_kernel_size


@keras.saving.register_keras_serializable(package="tfmodels")
class DeformableConv2D(keras.layers.Layer):
    """2-D deformable convolution (DCNv1) with a built-in, zero-initialised offset predictor.

    The offset predictor is a ``Conv2D`` with the same kernel size, strides, padding and dilation
    as the main convolution and ``2 * k_h * k_w`` output channels, ordered
    ``(dy_0, dx_0, dy_1, dx_1, ...)`` over the taps in row-major order (as in the paper's
    reference code and torchvision). The main kernel has ``Conv2D``'s layout
    ``(k_h, k_w, C_in, filters)``, so with zero offsets the layer is exactly a ``Conv2D`` with
    that kernel (whose weights can be copied in directly).

    Args:
        filters: output channels.
        kernel_size: ``k`` or ``(k_h, k_w)``.
        strides: ``s`` or ``(s_h, s_w)``.
        padding: ``"same"`` or ``"valid"``, with ``Conv2D``'s output sizes and alignment.
        dilation_rate: spacing of the regular grid the offsets start from (1 = ordinary);
            as for ``Conv2D``, it cannot be combined with ``strides > 1``.
        use_bias: add one bias per output channel.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: for the main
            convolution, as in ``Conv2D``. The offset predictor always starts at zero.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Example:
        >>> layer = DeformableConv2D(8, 3)
        >>> layer(tf.zeros([2, 8, 8, 4])).shape
        TensorShape([2, 8, 8, 8])
        >>> layer.offset_conv.filters                 # 2 * 3 * 3 offsets per position
        18
        >>> layer.count_params()                      # (9*4 + 1) * 8 + (9*4 + 1) * 18
        962
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "same",
        dilation_rate=1,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.padding = padding.lower()
        if self.padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.offset_conv = keras.layers.Conv2D(
            2 * self.kernel_size[0] * self.kernel_size[1],
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            kernel_initializer="zeros",
            bias_initializer="zeros",
            dtype=self.dtype_policy,
            name="offset_conv",
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("DeformableConv2D needs a known channel dimension")
        self.offset_conv.build(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer, regularizer=self.bias_regularizer
            )

    def call(self, inputs):
        offsets = self.offset_conv(inputs)
        batch, height, width = tf.shape(inputs)[0], tf.shape(inputs)[1], tf.shape(inputs)[2]
        out_height, out_width = tf.shape(offsets)[1], tf.shape(offsets)[2]
        taps = self.kernel_size[0] * self.kernel_size[1]
        channels = inputs.shape[-1]

        # Sampling positions p0 + p_n + dp_n, in float32 input coordinates: (B, Ho, Wo, taps).
        rows = self._grid_axis(height, out_height, 0)
        cols = self._grid_axis(width, out_width, 1)
        tap_rows, tap_cols = tf.meshgrid(
            tf.range(self.kernel_size[0], dtype=tf.float32) * self.dilation_rate[0],
            tf.range(self.kernel_size[1], dtype=tf.float32) * self.dilation_rate[1],
            indexing="ij",
        )
        offsets = tf.reshape(tf.cast(offsets, tf.float32), [batch, out_height, out_width, taps, 2])
        sample_rows = rows[:, None, None] + tf.reshape(tap_rows, [-1]) + offsets[..., 0]
        sample_cols = cols[None, :, None] + tf.reshape(tap_cols, [-1]) + offsets[..., 1]

        sampled = _bilinear_sample(inputs, sample_rows, sample_cols, height, width)
        # (B, Ho, Wo, taps * C) against the kernel flattened in the same (tap, channel) order.
        columns = tf.reshape(sampled, [batch, out_height, out_width, taps * channels])
        kernel = tf.reshape(self.kernel, [taps * channels, self.filters])
        outputs = tf.tensordot(columns, tf.cast(kernel, columns.dtype), axes=1)
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        return outputs

    def _grid_axis(self, size, out_size, axis):
        """Top-left tap position of every output along one axis, with Conv2D's 'same' alignment."""
        stride = self.strides[axis]
        before = 0
        if self.padding == "same":
            span = effective_kernel_size(self.kernel_size[axis], self.dilation_rate[axis])
            before = tf.maximum((out_size - 1) * stride + span - size, 0) // 2
        return tf.cast(tf.range(out_size) * stride - before, tf.float32)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        sizes = [
            None if size is None else conv_output_size(size, kernel, stride, self.padding, dilation)
            for size, kernel, stride, dilation in zip(
                (height, width), self.kernel_size, self.strides, self.dilation_rate
            )
        ]
        return (batch, *sizes, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
        )
        return config


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def _bilinear_sample(images, rows, cols, height, width):
    """Bilinearly reads ``images`` (B, H, W, C) at float positions (B, ...), zero outside.

    Each position mixes its four integer neighbours; a neighbour outside the image contributes 0.
    Returns (B, ..., C) in the images' dtype. At integer positions it is exact indexing.
    """
    batch = tf.shape(images)[0]
    flat_images = tf.reshape(images, [batch, -1, images.shape[-1]])
    position_shape = tf.shape(rows)
    rows, cols = tf.reshape(rows, [batch, -1]), tf.reshape(cols, [batch, -1])
    row0, col0 = tf.floor(rows), tf.floor(cols)
    row_frac, col_frac = rows - row0, cols - col0
    row0, col0 = tf.cast(row0, tf.int32), tf.cast(col0, tf.int32)
    sampled = 0.0
    for d_row, row_weight in ((0, 1.0 - row_frac), (1, row_frac)):
        for d_col, col_weight in ((0, 1.0 - col_frac), (1, col_frac)):
            r, c = row0 + d_row, col0 + d_col
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            index = tf.clip_by_value(r, 0, height - 1) * width + tf.clip_by_value(c, 0, width - 1)
            weight = row_weight * col_weight * tf.cast(inside, tf.float32)
            values = tf.gather(flat_images, index, batch_dims=1)
            sampled += values * tf.cast(weight, images.dtype)[..., None]
    return tf.reshape(sampled, tf.concat([position_shape, [images.shape[-1]]], axis=0))
