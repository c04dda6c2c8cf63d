"""The notes' ``bilinear_kernel``: a transposed-conv kernel that upsamples by bilinear interpolation.

Spec: notes-002-part2.md §18 (seed 002 L2363-2387) and §17 (transposed convolution, L2231-2331).
Bilinear interpolation is "commonly used to initialise transposed-conv layers" (L2363); the seed
builds the kernel as the outer product of a 1-D tent::

    factor = (k + 1) // 2
    center = factor - 1 if k is odd else factor - 0.5
    filt[i, j] = (1 - |i - center| / factor) * (1 - |j - center| / factor)

and writes it on the channel diagonal only (channel ``c`` is upsampled from channel ``c``; the
other entries are 0). The seed's PyTorch weight is ``(in, out, k, k)``; Keras' ``Conv2DTranspose``
kernel is ``(k, k, out, in)``, the layout returned here.

A transposed conv with this kernel, stride ``s``, kernel ``k = 2 s`` and padding ``p = s / 2``
(the seed's k=4, s=2, p=1 and d2l's FCN k=64, s=32, p=16) reads output pixel ``o`` from input
``(o + 0.5) / s - 0.5`` with tent weights: exactly ``tf.image.resize(..., "bilinear")`` (half-pixel
centres) except in a border band of ``s / 2`` pixels, where the transposed conv sees zeros and the
resize repeats the edge. ``k - s = 2 p`` makes Keras' ``padding="same"`` (output ``s n``) the same
crop as the seed's ``p``. Both facts are tested in ``tests/layers/test_bilinear_kernel.py``.
"""

from __future__ import annotations

import keras
import numpy as np


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> np.ndarray:
    """The seed's ``bilinear_kernel`` (seed 002 L2365-2376) in Keras' ``(k, k, out, in)`` layout.

    Args:
        in_channels: input channels of the transposed conv.
        out_channels: output channels; must equal ``in_channels``, since the seed fills the channel
            diagonal ``weight[range(in), range(out)]``, which only pairs up equal ranges.
        kernel_size: ``k``, the square kernel's side.

    Returns:
        A float32 array of shape ``(k, k, out_channels, in_channels)``: the 2-D tent on the
        diagonal ``[:, :, c, c]``, zero elsewhere.

    Example:
        >>> 16 * bilinear_kernel(1, 1, 4)[:, :, 0, 0]  # the outer product of [.25, .75, .75, .25]
        array([[1., 3., 3., 1.],
               [3., 9., 9., 3.],
               [3., 9., 9., 3.],
               [1., 3., 3., 1.]], dtype=float32)
    """
    if in_channels != out_channels:
        raise ValueError(f"a bilinear kernel maps each channel to itself; got {in_channels} in, {out_channels} out")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    tent = 1 - np.abs(np.arange(kernel_size) - center) / factor
    kernel = np.zeros((kernel_size, kernel_size, out_channels, in_channels), np.float32)
    channels = np.arange(in_channels)
    kernel[:, :, channels, channels] = np.outer(tent, tent)[:, :, None]
    return kernel


@keras.saving.register_keras_serializable(package="tfmodels")
class BilinearKernel(keras.initializers.Initializer):
    """Initialises a square ``Conv2DTranspose`` kernel with :func:`bilinear_kernel` (seed 002 L2378-2387).

    The seed copies ``bilinear_kernel(num_classes, num_classes, 64)`` into FCN's 32x transposed conv
    (L2386-2387); as an initializer the kernel is rebuilt whenever the layer is, and the layer
    keeps it only as its starting point (it is trained with the rest of the network).

    Example:
        >>> import numpy as np
        >>> up = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same", use_bias=False,
        ...                                   kernel_initializer=BilinearKernel())
        >>> up(np.ones((1, 3, 3, 2), "float32")).numpy()[0, 2:4, 2:4, 0]  # interior of a constant
        array([[1., 1.],
               [1., 1.]], dtype=float32)
    """

    def __call__(self, shape, dtype=None):
        kernel_h, kernel_w, out_channels, in_channels = shape
        if kernel_h != kernel_w:
            raise ValueError(f"a bilinear kernel is square, got a {kernel_h}x{kernel_w} kernel")
        kernel = bilinear_kernel(in_channels, out_channels, kernel_h)
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {}
