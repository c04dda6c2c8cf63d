"""Images to rows of flattened patches and back (ViT's patch split; MAE's reconstruction targets).

Specs: notes-001.md §24 (seed 001 L611-616: split the image into fixed-size patches, typically
16×16, and flatten each to one vector: 16·16·3 = 768 values for 224² RGB, 196 patches) and §26
(MAE reconstructs the pixels of each patch; "patchify/unpatchify round-trip identity").

Order, so that it matches a ``Conv2D`` with kernel = stride = patch size (ViT's patch projection):
patches go row-major over the ``h × w`` patch grid (index ``i · w + j``), the same order as that
convolution's output grid flattened with ``reshape([B, h·w, D])``; inside a patch the values go
``(row, column, channel)``, the order of the convolution's kernel ``[p, p, C, D]`` flattened to
``[p·p·C, D]``. So ``patchify(x) @ kernel.reshape(-1, D) + bias`` is the convolution's output, and
a prediction row of MAE's decoder is an image patch in this layout. The paper's ``patchify``
(facebookresearch/mae, ``'nchpwq->nhwpqc'``) uses the same layout (paper default).
"""

from __future__ import annotations

from keras import ops


def patchify(images, patch_size: int):
    """Splits images into non-overlapping ``p × p`` patches, one flattened patch per row.

    Args:
        images: ``[B, H, W, C]`` with static H, W, C, each of H and W a multiple of ``patch_size``.
        patch_size: p.

    Returns:
        ``[B, (H/p)·(W/p), p·p·C]``: patch ``i·(W/p) + j`` covers rows ``i·p …`` and columns
        ``j·p …``, its values in ``(row, column, channel)`` order.

    Example:
        >>> import numpy as np
        >>> image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
        >>> patchify(image, 2)[0].numpy().astype(int).tolist()
        [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    """
    _, height, width, channels = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {patch_size}")
    rows, columns = height // patch_size, width // patch_size
    x = ops.reshape(images, (-1, rows, patch_size, columns, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * columns, patch_size * patch_size * channels))


def unpatchify(patches, patch_size: int, height: int, width: int, channels: int):
    """The inverse of :func:`patchify`: rows of flattened patches back to images.

    Args:
        patches: ``[B, (H/p)·(W/p), p·p·C]`` in :func:`patchify`'s layout.
        patch_size: p.
        height: H, a multiple of p.
        width: W, a multiple of p.
        channels: C.

    Returns:
        ``[B, H, W, C]``.

    Example:
        >>> import numpy as np
        >>> image = np.random.rand(2, 6, 4, 3).astype("float32")
        >>> bool((unpatchify(patchify(image, 2), 2, 6, 4, 3).numpy() == image).all())
        True
    """
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {patch_size}")
    rows, columns = height // patch_size, width // patch_size
    x = ops.reshape(patches, (-1, rows, columns, patch_size, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))
