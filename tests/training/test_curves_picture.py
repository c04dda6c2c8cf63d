"""curves.png: one panel per logged quantity; a semi-supervised run's student curves join the teacher's panel."""

import numpy as np
import tensorflow as tf

from tfmodels.training.fit import _plot_curves


def _panels(history, path):
    _plot_curves(history, path)
    width = tf.io.decode_png(tf.io.read_file(str(path))).shape[1]
    return width / 400  # 4 inches at 100 dpi per panel


def test_student_curves_share_the_teachers_panel(tmp_path):
    curve = list(np.linspace(1, 0, 5))
    history = {"loss": curve, "accuracy": curve, "student_accuracy": curve, "mask_rate": curve,
               "val_loss": curve, "val_accuracy": curve, "val_student_accuracy": curve}
    assert _panels(history, tmp_path / "semi.png") == 3  # loss, accuracy (teacher + student), mask_rate


def test_a_metric_named_student_without_a_teacher_keeps_its_own_panel(tmp_path):
    curve = [1.0, 0.5]
    assert _panels({"loss": curve, "student_score": curve}, tmp_path / "plain.png") == 2
