"""Optimal one-to-one matching of a cost matrix (the Hungarian method), for DETR's set loss.

DETR (Carion et al. 2020, §3.1, paper default) matches its N predictions to the M ground-truth
objects of an image with the permutation of least total cost, found by the Hungarian algorithm,
then computes the loss on the matched pairs. :func:`linear_sum_assignment` solves that assignment
problem exactly for a rectangular matrix and returns what ``scipy.optimize.linear_sum_assignment``
returns; :func:`batched_assignment` matches every image of a padded batch.

The solver is the O(n^2 m) shortest-augmenting-path form of the Hungarian method with row and
column potentials (Jonker-Volgenant; the e-maxx formulation): rows are added one at a time, and
each addition grows a Dijkstra-like tree over reduced costs until it reaches a free column, then
flips the matching along the path. It is written with core TensorFlow ops in ``tf.while_loop``s,
so it runs inside a ``tf.function`` train step with unknown N and M and in a served graph.
"""

from __future__ import annotations

import tensorflow as tf


def linear_sum_assignment(cost: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The assignment of rows to columns with the least total cost, like scipy's.

    Every row is matched to at most one column and every column to at most one row, and
    ``min(N, M)`` pairs are made; among those matchings the one with the smallest sum of
    ``cost[row, col]`` is returned. Where several matchings tie, any one of them may come back
    (not necessarily scipy's), the same one on every run and device.

    Args:
        cost: ``[N, M]`` cost matrix, any real dtype; N and M may be unknown and either may be 0.
            Must be finite: a pair that must not be matched takes a large finite cost (an inf
            or NaN entry raises ``InvalidArgumentError``).

    Returns:
        ``(row_indices, col_indices)``, int32 ``[min(N, M)]`` each: pair k is
        ``(row_indices[k], col_indices[k])``, rows in ascending order.

    Example:
        >>> cost = tf.constant([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
        >>> rows, cols = linear_sum_assignment(cost)
        >>> rows.numpy().tolist(), cols.numpy().tolist()  # 1 + 2 + 2 = 5; greedy's 0 first gives 6
        ([0, 1, 2], [1, 0, 2])
        >>> [x.numpy().tolist() for x in linear_sum_assignment(tf.constant([[5, 9], [1, 3], [7, 2]]))]
        [[1, 2], [0, 1]]
    """
    # The matching is a discrete choice: no gradient flows through it, so the tape skips the loops.
    cost = tf.cast(tf.stop_gradient(cost), tf.float64)
    # inf and NaN corrupt the slacks (a silently wrong matching, or no column left to grow to).
    cost = tf.debugging.assert_all_finite(
        cost, "linear_sum_assignment: the cost matrix holds inf or NaN; give forbidden pairs a large finite cost"
    )
    # The solver needs rows <= columns (every row is matched); a tall matrix is solved transposed.
    transposed = tf.shape(cost)[0] > tf.shape(cost)[1]
    work = tf.transpose(cost, tf.where(transposed, [1, 0], [0, 1]))
    row_of_col = _match_rows(work)  # [M'], -1 where the column stays free
    matched_cols = tf.cast(tf.where(row_of_col >= 0)[:, 0], tf.int32)
    matched_rows = tf.gather(row_of_col, matched_cols)
    rows = tf.where(transposed, matched_cols, matched_rows)
    cols = tf.where(transposed, matched_rows, matched_cols)
    order = tf.argsort(rows, stable=True)
    return tf.gather(rows, order), tf.gather(cols, order)


def batched_assignment(cost: tf.Tensor, num_targets: tf.Tensor) -> tf.Tensor:
    """DETR's matching for a padded batch: the ground-truth object of every query, -1 for none.

    Image b keeps the first ``num_targets[b]`` columns of ``cost[b]`` (the rest is padding and
    may hold anything, even NaN) and is matched by :func:`linear_sum_assignment`. With at least
    as many queries as objects (DETR's case), every object gets exactly one query and the other
    queries are left unmatched ("no object"); an image without objects matches nothing.

    Args:
        cost: ``[B, Q, G]`` matching cost of Q queries (predictions) against G padded targets.
        num_targets: int ``[B]``: the real targets of each image, ``0 <= num_targets[b] <= G``.

    Returns:
        int32 ``[B, Q]``: the index in ``[0, num_targets[b])`` of the target matched to each
        query, or -1.

    Example:
        >>> cost = tf.constant([[[0.9, 0.1, 7.0], [0.2, 0.8, 7.0], [0.3, 0.3, 7.0]]] * 2)
        >>> batched_assignment(cost, tf.constant([2, 0])).numpy().tolist()  # 0.1 + 0.2; column 2 is padding
        [[1, 0, -1], [-1, -1, -1]]
    """
    cost = tf.convert_to_tensor(cost)
    num_targets = tf.cast(num_targets, tf.int32)
    num_queries = tf.shape(cost)[1]
    # A count outside [0, G] would slice silently to another number of targets than the caller has.
    message = "batched_assignment: num_targets must lie between 0 and the padded number of targets"
    tf.debugging.assert_non_negative(num_targets, message)
    tf.debugging.assert_less_equal(num_targets, tf.shape(cost)[2], message)

    def match_image(image):
        image_cost, count = image
        rows, cols = linear_sum_assignment(image_cost[:, :count])
        # A query is matched at most once: the sum picks its target, 0 (-> -1) when it has none.
        is_row = tf.equal(tf.range(num_queries)[:, None], rows[None, :])  # [Q, min(Q, count)]
        return tf.reduce_sum(tf.where(is_row, cols[None, :] + 1, 0), axis=1) - 1

    return tf.map_fn(match_image, (cost, num_targets), fn_output_signature=tf.TensorSpec([None], tf.int32))


def _match_rows(cost: tf.Tensor) -> tf.Tensor:
    """The optimal matching of float64 ``cost`` [n, m], n <= m: each column's row, -1 if free.

    e-maxx's indexing: row and column 0 are virtual (a zero row and column are padded in front),
    ``row_of[j]`` is the 1-based row matched to column j (0: free), and column 0 holds the row
    being added, the root of the search tree.
    """
    num_rows, num_cols = tf.shape(cost)[0], tf.shape(cost)[1]
    cost = tf.pad(cost, [[1, 0], [1, 0]])
    rows, cols = tf.range(num_rows + 1), tf.range(num_cols + 1)
    inf = tf.constant(float("inf"), tf.float64)

    def add_row(i, row_potential, col_potential, row_of):
        row_of = tf.where(cols == 0, i, row_of)  # row i is the root, held by the virtual column

        def grow(col, used, in_tree, min_slack, way, row_potential, col_potential):
            # Column `col` joins the tree with its row; relax the slacks of the other columns.
            used = used | (cols == col)
            row = row_of[col]
            in_tree = in_tree | (rows == row)
            slack = cost[row] - row_potential[row] - col_potential
            better = ~used & (slack < min_slack)
            min_slack = tf.where(better, slack, min_slack)
            way = tf.where(better, col, way)
            # The closest column outside the tree is next; the lowest index on ties, on every device.
            outside = tf.where(used, inf, min_slack)
            delta = tf.reduce_min(outside)
            next_col = tf.reduce_min(tf.where(outside == delta, cols, num_cols + 1))
            # Shift the potentials by delta: tree edges stay tight, the next column's edge becomes tight.
            row_potential += tf.where(in_tree, delta, 0.0)
            col_potential -= tf.where(used, delta, 0.0)
            min_slack = tf.where(used, min_slack, min_slack - delta)
            return next_col, used, in_tree, min_slack, way, row_potential, col_potential

        # Grow until the tree reaches a free column: at most m steps, each adds one column.
        col, _, _, _, way, row_potential, col_potential = tf.while_loop(
            lambda col, *_: row_of[col] != 0,
            grow,
            (
                tf.constant(0),
                tf.zeros([num_cols + 1], tf.bool),
                tf.zeros([num_rows + 1], tf.bool),
                tf.fill([num_cols + 1], inf),
                tf.zeros([num_cols + 1], tf.int32),
                row_potential,
                col_potential,
            ),
        )

        def flip(col, row_of):
            # Each column on the path back to the root takes the row of the column before it.
            previous = way[col]
            return previous, tf.where(cols == col, row_of[previous], row_of)

        _, row_of = tf.while_loop(lambda col, _: col != 0, flip, (col, row_of))
        return i + 1, row_potential, col_potential, row_of

    row_potential, col_potential = tf.zeros([num_rows + 1], tf.float64), tf.zeros([num_cols + 1], tf.float64)
    _, _, _, row_of = tf.while_loop(
        lambda i, *_: i <= num_rows, add_row, (tf.constant(1), row_potential, col_potential, tf.zeros_like(cols))
    )
    return row_of[1:] - 1
