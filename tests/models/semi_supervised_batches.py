"""A hand-made batch of semi-supervised training elements for the Mean Teacher and FixMatch tests."""

import tensorflow as tf


def hand_made_batch(rng, batch: int, mu: int, size: int = 4, classes: int = 3):
    """``(x, y)`` as the trainer hands them to a train step: B labelled images, B·μ weak and strong views."""
    x = {"labelled": rng.uniform(0, 3, (batch, size, size, 1)), "teacher_view": rng.uniform(0, 3, (batch, mu, size, size, 1)),
         "student_view": rng.uniform(0, 3, (batch, mu, size, size, 1))}
    y = {"label": rng.integers(0, classes, batch), "hidden_labels": rng.integers(0, classes, (batch, mu))}
    return {k: tf.constant(v, tf.float32) for k, v in x.items()}, {k: tf.constant(v, tf.int32) for k, v in y.items()}
