"""The dense top-k kernel: faiss's heap selection on finite float32 scores, numpy's otherwise, same answers."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.index.kinds import MetricType
from pelagos.index.results import topk_from_matrix


@pytest.mark.parametrize("metric", [MetricType.L2, MetricType.IP])
def test_heap_path_matches_the_numpy_path(metric: MetricType) -> None:
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((37, 5_000)).astype(np.float32)
    scores[:, 100:140] = scores[:, 7:8]  # ties with column 7 (the numpy path breaks them by column too)
    row_ids = np.arange(5_000, dtype=np.int64) * 3 + 11
    fast = topk_from_matrix(scores, 10, metric, row_ids=row_ids)
    slow = topk_from_matrix(scores.astype(np.float64), 10, metric, row_ids=row_ids)  # float64: numpy path
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_array_equal(fast[0], slow[0].astype(np.float32))
    best = scores.max(axis=1) if metric.larger_is_better else scores.min(axis=1)
    np.testing.assert_array_equal(fast[0][:, 0], best)


def test_ties_go_to_the_smaller_column_and_rows_come_sorted() -> None:
    scores = np.array([[3.0, 1.0, 2.0, 1.0, 1.0, 0.5]], dtype=np.float32)
    got_scores, got_ids = topk_from_matrix(scores, 3, MetricType.L2)
    assert got_ids.tolist() == [[5, 1, 3]] and got_scores.tolist() == [[0.5, 1.0, 1.0]]
    got_scores, got_ids = topk_from_matrix(scores, 2, MetricType.IP)
    assert got_ids.tolist() == [[0, 2]] and got_scores.tolist() == [[3.0, 2.0]]


def test_fewer_columns_than_k_are_padded() -> None:
    scores = np.array([[2.0, 1.0]], dtype=np.float32)
    got_scores, got_ids = topk_from_matrix(scores, 4, MetricType.L2)
    assert got_ids.tolist() == [[1, 0, -1, -1]]
    assert got_scores[0, :2].tolist() == [1.0, 2.0] and np.isinf(got_scores[0, 2:]).all()


def test_non_finite_scores_are_never_returned_as_hits() -> None:
    scores = np.array([[np.nan, 2.0, np.inf, 1.0], [np.nan, np.nan, np.nan, 4.0]], dtype=np.float32)
    got_scores, got_ids = topk_from_matrix(scores, 3, MetricType.L2)
    assert got_ids.tolist() == [[3, 1, -1], [3, -1, -1]]
    assert got_scores[0, :2].tolist() == [1.0, 2.0] and got_scores[1, 0] == 4.0
    ip_scores, ip_ids = topk_from_matrix(np.array([[np.inf, 0.5, -1.0]], dtype=np.float32), 2, MetricType.IP)
    assert ip_ids.tolist() == [[1, 2]] and ip_scores.tolist() == [[0.5, -1.0]]
