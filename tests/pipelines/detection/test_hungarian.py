"""Hungarian matching against scipy.optimize.linear_sum_assignment, a hand-proved optimum and DETR batches."""

import doctest

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment as scipy_assignment

from pipelines.detection import hungarian
from pipelines.detection.hungarian import batched_assignment, linear_sum_assignment

# One trace serves every size, as in a train step; the tests share it to stay fast.
solve = tf.function(linear_sum_assignment, input_signature=[tf.TensorSpec([None, None], tf.float64)])

SHAPES = [(1, 1), (1, 6), (6, 1), (2, 2), (4, 7), (7, 4), (10, 10), (17, 5), (5, 17), (25, 25), (30, 40), (40, 30)]


def assert_valid_assignment(rows, cols, shape):
    """min(N, M) pairs, rows strictly ascending, no column used twice, all indices in range."""
    assert rows.dtype == cols.dtype == np.int32
    assert len(rows) == len(cols) == min(shape)
    assert (np.diff(rows) > 0).all() and len(set(cols.tolist())) == len(cols)
    assert rows.min(initial=0) >= 0 and rows.max(initial=0) < max(shape[0], 1)
    assert cols.min(initial=0) >= 0 and cols.max(initial=0) < max(shape[1], 1)


def assert_equals_scipy(cost):
    rows, cols = (x.numpy() for x in solve(cost))
    want_rows, want_cols = scipy_assignment(cost)
    np.testing.assert_array_equal(rows, want_rows, err_msg=f"{cost.shape}")
    np.testing.assert_array_equal(cols, want_cols, err_msg=f"{cost.shape}")
    assert rows.dtype == cols.dtype == np.int32


def test_docstring_examples():
    result = doctest.testmod(hungarian)
    assert result.attempted >= 6 and result.failed == 0


def test_a_hand_worked_example_and_its_dual_certificate():
    cost = np.array([[9, 2, 7, 8], [6, 4, 3, 7], [5, 8, 1, 8], [7, 6, 9, 4]], np.float64)
    # By hand: subtract the row minima u = (2, 3, 1, 4), then the column minima v = (3, 0, 0, 0) of
    # what is left. The zeros of the reduced matrix hold the matching 0-1, 1-0, 2-2, 3-3 (row 2's
    # only zero is column 2, so row 1 takes column 0 and so on: the matching is unique). It costs
    # 2 + 6 + 1 + 4 = 13 = sum(u) + sum(v), and u_i + v_j <= cost_ij everywhere bounds every
    # matching from below by the same 13: it is the optimum.
    u, v = np.array([2, 3, 1, 4]), np.array([3, 0, 0, 0])
    assert (u[:, None] + v[None, :] <= cost).all() and u.sum() + v.sum() == 13
    rows, cols = (x.numpy() for x in solve(cost))
    np.testing.assert_array_equal(rows, [0, 1, 2, 3])
    np.testing.assert_array_equal(cols, [1, 0, 2, 3])
    assert cost[rows, cols].sum() == 13


def test_equals_scipy_on_random_square_wide_and_tall_matrices():
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        assert_equals_scipy(rng.uniform(0, 1, shape))


def test_negative_and_mixed_sign_costs():
    rng = np.random.default_rng(1)
    for shape in [(5, 5), (12, 7), (7, 12), (30, 40)]:
        assert_equals_scipy(rng.uniform(-100, 0, shape))
        assert_equals_scipy(rng.normal(0, 50, shape))


def test_integer_costs_with_many_ties_reach_scipys_total():
    # With ties several assignments are optimal and ours may differ from scipy's; the total may not.
    rng = np.random.default_rng(2)
    for _ in range(40):
        shape = tuple(int(n) for n in rng.integers(1, 16, 2))
        cost = rng.integers(-2, 3, shape).astype(np.float64)
        rows, cols = (x.numpy() for x in solve(cost))
        assert_valid_assignment(rows, cols, shape)
        want_rows, want_cols = scipy_assignment(cost)
        assert cost[rows, cols].sum() == cost[want_rows, want_cols].sum(), cost
    # all-equal costs: every matching is optimal, and the answer is still a valid one
    rows, cols = (x.numpy() for x in solve(np.ones((6, 9))))
    assert_valid_assignment(rows, cols, (6, 9))


def test_large_finite_costs_and_forbidden_pairs():
    rng = np.random.default_rng(3)
    assert_equals_scipy(rng.uniform(0, 1, (20, 25)) * 1e300)
    assert_equals_scipy(rng.uniform(0, 1, (20, 25)) * 1e307)
    # Ordinary costs next to "forbidden" ones: the largest float64 and DETR-style 1e9.
    cost = rng.uniform(0, 1, (20, 25))
    cost[:, :3] = np.finfo(np.float64).max
    cost[rng.uniform(size=cost.shape) < 0.3] = 1e9
    assert_equals_scipy(cost)
    rows, cols = (x.numpy() for x in solve(cost))
    assert (cols >= 3).all() and cost[rows, cols].max() < 1


def test_one_trace_serves_every_size_including_empty_ones():
    traced = tf.function(linear_sum_assignment, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    rng = np.random.default_rng(4)
    for shape in SHAPES[:6] + [(0, 3), (3, 0), (0, 0)]:
        cost = rng.uniform(0, 1, shape).astype(np.float32)
        rows, cols = (x.numpy() for x in traced(cost))
        want_rows, want_cols = scipy_assignment(cost.astype(np.float64))  # the same values
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(cols, want_cols)
        assert_valid_assignment(rows, cols, shape)
    assert traced.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_inf_or_nan_raise_a_clear_error_instead_of_hanging(bad):
    cost = np.ones((4, 5))
    cost[2, 3] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match="holds inf or NaN"):
        solve(cost)
    with pytest.raises(tf.errors.InvalidArgumentError, match="holds inf or NaN"):
        linear_sum_assignment(cost.T)


def scipy_matches(cost, num_targets):
    """Per image: scipy on the real columns, written out as the target of every query (-1: none)."""
    matched = np.full(cost.shape[:2], -1)
    for b, count in enumerate(num_targets):
        rows, cols = scipy_assignment(cost[b, :, :count])
        matched[b, rows] = cols
    return matched


def test_batched_matches_each_image_and_ignores_padding_columns():
    batched = tf.function(
        batched_assignment,
        input_signature=[tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None], tf.int32)],
    )
    rng = np.random.default_rng(5)
    cost = rng.uniform(0, 5, (5, 8, 5)).astype(np.float32)
    num_targets = np.array([5, 2, 0, 3, 1], np.int32)
    want = scipy_matches(cost.astype(np.float64), num_targets)
    # Padding that would win every match, or poison the solver, if it were read.
    cost[1, :, 2:] = -1e9
    cost[3, :, 3:] = np.nan
    got = batched(cost, num_targets).numpy()
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int32 and (got[2] == -1).all()  # the image without targets matches nothing
    for b, count in enumerate(num_targets):  # every target gets exactly one query
        assert sorted(got[b][got[b] >= 0].tolist()) == list(range(count))

    # Fewer queries than targets: every query is matched and some targets are left over.
    cost = rng.uniform(0, 5, (2, 3, 6)).astype(np.float32)
    num_targets = np.array([6, 3], np.int32)
    got = batched(cost, num_targets).numpy()
    np.testing.assert_array_equal(got, scipy_matches(cost.astype(np.float64), num_targets))
    assert (got >= 0).all()
    assert batched.experimental_get_tracing_count() == 1

    with pytest.raises(tf.errors.InvalidArgumentError, match="num_targets must lie between 0"):
        batched(cost, np.array([7, 3], np.int32))


def test_a_detr_style_loss_trains_through_the_matched_pairs():
    """The matching is discrete: the gradient reaches the cost of the matched pairs only."""
    logits = tf.Variable(np.random.default_rng(6).normal(size=(3, 6, 4)).astype(np.float32))
    num_targets = tf.constant([4, 0, 2])

    @tf.function
    def loss_and_grad():
        with tf.GradientTape() as tape:
            cost = tf.nn.softplus(logits)
            matched = batched_assignment(cost, num_targets)
            picked = tf.gather(cost, tf.maximum(matched, 0), axis=2, batch_dims=2)
            loss = tf.reduce_sum(tf.where(matched >= 0, picked, 0.0))
        return loss, matched, tape.gradient(loss, logits)

    loss, matched, grad = (x.numpy() for x in loss_and_grad())
    cost = tf.nn.softplus(logits).numpy()
    is_matched = np.zeros(cost.shape, bool)
    for b, q in zip(*np.nonzero(matched >= 0)):
        is_matched[b, q, matched[b, q]] = True
    np.testing.assert_allclose(loss, cost[is_matched].sum(), rtol=1e-6)
    np.testing.assert_array_equal(grad != 0, is_matched)
    np.testing.assert_array_equal(matched, scipy_matches(cost.astype(np.float64), [4, 0, 2]))
