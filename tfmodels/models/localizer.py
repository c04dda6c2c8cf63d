"""The notes' "classification + localisation" network: one class and one box per image.

Spec: notes-002-part2.md §1-2 (seed 002 L2019-2023: classify the object and draw one box around
it; L2047: localisation outputs four numbers, a point plus width and height; L2054-2062: centre
form ``(x, y, w, h)``, y downwards). The spec's implementation note: a backbone, then
``Dense(num_classes)`` for the class and ``Dense(4)`` for the box. The notes give no backbone;
here it is a ResNet (basic blocks, :func:`tfmodels.models.resnet.build_resnet`). Both heads are
linear layers on the backbone's last feature map, as the spec says, read two ways:

* the box head sees it *flattened*: global pooling would throw away where the object is;
* the class head sees it *globally average-pooled*: what the object is does not depend on where
  it is, and on the flattened map the class layer would have to learn every class again at
  every position.

The box is ``(centre x, centre y, width, height)`` as fractions of the input's width and height
(linear outputs), so its loss does not depend on the image size.
"""

from __future__ import annotations

from typing import Sequence

import keras

from tfmodels.models.resnet import basic_block, build_resnet


def build_localizer(
    num_classes: int = 20,
    input_shape=(224, 224, 3),
    stage_blocks: Sequence[int] = (2, 2, 2, 2),
    width: int = 64,
    name: str = "localizer",
) -> keras.Model:
    """Builds the classification + localisation network (module docstring).

    The defaults are the ``paper`` preset's: ResNet-18 at 224x224 for VOC's 20 classes.

    Args:
        num_classes: class logits.
        input_shape: raw RGB pixels in 0..255, ``(H, W, 3)``, at least 32x32.
        stage_blocks: basic blocks per ResNet stage ((2, 2, 2, 2): ResNet-18).
        width: the ResNet's first-stage channels.
        name: model name.

    Returns:
        A functional model ``pixels [B, H, W, 3] -> {"class_logits": [B, C], "box": [B, 4]}``
        (float32; the box is ``(cx, cy, w, h)`` in fractions of the input size).

    Example:
        >>> net = build_localizer(10, (64, 64, 3), (1, 1, 1, 1), 8)
        >>> {k: tuple(v.shape) for k, v in net.output.items()}
        {'class_logits': (None, 10), 'box': (None, 4)}
    """
    backbone = build_resnet(basic_block, tuple(stage_blocks), input_shape=input_shape, include_top=False, width=width)
    features = backbone.output
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    flat = keras.layers.Flatten(name="flatten")(features)
    outputs = {
        "class_logits": keras.layers.Dense(num_classes, dtype="float32", name="class_logits")(pooled),
        "box": keras.layers.Dense(4, dtype="float32", name="box")(flat),
    }
    return keras.Model(backbone.input, outputs, name=name)
