"""serialize / load_index round-trips to an index that answers identically."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from pelagos.errors import IndexParamError, InvalidArgumentError
from pelagos.index import IndexSpec, create_index, exact_index, load_index, load_index_file, save_index
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


@pytest.mark.parametrize(("index_type", "metric", "build_params", "search"), ALL_CASES)
def test_file_round_trip_gives_identical_results(
    dataset: Dataset,
    index_type: str,
    metric: str,
    build_params: dict[str, int],
    search: dict[str, int],
    tmp_path: Path,
) -> None:
    x, q = _data(dataset, metric)
    index = build(index_type, metric, build_params, x)
    path = tmp_path / "index"
    size = save_index(index, path)
    assert size == path.stat().st_size
    for loaded in (load_index_file(index.spec, path), load_index(index.spec, path.read_bytes())):
        assert loaded.count == index.count and dict(loaded.info) == dict(index.info)
        params = search_params(index, search)
        a, b = index.search(q, K, params), loaded.search(q, K, params)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])


def test_a_truncated_or_foreign_file_is_refused(tmp_path: Path) -> None:
    spec = IndexSpec.parse("HNSW", "L2", {"M": 8, "efConstruction": 32}, 8, False)
    index = create_index(spec)
    index.build(np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32))
    path = tmp_path / "index"
    save_index(index, path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(InvalidArgumentError, match="truncated"):
        load_index_file(spec, path)
    path.write_bytes(b"not an index at all")
    with pytest.raises(InvalidArgumentError, match="bad magic"):
        load_index_file(spec, path)


def test_an_empty_index_saves_and_loads(tmp_path: Path) -> None:
    spec = IndexSpec.parse("HNSW", "L2", {"M": 8, "efConstruction": 32}, 8, False)
    index = create_index(spec)
    index.build(np.zeros((0, 8), np.float32))
    save_index(index, tmp_path / "i")
    loaded = load_index_file(spec, tmp_path / "i")
    assert loaded.count == 0 and loaded.search(np.zeros((1, 8), np.float32), 3)[1].tolist() == [[-1, -1, -1]]


@pytest.mark.parametrize(
    ("index_type", "metric", "keeps"),
    [("HNSW", "L2", True), ("FLAT", "IP", True), ("HNSW", "COSINE", False), ("IVF_FLAT", "L2", False)],
)
def test_raw_vectors_are_the_rows_as_given_where_the_index_keeps_them(
    index_type: str, metric: str, keeps: bool
) -> None:
    x = np.random.default_rng(3).standard_normal((800, 8)).astype(np.float32)
    params = (
        {"M": 8, "efConstruction": 32}
        if index_type == "HNSW"
        else ({"nlist": 8} if "IVF" in index_type else None)
    )
    index = create_index(IndexSpec.parse(index_type, metric, params, 8, False))
    index.build(x)
    raw = index.raw_vectors()  # type: ignore[attr-defined]
    if not keeps:
        assert raw is None
        return
    assert np.array_equal(raw, x) and not raw.flags.writeable
    del index
    gc.collect()
    assert np.array_equal(raw, x)  # the view keeps the index, and its memory, alive
