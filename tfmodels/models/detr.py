"""DETR (DEtection TRansformer, Carion et al. 2020): a set of N (class, box) predictions per image.

Spec: notes-001.md §28 (seed 001 L777-817): a CNN backbone, usually a ResNet (L794-801), a
Transformer encoder over its features, a decoder that turns N learned object queries into N
object hypotheses in parallel, then a class and a box for each; no anchors, no NMS. The rest is
the paper's (paper default; §3.2, appendix A.3 and the official code):

1. **Backbone**: a ResNet without pooling and FC (:func:`~tfmodels.models.resnet.build_resnet`),
   stride 32 with four stages; fewer stages cut it shallower (three stages: stride 16) for
   small images.
2. **Input projection**: a 1x1 conv from the backbone's channels to ``d_model``.
3. **Transformer** (:class:`~tfmodels.layers.detr_transformer.DetrTransformer`): the map
   flattened to tokens with 2-D sine positions, a post-LN encoder, a decoder over
   ``num_queries`` learned queries; every decoder layer's output after the shared final norm.
4. **Heads**, shared by all decoder layers: a linear class head with ``C + 1`` logits (the last
   is "no object") and a 3-layer MLP (ReLU, ReLU, then a sigmoid) giving the box as
   ``(cx, cy, w, h)`` normalised to the image.

The heads on the last decoder layer are the predictions; on the earlier layers they are the
**auxiliary decoding** outputs the paper's loss also trains (``aux_loss``).

``paper`` network (:func:`build_detr` defaults): DETR-R50, ResNet-50, d_model 256, 8 heads,
6 + 6 layers, FFN 2048, dropout 0.1, 100 queries, 91 + 1 classes (the official code sizes the
class head by COCO's largest category id, 90, plus one). Parameters (the test derives each term):

===============================================  ==========
ResNet-50 conv kernels (no conv biases)          23,454,912
its BatchNormalization: gamma and beta               53,120
its BatchNormalization: moving mean and variance     53,120
input projection 2048 -> 256                        524,544
6 encoder layers x 1,315,072                      7,890,432
6 decoder layers x 1,578,752 + final LayerNorm    9,473,024
query embeddings 100 x 256                           25,600
class head 256 -> 92                                 23,644
box MLP 256 -> 256 -> 256 -> 4                      132,612
===============================================  ==========

``count_params()`` is 41,631,008 (41,577,888 trainable). The official DETR-R50 reports
41,302,368 "params" (the paper's Table 1: 41M): it counts parameters that require gradients,
and its backbone is torchvision's ResNet-50 with **FrozenBatchNorm** (gamma, beta and statistics
are buffers, never counted) and with conv1 and layer1 frozen (222,400 kernel weights not
counted). Ours trains BatchNormalization (it learns from scratch on the CPU presets): the same
network less those two items gives 41,302,368 exactly. Our bottleneck strides its first 1x1
conv (ResNet v1, keras.applications) where torchvision strides the 3x3 (v1.5): same count.

Not here: DETR's padding mask (the letterboxed border is attended to like any pixel; inputs
are one square size) and ImageNet initialisation of the backbone.
"""

from __future__ import annotations

from typing import Sequence

import keras

from tfmodels.layers.detr_transformer import DetrTransformer
from tfmodels.models.resnet import basic_block, bottleneck_block, build_resnet

BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def build_detr(
    num_classes: int = 91,
    image_size: int = 800,
    block: str = "bottleneck",
    stage_blocks: Sequence[int] = (3, 4, 6, 3),
    width: int = 64,
    d_model: int = 256,
    num_heads: int = 8,
    encoder_layers: int = 6,
    decoder_layers: int = 6,
    ffn_dim: int = 2048,
    num_queries: int = 100,
    dropout: float = 0.1,
    aux_loss: bool = True,
    name: str = "detr",
) -> keras.Model:
    """Builds DETR: ResNet, 1x1 projection, Transformer, class and box heads (module docstring).

    The defaults are DETR-R50 (the paper's COCO model, 91 + 1 classes); smaller values give
    the CPU presets.

    Args:
        num_classes: object classes C; the class head has C + 1 logits (the last: no object).
        image_size: side of the square input (raw RGB pixels in 0..255).
        block: ``basic`` (ResNet-18/34 blocks) or ``bottleneck`` (ResNet-50 and deeper).
        stage_blocks: blocks per ResNet stage; the backbone's stride is ``2 ** (len + 1)``.
        width: the ResNet's first-stage channels (64 in the paper).
        d_model: the Transformer's width.
        num_heads: attention heads.
        encoder_layers, decoder_layers: Transformer layers on each side.
        ffn_dim: the FFN's hidden width.
        num_queries: object queries N: predictions per image.
        dropout: the Transformer's dropout rate.
        aux_loss: also return the heads on every decoder layer but the last.
        name: model name.

    Returns:
        A functional model ``images [B, S, S, 3] -> {"class_logits": [B, N, C + 1],
        "boxes": [B, N, 4]}`` (boxes ``(cx, cy, w, h)`` in [0, 1] of the image), plus, with
        ``aux_loss`` and more than one decoder layer, ``"aux_class_logits": [B, L - 1, N, C + 1]``
        and ``"aux_boxes": [B, L - 1, N, 4]``; all float32.

    Example:
        >>> net = build_detr(10, 64, "basic", (1, 1, 1), 8, 32, 2, 1, 2, 64, num_queries=5)
        >>> tuple(net.output["class_logits"].shape), tuple(net.output["aux_boxes"].shape)
        ((None, 5, 11), (None, 1, 5, 4))
    """
    shape = (image_size, image_size, 3)
    backbone = build_resnet(BLOCKS[block], tuple(stage_blocks), input_shape=shape, include_top=False, width=width)
    features = keras.layers.Conv2D(d_model, 1, name="input_projection")(backbone.output)
    transformer = DetrTransformer(num_heads, ffn_dim, encoder_layers, decoder_layers, num_queries, dropout, name="transformer")
    states = transformer(features)  # [B, L, N, d]: every decoder layer
    class_logits = keras.layers.Dense(num_classes + 1, dtype="float32", name="class_head")(states)
    x = states
    for index in range(2):
        x = keras.layers.Dense(d_model, activation="relu", name=f"box_head_{index + 1}")(x)
    boxes = keras.layers.Dense(4, activation="sigmoid", dtype="float32", name="box_head_3")(x)
    outputs = {"class_logits": class_logits[:, -1], "boxes": boxes[:, -1]}
    if aux_loss and decoder_layers > 1:
        outputs.update(aux_class_logits=class_logits[:, :-1], aux_boxes=boxes[:, :-1])
    return keras.Model(backbone.input, outputs, name=name)
