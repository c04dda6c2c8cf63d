"""Labelling and balanced sampling of anchors and proposals for two-stage detectors.

Faster R-CNN (Ren et al., 2015, §3.1.2 and §3.1.3, paper default; notes-002-part2.md §10) trains
its region proposal network on 256 anchors per image, up to half of them positive: an anchor is
positive when it overlaps a ground-truth box by IoU > 0.7, or is the anchor with the highest IoU
for some box; negative below 0.3; the rest are ignored. The detection head (Fast R-CNN, Girshick
2015, §2.3, paper default) trains on 128 RoIs per image (64 in the paper's two-image batches of
128), 25% foreground: proposals with IoU >= 0.5, background below it.

Both are the same two steps on batches, in core ops: :func:`label_by_iou` then
:func:`balanced_sample`. The sample is random, drawn from a stateless seed, so a resumed run
draws what an uninterrupted one did when the caller derives the seed from the step counter.
"""

from __future__ import annotations

import tensorflow as tf

_NONE = -1.0  # below every IoU: marks padding boxes


def label_by_iou(
    iou: tf.Tensor, valid: tf.Tensor, positive_iou: float, negative_iou: float, best_match: bool = False
) -> dict[str, tf.Tensor]:
    """Positive / negative labels of candidates (anchors or proposals) from their IoU with the boxes.

    Args:
        iou: float ``[B, N, G]`` IoU of N candidates with G >= 1 ground-truth box rows.
        valid: bool ``[B, G]``: which boxes are real (False on padding).
        positive_iou: a candidate whose best IoU is at least this is positive.
        negative_iou: a candidate whose best IoU is below this is negative (between the two:
            ignored).
        best_match: also make each real box's highest-IoU candidates positive (Faster R-CNN's
            RPN rule, so every box has an anchor however small it is); ties all count.

    Returns:
        ``matched`` int32 ``[B, N]`` (the best box of each candidate; 0 when the image has none),
        ``positive`` and ``negative`` bool ``[B, N]``.

    Example:
        >>> iou = tf.constant([[[0.8], [0.4], [0.1]]])
        >>> labels = label_by_iou(iou, tf.constant([[True]]), 0.7, 0.3)
        >>> labels["positive"].numpy().tolist(), labels["negative"].numpy().tolist()
        ([[True, False, False]], [[False, False, True]])
    """
    iou = tf.where(valid[:, None, :], iou, _NONE)
    best_iou = tf.reduce_max(iou, axis=2)  # -1 when the image has no boxes: negative
    matched = tf.argmax(iou, axis=2, output_type=tf.int32)
    positive = best_iou >= positive_iou
    if best_match:
        box_best = tf.reduce_max(iou, axis=1, keepdims=True)  # [B, 1, G]
        is_best = (iou == box_best) & (iou > 0.0) & valid[:, None, :]
        # A box's best candidate is matched to that box, even if another box overlaps it more.
        best_box = tf.argmax(tf.cast(is_best, tf.float32) * (1.0 + iou), axis=2, output_type=tf.int32)
        has_best = tf.reduce_any(is_best, axis=2)
        matched = tf.where(has_best & ~positive, best_box, matched)
        positive |= has_best
    negative = ~positive & (best_iou < negative_iou)
    return {"matched": matched, "positive": positive, "negative": negative}


def balanced_sample(
    positive: tf.Tensor, negative: tf.Tensor, num_samples: int, positive_fraction: float, seed: tf.Tensor
) -> dict[str, tf.Tensor]:
    """A random sample of ``num_samples`` candidates per image, at most ``positive_fraction`` positive.

    Up to ``round(num_samples * positive_fraction)`` positives are drawn uniformly; negatives fill
    the rest. When an image has too few of both, the remaining rows of the fixed-size sample get
    weight 0.

    Args:
        positive: bool ``[B, N]``.
        negative: bool ``[B, N]``, disjoint from ``positive``.
        num_samples: rows per image (a Python int); N rows when N (static) is smaller.
        positive_fraction: the largest share of positives.
        seed: int ``[2]`` stateless seed.

    Returns:
        ``indices`` int32 ``[B, S]`` into N, ``weights`` float32 ``[B, S]`` (1 for a drawn
        candidate, 0 for filler), ``positive`` bool ``[B, S]``, ``S = min(num_samples, N)``.

    Example:
        >>> sample = balanced_sample(tf.constant([[True, True, False, False]]),
        ...                          tf.constant([[False, False, True, True]]), 2, 0.5, tf.constant([1, 2]))
        >>> sorted(sample["positive"].numpy()[0].tolist())
        [False, True]
    """
    uniform = tf.random.stateless_uniform(tf.shape(positive), seed)  # [0, 1): a random order
    num_samples = min(num_samples, positive.shape[1])
    max_positive = max(1, int(round(num_samples * positive_fraction)))
    positive_key = tf.where(positive, uniform, -1.0)
    kth = tf.math.top_k(positive_key, k=max_positive).values[:, -1:]
    drawn_positive = positive & (positive_key >= kth)
    # Drawn positives rank first (2 + u), then negatives (1 + u); the rest are filler.
    key = tf.where(drawn_positive, 2.0 + uniform, tf.where(negative, 1.0 + uniform, -1.0))
    top = tf.math.top_k(key, k=num_samples)
    return {
        "indices": top.indices,
        "weights": tf.cast(top.values >= 1.0, tf.float32),
        "positive": top.values >= 2.0,
    }
