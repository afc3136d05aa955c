"""BruteForceIndex, the oracle and the growing-segment search: checked against naive float64 scores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pelagos.errors import InvalidArgumentError
from pelagos.index import BruteForceIndex, IndexType, exact_index
from pelagos.index import exact as exact_module
from tests.index.cases import build, search_params
from tests.index.conftest import Dataset
from tests.index.helpers import K, true_scores


def _data(dataset: Dataset, metric: str) -> tuple[np.ndarray, np.ndarray]:
    return (dataset.xb, dataset.qb) if metric in ("HAMMING", "JACCARD") else (dataset.x, dataset.q)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE", "HAMMING", "JACCARD"])
def test_growing_appends_match_one_build(dataset: Dataset, metric: str) -> None:
    x, q = _data(dataset, metric)
    dim = x.shape[1] * (8 if x.dtype == np.uint8 else 1)
    growing = BruteForceIndex(metric, dim)
    for lo in range(0, len(x), 1700):
        growing.add(x[lo : lo + 1700])
    whole = exact_index(metric, dim)
    whole.build(x)
    assert growing.count == whole.count == len(x)
    assert growing.spec.index_type in (IndexType.FLAT, IndexType.BIN_FLAT)
    np.testing.assert_array_equal(growing.search(q, K)[1], whole.search(q, K)[1])
    truth = true_scores(q, x, metric)
    scores, ids = growing.search(q, K)
    np.testing.assert_allclose(scores, np.take_along_axis(truth, ids, axis=1), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("metric", ["L2", "JACCARD"])
def test_blocked_scan_equals_one_block(
    dataset: Dataset, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny blocks (many merges, many query chunks) give the same answer as one big block."""
    x, q = _data(dataset, metric)
    dim = x.shape[1] * (8 if x.dtype == np.uint8 else 1)
    index = exact_index(metric, dim)
    index.build(x)
    allowed = np.random.default_rng(0).random(len(x)) < 0.7  # the masking (not gathering) path
    big = index.search(q, K), index.search(q, K, allowed=allowed)
    monkeypatch.setattr(exact_module, "BLOCK_SCORES", 1)
    monkeypatch.setattr(exact_module, "QUERY_CHUNK", 7)
    small = index.search(q, K), index.search(q, K, allowed=allowed)
    for b, s in zip(big, small, strict=True):  # GEMM blocking changes float32 rounding only
        np.testing.assert_allclose(b[0], s[0], rtol=1e-5)
    assert allowed[small[1][1]].all()
    truth = np.where(allowed, true_scores(q, x, metric), np.inf)
    np.testing.assert_allclose(small[1][0], np.sort(truth, axis=1)[:, :K], rtol=1e-4, atol=1e-3)


def test_cosine_of_a_zero_vector_is_zero() -> None:
    index = exact_index("COSINE", 3)
    index.build(np.array([[0, 0, 0], [1, 0, 0]], np.float32))
    scores, ids = index.search(np.array([[1, 0, 0]], np.float32), 2)
    assert ids.tolist() == [[1, 0]] and scores.tolist() == [[1.0, 0.0]]


def test_jaccard_of_two_empty_codes_is_zero() -> None:
    index = exact_index("JACCARD", 16)
    index.build(np.array([[0, 0], [255, 0]], np.uint8))
    scores, ids = index.search(np.array([[0, 0]], np.uint8), 2)
    assert ids.tolist() == [[0, 1]] and scores.tolist() == [[0.0, 1.0]]


def test_wrong_input_shapes_are_refused(dataset: Dataset) -> None:
    index = exact_index("L2", 32)
    with pytest.raises(InvalidArgumentError, match="rows of 32 floats"):
        index.build(dataset.x[:, :16])
    index.build(dataset.x)
    with pytest.raises(InvalidArgumentError, match="NaN"):
        index.search(np.full((1, 32), np.nan, np.float32), K)
    with pytest.raises(InvalidArgumentError, match="k"):
        index.search(dataset.q, 0)
    binary = exact_index("HAMMING", 128)
    with pytest.raises(InvalidArgumentError, match="packed uint8"):
        binary.build(dataset.x[:, :16])
    # a single vector is one query
    assert index.search(dataset.q[0], K)[1].shape == (1, K)


@pytest.mark.parametrize(
    ("index_type", "metric"), [("HNSW", "L2"), ("IVF_FLAT", "COSINE"), ("BIN_IVF_FLAT", "JACCARD")]
)
def test_concurrent_searches_agree_with_sequential(dataset: Dataset, index_type: str, metric: str) -> None:
    x, q = _data(dataset, metric)
    params = {"HNSW": ({"M": 16, "efConstruction": 100}, {"ef": 32})}.get(
        index_type, ({"nlist": 64}, {"nprobe": 8})
    )
    index = build(index_type, metric, params[0], x)
    sp = search_params(index, params[1])
    allowed = np.random.default_rng(4).random(len(x)) < 0.5
    jobs = [(q[i : i + 1], None if i % 2 else allowed) for i in range(len(q))]
    sequential = [index.search(qq, K, sp, allowed=a)[1] for qq, a in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda job: index.search(job[0], K, sp, allowed=job[1])[1], jobs))
    for a, b in zip(sequential, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    # one call for a batch equals the single-query calls
    np.testing.assert_array_equal(np.concatenate(sequential[1::2]), index.search(q[1::2], K, sp)[1])


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_single_queries_equal_one_batch(dataset: Dataset, metric: str) -> None:
    index = exact_index(metric, 128)
    index.build(dataset.xb)
    batch = index.search(dataset.qb, K)
    for i in range(0, len(dataset.qb), 5):
        single = index.search(dataset.qb[i : i + 1], K)
        np.testing.assert_array_equal(single[0][0], batch[0][i])
        np.testing.assert_array_equal(single[1][0], batch[1][i])
    truth = true_scores(dataset.qb[:3], dataset.xb, metric)
    radius = 0.45 if metric == "JACCARD" else 40.0
    result = index.range_search(dataset.qb[:3], radius)
    for i, (_, ids) in enumerate(result):
        assert set(ids.tolist()) == set(np.flatnonzero(truth[i] < radius).tolist())
