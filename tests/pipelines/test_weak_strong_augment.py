"""Weak and strong views: seeded, independent per stream, and of the paper's strength."""

import numpy as np
import pytest
import tensorflow as tf

from pipelines.weak_strong_augment import SHIFT, semi_supervised_views


def _digit_like(count):
    """Bright squares well inside a black 28² canvas (a shift cannot push them out)."""
    images = np.zeros([count, 28, 28, 1], np.float32)
    for i in range(count):
        images[i, 9 + i % 3 : 17 + i % 3, 10:18] = 200.0
    return images


ELEMENT = {"labelled": tf.constant(_digit_like(1)[0]), "unlabelled": tf.constant(_digit_like(4))}


def _views(strong, seed):
    out, y = semi_supervised_views(strong=strong)(tf.constant(seed, tf.int64), ELEMENT, "label")
    assert y == "label"
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("strong", [False, True])
def test_views_are_seeded(strong):
    first, again, other = _views(strong, [1, 5]), _views(strong, [1, 5]), _views(strong, [1, 6])
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert first[key].min() >= 0 and first[key].max() <= 255
    assert any(not np.array_equal(first[k], other[k]) for k in first)


def _centre_of_mass(images):
    rows, cols = np.arange(28)[:, None], np.arange(28)[None, :]
    mass = images[..., 0].sum(axis=(1, 2))
    return np.stack([(images[..., 0] * rows).sum(axis=(1, 2)) / mass, (images[..., 0] * cols).sum(axis=(1, 2)) / mass], -1)


def test_weak_views_shift_by_at_most_an_eighth_and_keep_the_image():
    views = _views(False, [2, 3])
    original = ELEMENT["unlabelled"].numpy()
    for key in ("teacher_view", "student_view"):
        moved = np.abs(_centre_of_mass(views[key]) - _centre_of_mass(original))
        assert moved.max() <= SHIFT * 28 + 1e-3
        np.testing.assert_allclose(views[key].sum(axis=(1, 2, 3)), original.sum(axis=(1, 2, 3)), rtol=1e-3)
    # Mean Teacher: student and teacher get different noise
    assert not np.array_equal(views["teacher_view"], views["student_view"])


def test_strong_views_are_the_weak_student_views_then_randaugment_and_cutout_on_every_image():
    weak, strong = _views(False, [4, 4]), _views(True, [4, 4])
    for key in ("labelled", "teacher_view"):  # the same streams: only the student's view is strong
        np.testing.assert_array_equal(weak[key], strong[key])
    change = np.abs(strong["student_view"] - weak["student_view"]).mean(axis=(1, 2, 3))
    assert (change > 0).all()  # each image gets its own RandAugment draw and Cutout
    weak_change = np.abs(weak["student_view"] - ELEMENT["unlabelled"].numpy()).mean()
    assert np.abs(strong["student_view"] - ELEMENT["unlabelled"].numpy()).mean() > weak_change


def test_one_randaugment_draw_per_element_is_seeded_and_still_changes_every_image():
    def views(seed):
        out, _ = semi_supervised_views(strong=True, per_image=False)(tf.constant(seed, tf.int64), ELEMENT, "label")
        return {k: v.numpy() for k, v in out.items()}

    first, again, other = views([2, 3]), views([2, 3]), views([2, 4])
    np.testing.assert_array_equal(first["student_view"], again["student_view"])
    assert not np.array_equal(first["student_view"], other["student_view"])
    weak = _views(False, [2, 3])
    np.testing.assert_array_equal(first["teacher_view"], weak["teacher_view"])  # only the student's view is strong
    assert (np.abs(first["student_view"] - weak["student_view"]).mean(axis=(1, 2, 3)) > 0).all()
