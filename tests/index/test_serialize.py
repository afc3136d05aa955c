"""serialize / load_index round-trips to an index that answers identically."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.errors import IndexParamError, InvalidArgumentError
from pelagos.index import IndexSpec, create_index, exact_index, load_index
from tests.index.cases import ALL_CASES, build, search_params
from tests.index.conftest import Dataset
from tests.index.helpers import K


def _data(dataset: Dataset, metric: str) -> tuple[np.ndarray, np.ndarray]:
    return (dataset.xb, dataset.qb) if metric in ("HAMMING", "JACCARD") else (dataset.x, dataset.q)


@pytest.mark.parametrize(("index_type", "metric", "build_params", "search"), ALL_CASES)
def test_round_trip_gives_identical_results(
    dataset: Dataset, index_type: str, metric: str, build_params: dict[str, int], search: dict[str, int]
) -> None:
    x, q = _data(dataset, metric)
    index = build(index_type, metric, build_params, x)
    loaded = load_index(index.spec, index.serialize())
    assert loaded.count == index.count and loaded.spec == index.spec
    assert dict(loaded.info) == dict(index.info)
    params = search_params(index, search)
    allowed = np.random.default_rng(1).random(len(x)) < 0.3
    for kwargs in ({}, {"allowed": allowed}):
        a, b = index.search(q, K, params, **kwargs), loaded.search(q, K, params, **kwargs)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
    radius = float(np.median(index.search(q, 20, params)[0][:, -1]))
    ra, rb = index.range_search(q, radius, None, params), loaded.range_search(q, radius, None, params)
    np.testing.assert_array_equal(ra.lims, rb.lims)
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_array_equal(ra.scores, rb.scores)
    # and the loaded copy serializes to the same bytes
    assert loaded.serialize() == index.serialize()


@pytest.mark.parametrize("metric", ["L2", "COSINE", "HAMMING", "JACCARD"])
def test_brute_force_round_trip(dataset: Dataset, metric: str) -> None:
    x, q = _data(dataset, metric)
    index = exact_index(metric, x.shape[1] * (8 if x.dtype == np.uint8 else 1))
    index.build(x[:1000])
    index.add(x[1000:1500])
    loaded = load_index(index.spec, index.serialize())
    assert loaded.count == 1500
    np.testing.assert_array_equal(index.search(q, K)[1], loaded.search(q, K)[1])


def test_load_refuses_another_spec_or_garbage(dataset: Dataset) -> None:
    index = build("IVF_FLAT", "L2", {"nlist": 64}, dataset.x)
    data = index.serialize()
    other = IndexSpec.parse("IVF_FLAT", "IP", {"nlist": 64}, 32, False)
    with pytest.raises(IndexParamError, match="rebuild"):
        load_index(other, data)
    with pytest.raises(InvalidArgumentError, match="bad magic"):
        load_index(index.spec, b"not an index at all")
    with pytest.raises(InvalidArgumentError, match="truncated"):
        load_index(index.spec, data[:-10])


def test_empty_index_round_trips(dataset: Dataset) -> None:
    for t, binary in (("HNSW", False), ("IVF_PQ", False), ("BIN_IVF_FLAT", True)):
        spec = IndexSpec.parse(t, None, {}, 128 if binary else 32, binary)
        index = create_index(spec)
        index.build(np.empty((0, 16), np.uint8) if binary else np.empty((0, 32), np.float32))
        loaded = load_index(spec, index.serialize())
        assert loaded.count == 0
        q = dataset.qb[:2] if binary else dataset.q[:2]
        scores, ids = loaded.search(q, 5)
        assert (ids == -1).all() and not np.isfinite(scores).any()
        assert loaded.range_search(q, 1.0).counts().sum() == 0
