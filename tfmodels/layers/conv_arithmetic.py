"""Convolution arithmetic: output sizes, dilated kernels, receptive fields, parameter counts.

Plain-Python formulas the notes state or use, one per function, each checked against Keras in
``tests/layers/test_conv_arithmetic.py``:

* output size ``out = floor((in + 2p - d(k-1) - 1) / s) + 1``: notes-002-part1.md S18 (seed 002
  L1386-1394, 32x32 k5 -> 28x28), notes-002-part2.md §55 (seed 002 L3878-3938: 7x7 k3 d2 -> 3x3,
  32x32 k3 s2 p1 d2 -> 15x15; the notes' claim that it also holds for transposed convs is wrong,
  see :func:`transposed_conv_output_size`, and dilation defaults to 1, not 0);
* effective kernel ``k + (k-1)(d-1)``: notes-003-004.md A9 (seed 003 L97);
* receptive field recursion: notes-003-004.md A2 (paper default recursion, seed definition L35);
* parameter counts: notes-003-004.md A3 (seed 003 L41-43), A6 (groups), A7 (depthwise separable,
  seed 004 L31-35).

Sizes and kernels are single integers (one spatial axis); apply a function per axis for
rectangular kernels such as ERFNet's 3x1 / 1x3.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _pair(kernel_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(kernel_size, int):
        return kernel_size, kernel_size
    kernel_h, kernel_w = kernel_size
    return int(kernel_h), int(kernel_w)


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """The span of a dilated kernel: ``k + (k - 1)(d - 1)`` (notes-003-004.md A9, seed 003 L97).

    ``d - 1`` holes sit between neighbouring taps; ``d = 1`` is an ordinary convolution.

    Args:
        kernel_size: taps along one axis.
        dilation: the dilation rate ``d >= 1``.

    Example:
        >>> [effective_kernel_size(3, d) for d in (1, 2, 3, 4)]
        [3, 5, 7, 9]
    """
    if kernel_size < 1 or dilation < 1:
        raise ValueError(f"kernel_size and dilation must be >= 1, got {kernel_size}, {dilation}")
    return kernel_size + (kernel_size - 1) * (dilation - 1)


def conv_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
) -> int:
    """Output length of a convolution or pooling window along one axis.

    ``out = floor((in + 2p - k_eff) / s) + 1`` with ``k_eff = d(k - 1) + 1`` (notes-002-part2.md
    §55, seed 002 L3878-3930). Keras' padding names are accepted too: ``"valid"`` is ``p = 0``,
    and ``"same"`` gives ``ceil(in / s)`` whatever the kernel.

    Args:
        size: input length ``in``.
        kernel_size: taps ``k``.
        stride: ``s``.
        padding: zeros added on *each* side (PyTorch's ``padding``), or ``"valid"`` / ``"same"``.
        dilation: ``d``.

    Example:
        >>> conv_output_size(32, 5)                                     # S18: 32x32, k5 -> 28x28
        28
        >>> conv_output_size(7, 3, dilation=2)                          # §55: 7x7, k3, d2 -> 3x3
        3
        >>> conv_output_size(32, 3, stride=2, padding=1, dilation=2)    # §55: nn.Conv2d(..., 3, 2, 1, 2)
        15
        >>> conv_output_size(100, 3)                                    # S18: (1,5,100,100) -> 98x98
        98
        >>> conv_output_size(5, 3, stride=2), conv_output_size(4, 2, stride=2)
        (2, 2)
        >>> conv_output_size(7, 3, stride=2, padding="same")
        4
    """
    k_eff = effective_kernel_size(kernel_size, dilation)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if padding == "same":
        return -(-size // stride)
    if padding == "valid":
        padding = 0
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, 'valid' or 'same', got {padding!r}")
    span = size + 2 * padding - k_eff
    if span < 0:
        raise ValueError(f"kernel span {k_eff} exceeds the padded input {size + 2 * padding}")
    return span // stride + 1


def transposed_conv_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution along one axis.

    ``out = (in - 1)s - 2p + d(k - 1) + output_padding + 1`` (notes-003-004.md A8,
    notes-002-part2.md: ``(n - 1)s + k - 2p``). The seed (002 L3930) wrongly reuses the forward
    formula for this. Keras' ``"same"`` gives ``in * s``; its ``"valid"`` is ``p = 0`` when
    ``output_padding`` is given or ``k >= s`` (for ``k < s`` without it, Keras pads to ``in * s``).

    Args:
        size: input length.
        kernel_size: taps ``k``.
        stride: ``s``, the spacing at which each input's kernel-sized block is written.
        padding: rows/columns *removed* from each side of the output, or ``"valid"`` / ``"same"``.
        output_padding: extra rows/columns added at the end.
        dilation: ``d``.

    Example:
        >>> transposed_conv_output_size(2, 2)      # the 2x2 * 2x2 example of notes-002-part2
        3
        >>> transposed_conv_output_size(2, 3)      # A8: 2x2 -> 4x4 (kernel 3, stride 1, 'valid')
        4
        >>> transposed_conv_output_size(2, 3, stride=2), transposed_conv_output_size(2, 3, 2, "same")
        (5, 4)
        >>> transposed_conv_output_size(6, 5, stride=3, padding=2)  # d2l: 16 -> 6 -> 16
        16
    """
    if padding == "same":
        return size * stride
    if padding == "valid":
        padding = 0
    k_eff = effective_kernel_size(kernel_size, dilation)
    return (size - 1) * stride - 2 * padding + k_eff + output_padding


def receptive_field(layers: Iterable[int | Sequence[int]]) -> int:
    """Receptive field, in input pixels, of one output unit of a stack of conv/pool layers.

    The paper-default recursion of notes-003-004.md A2: ``r_0 = 1, j_0 = 1``;
    ``r_l = r_{l-1} + (k_eff_l - 1) j_{l-1}``; ``j_l = j_{l-1} s_l``, where ``j`` is the distance
    in input pixels between neighbouring units of layer ``l``. Padding does not change it.

    Args:
        layers: one entry per layer, first to last: ``kernel``, ``(kernel, stride)`` or
            ``(kernel, stride, dilation)``; stride and dilation default to 1.

    Example:
        >>> receptive_field([3, 3]), receptive_field([3, 3, 3])     # = one 5x5, one 7x7 (VGG)
        (5, 7)
        >>> receptive_field([3, 3, (2, 2), 3, 3, (2, 2)])           # VGG-style, two stages
        16
        >>> receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])      # dilations 1, 2, 4
        15
    """
    field, jump = 1, 1
    for layer in layers:
        kernel, stride, dilation = (layer, 1, 1) if isinstance(layer, int) else (*layer, 1, 1)[:3]
        field += (effective_kernel_size(kernel, dilation) - 1) * jump
        jump *= stride
    return field


def conv_params(
    kernel_size: int | Sequence[int],
    in_channels: int,
    out_channels: int,
    groups: int = 1,
    use_bias: bool = True,
) -> int:
    """Parameters of a (grouped) 2-D convolution: ``(k_h k_w C_in / g + 1) C_out``.

    notes-003-004.md A3 (seed 003 L43: ``(k_w k_h C_in + 1) C_out``, the +1 a bias per output
    channel) and A6 (groups). The dilation rate never changes it (A9), and a transposed
    convolution of the same kernel has the same count, ``k_h k_w C_in C_out + C_out``.

    Args:
        kernel_size: ``k`` or ``(k_h, k_w)``.
        in_channels: ``C_in``.
        out_channels: ``C_out`` (the number of kernels).
        groups: ``g``; both channel counts must be divisible by it.
        use_bias: count one bias per output channel.

    Example:
        >>> conv_params(3, 3, 4)                  # A1: 8x8x3 -> Conv2D(4, 3)
        112
        >>> conv_params(3, 4, 6, groups=2)        # A6: kernel (3, 3, 2, 6)
        114
        >>> conv_params(3, 5, 10, use_bias=False) # S18: weight (10, 5, 3, 3)
        450
        >>> conv_params((3, 1), 64, 64)           # one of ERFNet's factorised convs
        12352
    """
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"channels {in_channels} -> {out_channels} are not divisible by groups={groups}")
    kernel_h, kernel_w = _pair(kernel_size)
    return (kernel_h * kernel_w * in_channels // groups + int(use_bias)) * out_channels


def depthwise_conv_params(
    kernel_size: int | Sequence[int],
    channels: int,
    depth_multiplier: int = 1,
    use_bias: bool = True,
) -> int:
    """Parameters of a depthwise convolution: one ``k_h x k_w`` filter per input channel.

    ``(k_h k_w + 1) C m`` (notes-003-004.md A3/A7: kernel ``[K, K, C, 1]``, seed 004 L33); the same
    as :func:`conv_params` with ``groups = C_in``.

    Example:
        >>> depthwise_conv_params(3, 4)           # A7: DepthwiseConv2D(3) on C = 4
        40
    """
    kernel_h, kernel_w = _pair(kernel_size)
    return (kernel_h * kernel_w + int(use_bias)) * channels * depth_multiplier


def separable_conv_params(
    kernel_size: int | Sequence[int],
    in_channels: int,
    out_channels: int,
    use_bias: bool = True,
) -> int:
    """Parameters of a depthwise separable convolution: ``K^2 C + C D (+ D)``.

    notes-003-004.md A7 (seed 004 L31-35): a bias-free depthwise ``[K, K, C, 1]`` kernel then a
    pointwise ``[1, 1, C, D]`` kernel with ``D`` biases, as in ``keras.layers.SeparableConv2D``.
    Without biases the ratio to a standard convolution's ``K^2 C D`` is ``1/D + 1/K^2``.

    Example:
        >>> separable_conv_params(3, 4, 8)        # A7: SeparableConv2D(8, 3) on C = 4
        76
        >>> c = 64
        >>> ratio = separable_conv_params(3, c, 256, False) / conv_params(3, c, 256, use_bias=False)
        >>> round(ratio, 3)                       # 1/256 + 1/9
        0.115
    """
    kernel_h, kernel_w = _pair(kernel_size)
    return kernel_h * kernel_w * in_channels + in_channels * out_channels + int(use_bias) * out_channels
