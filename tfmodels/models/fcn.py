"""FCN: a fully convolutional network whose 32x transposed conv starts as bilinear upsampling.

Spec: notes-002-part2.md §18 (seed 002 L2333-2387), §16 (L2200-2229) and §17 (transposed conv);
notes-003-004.md D3. The seed's architecture (L2341-2363):

1. a CNN pretrained on ImageNet with its global average pooling and FC layers removed: a 224x224
   input gives a 7x7 map with 512 channels (stride 32);
2. a 1x1 convolution to ``num_classes`` channels (no spatial change);
3. a transposed convolution that enlarges H and W 32x, back to the input's size, initialised with
   the seed's ``bilinear_kernel`` (:class:`~tfmodels.layers.bilinear_kernel.BilinearKernel`).

d2l's code ([REF], the notes' source) uses ResNet-18 and ``ConvTranspose2d(C, C, kernel_size=64,
padding=16, stride=32)``; ``padding=16`` is Keras' ``padding="same"`` here (k - s = 2p: same output
``32 n``, same crop, tested). The transposed conv has no bias: the 1x1 conv's per-class bias goes
through the bilinear weights (they sum to 1 per output pixel), so a second bias adds nothing.

Backbones, from the zoo (their own "caffe" preprocessing, RGB→BGR minus the ImageNet mean, is the
first thing they do, so the FCN standardises raw pixels the backbone's way):

* ``"resnet18"`` (:func:`tfmodels.models.resnet.build_resnet18` without top): d2l's choice. Any
  ``width``; keras.applications has no ResNet-18, so it has no ImageNet weights.
* ``"vgg16"`` (:func:`tfmodels.models.vgg.build_vgg16` without top, 13 convs to pool5, 14,714,688
  parameters): the backbone of Long et al. 2015 ("Fully Convolutional Networks for Semantic
  Segmentation", FCN-32s). The **paper preset uses VGG16** because it is both the FCN paper's
  backbone and the only one of the two with ImageNet weights (``weights="imagenet"``, loaded from
  keras.applications, 224x224 → 7x7x512 as the seed says). The paper's convolutionalised fc6/fc7
  are left out: the seed removes the classifier layers (L2349).

Presets (``build_fcn(num_classes, **preset)``):

* ``tiny``:    ``backbone="resnet18", width=4`` (ResNet-18 at 1/16 width), 64x64 inputs:
  45,372 + 33·C + 4,096·C² parameters (82,335 at C = 3);
* ``default``: ``backbone="resnet18", width=16``, 128x128 inputs: 704,496 + 129·C + 4,096·C²
  parameters (1,201,531 at C = 11, ten digits and background);
* ``paper``:   ``backbone="vgg16", width=64`` (optionally ``weights="imagenet"``): 16,531,797
  parameters at C = 21 (Pascal VOC).

The 32x transposed conv alone has 64·64·C² weights (the seed's full C x C kernel, zero off the
diagonal at the start), which dominates the small presets.

The output is float32 logits at the input's size for any H, W that are multiples of
``SIZE_MULTIPLE``.
"""

from __future__ import annotations

import keras

from tfmodels.layers.bilinear_kernel import BilinearKernel
from tfmodels.models.resnet import build_resnet18
from tfmodels.models.vgg import build_vgg16

SIZE_MULTIPLE = 32  # the backbones' stride, undone by the 32x transposed conv (seed L2357-2362)
UPSAMPLE_STRIDE = 32
UPSAMPLE_KERNEL = 2 * UPSAMPLE_STRIDE  # d2l's 64, padding 16 = (64 - 32) / 2 = Keras "same"
BACKBONES = ("resnet18", "vgg16")
PUBLISHED_WIDTH = 64  # both backbones' first-stage channels


def build_backbone(backbone: str, width: int, weights: str | None) -> keras.Model:
    """A zoo CNN without pooling and FC (seed L2345-2349): raw pixels → stride-32 feature map.

    Args:
        backbone: one of ``BACKBONES``.
        width: first-stage channels (64 in both published networks); VGG16 needs a divisor of 64.
        weights: ``None`` or ``"imagenet"`` (VGG16 at width 64 only; the builders refuse the rest).

    Returns:
        A functional model ``[B, H, W, 3]`` raw pixels → ``[B, H/32, W/32, 8 · width]``.

    Example:
        >>> build_backbone("resnet18", 4, None).output.shape
        (None, None, None, 32)
    """
    if backbone == "resnet18":
        return build_resnet18(input_shape=(None, None, 3), include_top=False, weights=weights, width=width)
    if backbone == "vgg16":
        if PUBLISHED_WIDTH % width:
            raise ValueError(f"a VGG16 backbone needs a width dividing {PUBLISHED_WIDTH}, got {width}")
        return build_vgg16(
            input_shape=(None, None, 3), include_top=False, weights=weights, width_divisor=PUBLISHED_WIDTH // width
        )
    raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")


def bilinear_upsampling(num_classes: int, name: str = "upsample") -> keras.layers.Conv2DTranspose:
    """FCN's 32x transposed conv, kernel 64, initialised as bilinear upsampling (seed L2357-2387).

    ``dtype="float32"``: it is the model's last layer, so the logits stay float32 under mixed
    precision.

    Example:
        >>> tuple(bilinear_upsampling(21).compute_output_shape((None, 7, 7, 21)))
        (None, 224, 224, 21)
    """
    return keras.layers.Conv2DTranspose(
        num_classes,
        UPSAMPLE_KERNEL,
        strides=UPSAMPLE_STRIDE,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearKernel(),
        dtype="float32",
        name=name,
    )


def build_fcn(
    num_classes: int,
    *,
    backbone: str = "vgg16",
    width: int = 64,
    weights: str | None = None,
    name: str = "fcn",
) -> keras.Model:
    """Builds the notes' FCN: backbone → 1x1 conv to the classes → bilinear 32x transposed conv.

    The defaults are the ``paper`` preset (module docstring): VGG16, full width, random weights
    (nothing is downloaded unless ``weights="imagenet"``).

    Args:
        num_classes: output channels C (21 for Pascal VOC: background + 20).
        backbone: ``"vgg16"`` or ``"resnet18"`` (:data:`BACKBONES`).
        width: the backbone's first-stage channels (64 published; 4 or 16 for the CPU presets).
        weights: ``None`` or ``"imagenet"`` for the backbone (VGG16 at width 64 only).
        name: the model's name.

    Returns:
        A functional model ``images [B, H, W, 3]`` (raw RGB, 0..255) → float32 logits
        ``[B, H, W, C]``, H and W multiples of :data:`SIZE_MULTIPLE`.

    Example:
        >>> model = build_fcn(3, backbone="resnet18", width=4)
        >>> model.compute_output_shape((2, 64, 96, 3))
        (2, 64, 96, 3)
    """
    images = keras.Input((None, None, 3), name="images")
    features = build_backbone(backbone, width, weights)(images)
    # 1x1 conv to the classes (seed L2352-2355); Keras' Glorot init is d2l's Xavier.
    scores = keras.layers.Conv2D(num_classes, 1, name="score")(features)
    logits = bilinear_upsampling(num_classes)(scores)
    return keras.Model(images, logits, name=name)
