"""The networks of R-CNN: a CNN on every warped proposal, per-class SVMs and a box regressor.

Spec: notes-002-part2.md §7 (seed 002 L2096-2108). Step 2: a CNN truncated before its output
layer, fed each proposal warped to its input size, gives each proposal's features; step 3: one
SVM per class on those features; step 4: a linear regression from the features to the
ground-truth box. The rest is paper default (R-CNN, Girshick et al., 2014):

* the CNN is AlexNet (§2.1: 227×227 input, five convolutions, fc6 and fc7 of 4096) cut after
  fc7, whose ReLU outputs are the 4096-d features (:func:`build_crop_network`, on
  :func:`tfmodels.models.alexnet.build_alexnet`);
* for fine-tuning (§2.3) AlexNet's 1000-way fc8 is replaced by a ``C + 1``-way softmax
  classifier (class 0: background), with dropout before it as in AlexNet;
* the class-specific SVMs (§2.3) and box regressors (Appendix C) are linear maps of the features,
  with an L2 penalty on their weights (an SVM's margin term; ridge regression's λ). The paper
  regresses boxes from pool5 features; here the regressor reads fc7, as the SVMs do.

:func:`build_rcnn` puts them together per image batch: the proposals' warp (the recipe's fixed
windows), then the CNN once per proposal (:class:`~tfmodels.layers.per_region.PerRegion`), then
the heads. Which windows, how training samples them and the losses are the recipe's
(:mod:`tfmodels.recipes.rcnn`); ``models/`` does not depend on ``pipelines/``.
"""

from __future__ import annotations

import keras

from tfmodels.layers.per_region import PerRegion
from tfmodels.layers.region_warp import RegionWarp
from tfmodels.models.alexnet import build_alexnet


def build_crop_network(
    crop_size: int = 227,
    width_divisor: int = 1,
    fc_units: int = 4096,
    dropout: float = 0.5,
    stem_kernel: int = 11,
    stem_stride: int = 4,
    groups: int = 2,
    lrn: bool = True,
) -> keras.Model:
    """AlexNet cut after fc7: one warped proposal ``[R, h, h, 3]`` (0..255) -> features ``[R, fc_units]``.

    Args:
        crop_size: side of the warped proposals (227).
        width_divisor, fc_units, dropout, stem_kernel, stem_stride, groups, lrn:
            :func:`~tfmodels.models.alexnet.build_alexnet`'s (the paper's AlexNet with its defaults;
            ``groups=1, lrn=False``: the single-GPU d2l form, much faster on CPUs).

    Example:
        >>> build_crop_network().output.shape
        (None, 4096)
        >>> small = build_crop_network(32, width_divisor=8, fc_units=128, stem_kernel=3, stem_stride=1)
        >>> small.output.shape
        (None, 128)
    """
    alexnet = build_alexnet(
        1, (crop_size, crop_size, 3), width_divisor=width_divisor, fc_units=fc_units, dropout=dropout,
        stem_kernel=stem_kernel, stem_stride=stem_stride, groups=groups, lrn=lrn,
    )
    return keras.Model(alexnet.input, alexnet.get_layer("fc7").output, name="crop_network")


def build_rcnn_heads(
    feature_dim: int, num_classes: int, dropout: float = 0.5, svm_l2: float = 0.0, box_l2: float = 0.0
) -> keras.Model:
    """The fine-tuning classifier, the per-class SVMs and the class-specific box regressors.

    Two inputs carry the same features ``[B, R, D]``: ``features`` feed the fine-tuning softmax,
    ``frozen_features`` the SVMs and the regressors, so a trainer can stop the gradient of the
    latter (R-CNN trains SVMs and regressors on fixed features).

    Args:
        feature_dim: D.
        num_classes: object classes C.
        dropout: dropout before the fine-tuning classifier (AlexNet's before fc8: 0.5).
        svm_l2: L2 penalty on the SVMs' weights (``l2 · Σ w²``).
        box_l2: L2 penalty on the box regressors' weights (ridge regression).

    Returns:
        ``[features, frozen_features] -> {"class_logits": [B, R, C + 1], "svm_scores": [B, R, C],
        "box_offsets": [B, R, C, 4]}``, float32; box offsets are d2l's ``[dx, dy, dw, dh]``
        (σ 0.1 / 0.2) from the proposal to the box of each class.

    Example:
        >>> heads = build_rcnn_heads(128, 10)
        >>> heads.output["box_offsets"].shape
        (None, None, 10, 4)
    """
    features = keras.Input((None, feature_dim), name="features")
    frozen = keras.Input((None, feature_dim), name="frozen_features")
    x = keras.layers.Dropout(dropout, name="finetune_dropout")(features) if dropout else features
    class_logits = keras.layers.Dense(num_classes + 1, dtype="float32", name="class_logits")(x)
    svm_scores = keras.layers.Dense(
        num_classes, kernel_regularizer=keras.regularizers.L2(svm_l2) if svm_l2 else None, dtype="float32",
        name="svm_scores",
    )(frozen)
    offsets = keras.layers.Dense(
        4 * num_classes, kernel_regularizer=keras.regularizers.L2(box_l2) if box_l2 else None,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name="box_regressor",
    )(frozen)
    offsets = keras.layers.Reshape((-1, num_classes, 4), dtype="float32", name="box_offsets")(offsets)
    outputs = {"class_logits": class_logits, "svm_scores": svm_scores, "box_offsets": offsets}
    return keras.Model([features, frozen], outputs, name="heads")


def build_rcnn(
    image_size: int, windows, crop_size: int, crop_network: keras.Model, heads: keras.Model, context_padding: int = 0
) -> keras.Model:
    """R-CNN at inference: warp every window, run the CNN on each, score and regress each.

    Args:
        image_size: side of the square input (raw RGB 0..255).
        windows: ``[N, 4]`` proposals, corner boxes in input pixels (the same for every image).
        crop_size: side of the warp (the CNN's input).
        crop_network: :func:`build_crop_network`'s, ``[R, h, h, 3] -> [R, D]``.
        heads: :func:`build_rcnn_heads`'.
        context_padding: pixels of context around each window in its warp (paper: 16 at 227).

    Returns:
        ``images [B, S, S, 3] -> heads' outputs`` for the ``N`` windows of each image. Its layers
        ``warp`` (:class:`~tfmodels.layers.region_warp.RegionWarp`), ``per_region``
        (:class:`~tfmodels.layers.per_region.PerRegion` around ``crop_network``) and ``heads``
        also serve training on other boxes.

    Example:
        >>> windows = [[0.0, 0.0, 32.0, 32.0], [16.0, 16.0, 48.0, 64.0], [8.0, 0.0, 40.0, 16.0]]
        >>> cnn = build_crop_network(32, width_divisor=8, fc_units=64, stem_kernel=3, stem_stride=1)
        >>> net = build_rcnn(64, windows, 32, cnn, build_rcnn_heads(64, 10))
        >>> net.output["svm_scores"].shape
        (None, 3, 10)
    """
    images = keras.Input((image_size, image_size, 3), name="images")
    crops = RegionWarp(windows, crop_size, context_padding, name="warp")(images)
    features = PerRegion(crop_network, name="per_region")(crops)
    return keras.Model(images, heads([features, features]), name="rcnn")
