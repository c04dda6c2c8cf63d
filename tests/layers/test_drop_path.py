"""Stochastic depth on residual branches (Huang et al. 2016), Swin's regulariser (paper §4.1)."""

import numpy as np
import pytest

from tfmodels.layers.drop_path import DropPath


def test_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(4, 3, 5)).astype("float32")
    np.testing.assert_array_equal(DropPath(0.3)(x), x)
    np.testing.assert_array_equal(DropPath(0.3)(x, training=False), x)


def test_whole_samples_are_dropped_or_rescaled():
    x = np.ones((4000, 2, 3), "float32")
    out = DropPath(0.25, seed=1)(x, training=True).numpy()
    per_sample = out.reshape(4000, -1)
    assert np.all(per_sample.min(-1) == per_sample.max(-1))  # one decision per sample
    kept = per_sample[:, 0] != 0
    np.testing.assert_allclose(per_sample[kept, 0], 1 / 0.75, rtol=1e-6)  # kept ones scaled by 1/(1 − p)
    assert abs(np.mean(~kept) - 0.25) < 0.03  # binomial std ≈ 0.007
    assert abs(out.mean() - 1.0) < 0.05  # the expectation is kept


def test_seeded_layers_repeat_and_config_round_trips():
    x = np.ones((64, 4), "float32")
    a = DropPath(0.5, seed=7)(x, training=True)
    b = DropPath(0.5, seed=7)(x, training=True)
    np.testing.assert_array_equal(a, b)
    layer = DropPath(0.2, seed=3)
    assert DropPath.from_config(layer.get_config()).get_config() == layer.get_config()


def test_rate_must_be_a_probability_below_one():
    with pytest.raises(ValueError, match="rate"):
        DropPath(1.0)
