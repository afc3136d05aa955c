"""Range search: Milvus semantics, exact for FLAT/BIN_FLAT, consistent for the others."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.errors import IndexParamError
from pelagos.index import RangeResult, exact_index
from tests.index.cases import ALL_CASES, build, search_params
from tests.index.conftest import Dataset
from tests.index.helpers import true_scores

SIMILARITIES = ("IP", "COSINE")


def _data(dataset: Dataset, metric: str) -> tuple[np.ndarray, np.ndarray]:
    return (dataset.xb, dataset.qb) if metric in ("HAMMING", "JACCARD") else (dataset.x, dataset.q)


def _bounds(truth: np.ndarray, metric: str) -> tuple[float, float]:
    """A radius around the 30th-best score and a range_filter around the 5th, from the data."""
    ordered = np.sort(-truth if metric in SIMILARITIES else truth, axis=1)
    outer, inner = float(np.median(ordered[:, 30])), float(np.median(ordered[:, 5]))
    if metric in SIMILARITIES:
        return -outer, -inner
    return outer, inner


def _check_exact(
    result: RangeResult, truth: np.ndarray, metric: str, radius: float, rf: float | None
) -> None:
    """Every row clearly inside the range is returned, nothing clearly outside is; scores are true."""
    tol = 1e-4 * max(1.0, abs(radius))
    if metric in SIMILARITIES:
        inside = truth > radius + tol
        outside = truth <= radius - tol
        if rf is not None:
            inside &= truth <= rf - tol
            outside |= truth > rf + tol
    else:
        inside = truth < radius - tol
        outside = truth >= radius + tol
        if rf is not None:
            inside &= truth >= rf + tol
            outside |= truth < rf - tol
    assert result.nq == len(truth)
    for i, (scores, ids) in enumerate(result):
        got = set(ids.tolist())
        assert set(np.flatnonzero(inside[i]).tolist()) <= got
        assert not (got & set(np.flatnonzero(outside[i]).tolist()))
        assert len(got) == len(ids)
        np.testing.assert_allclose(scores, truth[i, ids], rtol=1e-4, atol=1e-3)
        direction = -1.0 if metric in SIMILARITIES else 1.0
        assert (np.diff(direction * scores) >= 0).all()


@pytest.mark.parametrize("with_filter", [False, True])
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE", "HAMMING", "JACCARD"])
def test_flat_range_search_is_exact(dataset: Dataset, metric: str, with_filter: bool) -> None:
    binary = metric in ("HAMMING", "JACCARD")
    x, q = _data(dataset, metric)
    truth = true_scores(q, x, metric)
    radius, rf = _bounds(truth, metric)
    allowed = np.random.default_rng(9).random(len(x)) < 0.3 if with_filter else None
    masked = truth if allowed is None else np.where(allowed, truth, np.nan)
    flat = build("BIN_FLAT" if binary else "FLAT", metric, {}, x)
    oracle = exact_index(metric, x.shape[1] * (8 if binary else 1))
    oracle.build(x)
    for index in (flat, oracle):
        for range_filter in (None, rf):
            result = index.range_search(q, radius, range_filter, allowed=allowed)
            _check_exact(result, masked, metric, radius, range_filter)
            assert result.counts().sum() > 0


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
@pytest.mark.parametrize("index_type", ["BIN_FLAT", "BIN_IVF_FLAT"])
def test_binary_radius_boundaries(dataset: Dataset, index_type: str, metric: str) -> None:
    """Integer Hamming radius r keeps d < r (not d <= r); a fractional radius rounds correctly."""
    params = {"nlist": 64} if index_type == "BIN_IVF_FLAT" else {}
    index = build(index_type, metric, params, dataset.xb)
    full = search_params(index, {"nprobe": 64} if index_type == "BIN_IVF_FLAT" else {})
    truth = true_scores(dataset.qb, dataset.xb, metric)
    radii = (40.0, 40.5, 39.999) if metric == "HAMMING" else (0.4, 0.45)
    for radius in radii:
        result = index.range_search(dataset.qb, radius, None, full)
        expected = truth < radius
        for i, (_, ids) in enumerate(result):
            assert set(ids.tolist()) == set(np.flatnonzero(expected[i]).tolist())


@pytest.mark.parametrize(("index_type", "metric", "build_params", "search"), ALL_CASES)
def test_range_results_lie_in_range(
    dataset: Dataset, index_type: str, metric: str, build_params: dict[str, int], search: dict[str, int]
) -> None:
    x, q = _data(dataset, metric)
    truth = true_scores(q, x, metric)
    radius, rf = _bounds(truth, metric)
    index = build(index_type, metric, build_params, x)
    allowed = np.random.default_rng(2).random(len(x)) < 0.5
    result = index.range_search(q, radius, rf, search_params(index, search), allowed=allowed)
    assert result.counts().sum() > 0
    assert allowed[result.ids].all()
    if metric in SIMILARITIES:
        assert ((result.scores > radius) & (result.scores <= rf)).all()
    else:
        assert ((result.scores < radius) & (result.scores >= rf)).all()
    # top-k view of a range result is padded and best first
    scores, ids = result.topk(3)
    assert scores.shape == ids.shape == (len(q), 3)
    counts = result.counts()
    assert ((ids >= 0).sum(axis=1) == np.minimum(counts, 3)).all()


def test_range_filter_on_the_wrong_side_is_refused(dataset: Dataset) -> None:
    l2 = build("FLAT", "L2", {}, dataset.x)
    with pytest.raises(IndexParamError, match="less than radius"):
        l2.range_search(dataset.q, 10.0, 20.0)
    ip = build("FLAT", "IP", {}, dataset.x)
    with pytest.raises(IndexParamError, match="greater than radius"):
        ip.range_search(dataset.q, 10.0, 5.0)
