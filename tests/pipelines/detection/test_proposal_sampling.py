"""Anchor / proposal labelling by IoU and the balanced random sample of two-stage detectors."""

import doctest

import numpy as np
import tensorflow as tf

from pipelines.detection import proposal_sampling
from pipelines.detection.proposal_sampling import balanced_sample, label_by_iou


def test_doctests():
    assert doctest.testmod(proposal_sampling).failed == 0


def test_labels_follow_the_faster_rcnn_thresholds_and_best_match_rule():
    # 4 anchors x 2 boxes (the second box is padding in image 0).
    iou = tf.constant([[[0.75, 0.9], [0.5, 0.0], [0.2, 0.95], [0.29, 0.0]]])
    labels = label_by_iou(iou, tf.constant([[True, False]]), 0.7, 0.3)
    assert labels["positive"].numpy().tolist() == [[True, False, False, False]]
    assert labels["negative"].numpy().tolist() == [[False, False, True, True]]  # 0.5 is ignored
    assert labels["matched"].numpy().tolist()[0][0] == 0  # the padding box never matches

    # A small box whose best anchor reaches only 0.4 still gets that anchor (best_match).
    iou = tf.constant([[[0.8, 0.1], [0.1, 0.4], [0.0, 0.2]]])
    labels = label_by_iou(iou, tf.constant([[True, True]]), 0.7, 0.3, best_match=True)
    assert labels["positive"].numpy().tolist() == [[True, True, False]]
    assert labels["matched"].numpy().tolist() == [[0, 1, 1]]
    assert labels["negative"].numpy().tolist() == [[False, False, True]]


def test_an_image_without_boxes_has_only_negatives():
    labels = label_by_iou(tf.zeros([1, 3, 2]), tf.constant([[False, False]]), 0.7, 0.3, best_match=True)
    assert not labels["positive"].numpy().any() and labels["negative"].numpy().all()


def test_balanced_sample_caps_positives_fills_with_negatives_and_pads():
    rng = np.random.default_rng(0)
    positive = rng.uniform(size=(3, 200)) < 0.3
    negative = ~positive & (rng.uniform(size=(3, 200)) < 0.8)
    positive[2, :] = False  # image 2: negatives only
    negative[1, 20:] = False  # image 1: few negatives, so filler rows
    sample = {k: v.numpy() for k, v in balanced_sample(tf.constant(positive), tf.constant(negative), 64, 0.25,
                                                       tf.constant([3, 4])).items()}
    for b in range(3):
        drawn = sample["indices"][b][sample["weights"][b] == 1]
        assert len(set(drawn.tolist())) == len(drawn)  # no candidate twice
        assert (positive[b, drawn] == sample["positive"][b][sample["weights"][b] == 1]).all()
        assert (positive[b, drawn] | negative[b, drawn]).all()
        num_positive = min(positive[b].sum(), 16)
        assert sample["positive"][b].sum() == num_positive
        assert sample["weights"][b].sum() == min(64, num_positive + negative[b].sum())


def test_balanced_sample_is_uniform_over_positives_and_seeded():
    positive = tf.constant([[True] * 10 + [False] * 10])
    negative = ~positive
    counts = np.zeros(10)
    for step in range(300):
        sample = balanced_sample(positive, negative, 4, 0.5, tf.constant([0, step]))
        counts[sample["indices"].numpy()[0][sample["positive"].numpy()[0]]] += 1
    # Each positive is drawn with probability 2/10: 60 of 300 on average (sd about 7).
    assert counts.min() > 35 and counts.max() < 85
    again = balanced_sample(positive, negative, 4, 0.5, tf.constant([0, 7]))["indices"]
    first = balanced_sample(positive, negative, 4, 0.5, tf.constant([0, 7]))["indices"]
    np.testing.assert_array_equal(again, first)
