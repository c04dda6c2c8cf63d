"""COCO box mAP as a streaming Keras metric in core TF ops, for validation monitoring in ``fit``.

Spec: issue 12 "Evaluation": the in-graph metric agrees with pycocotools' ``COCOeval`` within
1e-3 on the same detections (DESIGN.md "Vision tasks"; keras-cv#915 and #2095 are in-graph COCO
metrics that did not). mAP is not in the notes; the definition is COCO's (Lin et al., 2014,
cocodataset.org/#detection-eval), followed here step by step as ``COCOeval`` computes it for area
"all" and ``maxDets`` 100:

1. per image and class, detections sorted by score (ties keep their order) and cut to the best
   100; each in turn takes the unmatched ground-truth box of its class with the highest IoU, if
   that IoU is at least the threshold (on equal IoUs, the later box), once per IoU threshold;
2. per class, the detections of all images sorted by score (ties: earlier image first); with
   cumulative true/false positives, recall ``tp / n_gt`` and precision ``tp / (tp + fp + ε)``;
3. at each recall point ``r`` in 0:0.01:1, the highest precision at any recall ``≥ r`` (0 if the
   recall is never reached); AP is the mean over the 101 points and the IoU thresholds;
4. mAP is the mean AP over the classes with at least one ground-truth box.

Storage: exact, not histogrammed. Per kept detection the metric stores its class, score and one
true-positive flag per IoU threshold in fixed-size buffers (``capacity`` slots, about
``(8 + T)`` bytes each), and sorts them in ``result()``. Score histograms would merge detections
whose scores share a bin, and the precision inside a bin depends on their order: near the top
of the ranking one merged true/false pair moves AP by ``~0.5 / n_gt`` per class, more than 1e-3.
The exact form costs a sort of the stored detections per ``result()``. Size ``capacity`` for the
whole validation set (images × detections per image); detections beyond it are dropped and
counted in ``num_dropped``, and the result then covers only those stored.

Faithfulness notes:

* IoUs are computed in float64 from the corner boxes, the same arithmetic as COCO's ``bbIou``
  on ``[x, y, w, h]``, so detections at an IoU threshold fall on the same side;
* no crowd boxes (``iscrowd`` 0, as in our data): nothing is ignored for hitting a crowd
  region. Boxes of negative area (``xmax < xmin`` xor ``ymax < ymin``) are ignored, as COCOeval
  ignores areas outside the range "all"; boxes are assumed smaller than 1e5 px a side;
* ties in score rank by the order images reach ``update_state`` (under a distribution strategy,
  by replica first); :func:`coco_evaluate` ranks them by image id, so number images in the order
  they are fed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

COCO_IOU_THRESHOLDS = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))  # COCOeval's iouThrs, bit for bit
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval's recThrs
_EPSILON = float(np.spacing(1))  # COCOeval's guard in tp / (tp + fp + ε)


def _class_ids(classes, count, num_classes: int) -> tf.Tensor:
    """int32 classes with ``-1`` on padding: class -1, out of range, or index ≥ the image's count."""
    classes = tf.cast(classes, tf.int32)
    valid = (classes >= 0) & (classes < num_classes)
    if count is not None:
        valid &= tf.range(tf.shape(classes)[1])[None, :] < tf.cast(tf.reshape(count, [-1, 1]), tf.int32)
    return tf.where(valid, classes, -1)


def _negative_area(boxes: tf.Tensor) -> tf.Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]) < 0


def _pairwise_iou(boxes: tf.Tensor, others: tf.Tensor) -> tf.Tensor:
    """``[B, N, G]`` IoU of float64 corner boxes ``[B, N, 4]`` and ``[B, G, 4]`` (0 if apart)."""
    a, b = boxes[:, :, None, :], others[:, None, :, :]
    width = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    height = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return tf.math.divide_no_nan(intersection, area_a + area_b - intersection)


def _rank_within_class(classes: tf.Tensor) -> tf.Tensor:
    """``[B, N]``: how many earlier detections of the image share each detection's class."""
    n = tf.shape(classes)[1]
    earlier = tf.range(n)[None, :] < tf.range(n)[:, None]  # [i, j]: j comes before i
    same = tf.equal(classes[:, :, None], classes[:, None, :]) & earlier[None]
    return tf.reduce_sum(tf.cast(same, tf.int32), axis=2)


def _greedy_match(ious: tf.Tensor, thresholds: tf.Tensor) -> tf.Tensor:
    """COCO's matching: ``[B, N, T]`` true-positive flags of score-sorted detections.

    Args:
        ious: ``[B, N, G]`` float64 IoUs, ``-1`` where detection and box cannot match.
        thresholds: ``[T]`` float64 IoU thresholds.
    """
    # A column that never matches keeps argmax defined when an image has no box slots.
    ious = tf.pad(ious, [[0, 0], [0, 0], [0, 1]], constant_values=-1.0)
    batch, n, g = tf.unstack(tf.shape(ious))
    t = tf.size(thresholds)

    def match_one(d, matched, is_tp):
        iou = ious[:, d, None, :]  # [B, 1, G]
        candidates = (iou >= thresholds[None, :, None]) & ~matched  # [B, T, G]
        # COCOeval keeps the last of equal best IoUs: argmax (first) over the reversed box axis.
        reversed_iou = tf.reverse(tf.where(candidates, iou, -1.0), axis=[2])
        best = g - 1 - tf.argmax(reversed_iou, axis=2, output_type=tf.int32)
        found = tf.reduce_any(candidates, axis=2)  # [B, T]
        matched |= tf.equal(tf.range(g), best[..., None]) & found[..., None]
        # The loop variable keeps its static shape (one detection slot per image would otherwise
        # widen [B, 1, T] to [B, None, T] and fail the while_loop's shape check).
        is_tp = tf.ensure_shape(tf.where(tf.equal(tf.range(n), d)[None, :, None], found[:, None, :], is_tp), is_tp.shape)
        return d + 1, matched, is_tp

    _, _, is_tp = tf.while_loop(
        lambda d, *_: d < n,
        match_one,
        (tf.constant(0), tf.zeros([batch, t, g], tf.bool), tf.zeros([batch, n, t], tf.bool)),
    )
    return is_tp


def _parse(value, keys: Sequence[str]) -> list:
    """Values of ``keys`` from a mapping (the last key optional) or a tuple in the same order."""
    if isinstance(value, Mapping):
        return [value[key] for key in keys[:-1]] + [value.get(keys[-1])]
    value = list(value)
    return value + [None] * (len(keys) - len(value))


@keras.saving.register_keras_serializable(package="tfmodels")
class MeanAveragePrecision(keras.metrics.Metric):
    """COCO box mAP (area "all", ``maxDets`` 100) over every image seen since the last reset.

    Agrees with pycocotools' ``COCOeval`` (and :func:`tfmodels.metrics.coco_evaluate`) on the
    same detections: see the module docstring for the steps and the storage choice.

    Args:
        num_classes: classes are ``0 .. num_classes - 1``; others count as padding.
        iou_thresholds: IoU thresholds averaged over; COCO's 0.5:0.05:0.95 by default,
            ``(0.5,)`` for mAP@0.5.
        max_detections: detections kept per image and class, highest scores first (COCO: 100).
        capacity: detections stored since the last reset, in all; more are dropped and counted
            in ``num_dropped``. Under a distribution strategy each replica gets an equal share.
        name: metric name.
        dtype: dtype of the result.

    Update args:
        y_true: ground truth, a dict ``{"boxes": [B, G, 4], "classes": [B, G], "num_boxes": [B]}``
            (the batched element form; ``num_boxes`` optional) or a tuple in that order. Corner
            boxes ``[xmin, ymin, xmax, ymax]`` in pixels; classes ``-1`` on padding.
        y_pred: detections, a dict ``{"detection_boxes": [B, N, 4], "detection_scores": [B, N],
            "detection_classes": [B, N], "num_detections": [B]}`` (the served outputs;
            ``num_detections`` optional, classes ``-1`` also mark padding) or a tuple in that order.
            Boxes in the same pixels as the ground truth.
        sample_weight: not supported (must be None).

    ``update_state`` is graph code (``tf.function``, ``model.evaluate``; not XLA: the number of
    kept detections is dynamic) and runs in a replica context. Under ``MirroredStrategy`` each
    replica writes its own share of the buffers, so the result read outside the replicas (the
    epoch logs) covers all of them; per-step values inside a replica cover that replica only.
    ``result()`` is ``-1`` when no ground-truth box has been seen, as in COCOeval.

    Example:
        >>> import numpy as np
        >>> metric = MeanAveragePrecision(num_classes=2)
        >>> boxes = np.array([[[0., 0., 10., 10.], [20., 0., 30., 10.]]])
        >>> metric.update_state({"boxes": boxes, "classes": np.array([[0, 1]])},
        ...                     (boxes, np.array([[0.9, 0.8]]), np.array([[0, 0]])))
        >>> round(float(metric.result()), 4)  # class 0 found, class 1 not
        0.5
    """

    def __init__(
        self,
        num_classes: int,
        iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
        max_detections: int = 100,
        capacity: int = 100_000,
        name: str = "map",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self.max_detections = int(max_detections)
        self.capacity = int(capacity)
        t = len(self.iou_thresholds)
        # Sum-aggregated slots: replicas write disjoint slots, so the sum is their union.
        self.slot_class = self.add_variable((self.capacity,), "zeros", dtype="int32", name="slot_class")  # class + 1; 0: empty
        self.slot_score = self.add_variable((self.capacity,), "zeros", dtype="float32", name="slot_score")
        self.slot_is_tp = self.add_variable((self.capacity, t), "zeros", dtype="int8", name="slot_is_tp")
        self.num_stored = self.add_variable((), "zeros", dtype="int32", name="num_stored")
        self.num_dropped = self.add_variable((), "zeros", dtype="int32", name="num_dropped")
        self.num_groundtruth = self.add_variable((self.num_classes,), "zeros", dtype="int32", name="num_groundtruth")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("MeanAveragePrecision does not take sample weights")
        gt_boxes, gt_classes, num_boxes = _parse(y_true, ("boxes", "classes", "num_boxes"))
        boxes, scores, classes, num_detections = _parse(
            y_pred, ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
        )
        gt_boxes = tf.cast(gt_boxes, tf.float64)
        gt_classes = _class_ids(gt_classes, num_boxes, self.num_classes)
        gt_classes = tf.where(_negative_area(gt_boxes), -1, gt_classes)
        classes = _class_ids(classes, num_detections, self.num_classes)
        scores = tf.cast(scores, tf.float32)
        # Best first within each image, padding last; top_k keeps tied scores in their order.
        order = tf.argsort(tf.where(classes >= 0, scores, -np.inf), axis=1, direction="DESCENDING", stable=True)
        boxes, scores, classes = (tf.gather(x, order, batch_dims=1) for x in (tf.cast(boxes, tf.float64), scores, classes))
        classes = tf.where(_rank_within_class(classes) < self.max_detections, classes, -1)
        same_class = tf.equal(classes[:, :, None], gt_classes[:, None, :]) & (gt_classes[:, None, :] >= 0)
        ious = tf.where(same_class, _pairwise_iou(boxes, gt_boxes), -1.0)
        is_tp = _greedy_match(ious, tf.constant(self.iou_thresholds, tf.float64))
        kept = (classes >= 0) & ~_negative_area(boxes)
        self._store(tf.boolean_mask(classes, kept), tf.boolean_mask(scores, kept), tf.boolean_mask(is_tp, kept))
        gt_classes = tf.boolean_mask(gt_classes, gt_classes >= 0)
        self.num_groundtruth.assign_add(tf.math.unsorted_segment_sum(tf.ones_like(gt_classes), gt_classes, self.num_classes))

    def _store(self, classes, scores, is_tp):
        """Writes detections into this replica's share of the slots, dropping what does not fit."""
        context = tf.distribute.get_replica_context()
        if context is None:
            raise RuntimeError("MeanAveragePrecision.update_state must run in a replica context (inside strategy.run)")
        share = self.capacity // context.num_replicas_in_sync
        local = self.num_stored + tf.range(tf.shape(scores)[0])
        fits = local < share
        slots = (context.replica_id_in_sync_group * share + tf.boolean_mask(local, fits))[:, None]
        self.slot_class.assign(tf.tensor_scatter_nd_update(self.slot_class.value, slots, tf.boolean_mask(classes, fits) + 1))
        self.slot_score.assign(tf.tensor_scatter_nd_update(self.slot_score.value, slots, tf.boolean_mask(scores, fits)))
        self.slot_is_tp.assign(
            tf.tensor_scatter_nd_update(self.slot_is_tp.value, slots, tf.cast(tf.boolean_mask(is_tp, fits), tf.int8))
        )
        stored = tf.reduce_sum(tf.cast(fits, tf.int32))
        self.num_stored.assign_add(stored)
        self.num_dropped.assign_add(tf.size(fits) - stored)

    def _ranked_detections(self):
        """Stored classes ``[M]`` and flags ``[M, T]``, grouped by class, best score first."""
        used = self.slot_class.value > 0
        classes = tf.boolean_mask(self.slot_class.value, used) - 1
        scores = tf.boolean_mask(self.slot_score.value, used)
        is_tp = tf.cast(tf.boolean_mask(self.slot_is_tp.value, used), tf.int32)
        # Two stable sorts: by score, then by class; ties keep the order images arrived in.
        order = tf.argsort(scores, direction="DESCENDING", stable=True)
        order = tf.gather(order, tf.argsort(tf.gather(classes, order), stable=True))
        return tf.gather(classes, order), tf.gather(is_tp, order)

    def precision_at_recall(self) -> tf.Tensor:
        """``[C, T, 101]`` float64 interpolated precision at recall 0:0.01:1 (COCOeval's ``precision``).

        Returns:
            Per class, IoU threshold and recall point, the highest precision reached at that
            recall or beyond; 0 where the recall is not reached (also for classes without
            ground truth, which COCOeval marks -1 instead).
        """
        classes, is_tp = self._ranked_detections()
        c, t, r = self.num_classes, len(self.iou_thresholds), len(_RECALL_POINTS)
        # Cumulative counts within each class's run of the sorted list.
        tp_before = tf.cumsum(tf.math.unsorted_segment_sum(is_tp, classes, c), axis=0, exclusive=True)
        tp = tf.cast(tf.cumsum(is_tp, axis=0) - tf.gather(tp_before, classes), tf.float64)
        seen_before = tf.cumsum(tf.math.unsorted_segment_sum(tf.ones_like(classes), classes, c), exclusive=True)
        seen = tf.cast(tf.range(1, tf.size(classes) + 1) - tf.gather(seen_before, classes), tf.float64)[:, None]
        num_gt = tf.cast(tf.gather(self.num_groundtruth.value, classes), tf.float64)[:, None]
        recall = tf.math.divide_no_nan(tp, num_gt)
        precision = tp / ((seen - tp) + tp + _EPSILON)  # fp + tp + ε, in COCOeval's order
        # Each detection counts for the recall points at or below its recall: r of them.
        reached = tf.reshape(tf.searchsorted(_RECALL_POINTS[None, :], tf.reshape(recall, [1, -1]), side="right"), [-1, t])
        segment = (classes[:, None] * t + tf.range(t)[None, :]) * (r + 1) + reached
        best = tf.reshape(tf.math.unsorted_segment_max(precision, segment, c * t * (r + 1)), [c, t, r + 1])
        # Point j takes the best precision of detections that reach more than j points.
        from_the_end = tf.scan(tf.maximum, tf.reverse(tf.transpose(best, [2, 0, 1]), axis=[0]))
        return tf.maximum(tf.transpose(tf.reverse(from_the_end, axis=[0])[1:], [1, 2, 0]), 0.0)

    def class_average_precision(self) -> tf.Tensor:
        """AP of each class over the images seen, as COCOeval's per-class precision averages.

        Returns:
            ``[C]``: the mean of :meth:`precision_at_recall` over IoU thresholds and recall
            points; ``-1`` for a class without ground truth (COCOeval's marker).
        """
        ap = tf.reduce_mean(self.precision_at_recall(), axis=[1, 2])
        return tf.cast(tf.where(self.num_groundtruth.value > 0, ap, -1.0), self.dtype)

    def result(self):
        ap = self.class_average_precision()
        has_gt = self.num_groundtruth.value > 0
        total = tf.reduce_sum(tf.where(has_gt, ap, 0.0))
        count = tf.reduce_sum(tf.cast(has_gt, self.dtype))
        return tf.where(count > 0, tf.math.divide_no_nan(total, count), -1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "iou_thresholds": list(self.iou_thresholds),
            "max_detections": self.max_detections,
            "capacity": self.capacity,
        }
