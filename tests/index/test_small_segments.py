"""Segments with fewer rows than the index wants to train on still build and search."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.errors import InvalidArgumentError
from pelagos.index import IndexSpec, SearchParams, create_index, exact_index, float_index
from pelagos.index.float_index import training_rows
from tests.index.conftest import Dataset


@pytest.mark.parametrize(
    ("index_type", "params"),
    [
        ("IVF_FLAT", {"nlist": 128}),
        ("IVF_SQ8", {"nlist": 128}),
        ("IVF_PQ", {"nlist": 128, "m": 8, "nbits": 8}),
        ("BIN_IVF_FLAT", {"nlist": 128}),
    ],
)
@pytest.mark.parametrize("rows", [1, 2, 50])
def test_ivf_with_fewer_rows_than_nlist(
    dataset: Dataset, index_type: str, params: dict[str, int], rows: int
) -> None:
    binary = index_type.startswith("BIN_")
    x, q = (dataset.xb[:rows], dataset.qb[:5]) if binary else (dataset.x[:rows], dataset.q[:5])
    spec = IndexSpec.parse(index_type, None, params, 128 if binary else 32, binary)
    index = create_index(spec)
    index.build(x)
    assert index.count == rows
    assert any("clamped" in note or "flat" in note for note in index.info["notes"])
    assert index.info["params"].get("nlist", 1) <= rows
    # probing every list visits every row: the top-k is every row
    everything = SearchParams.parse({"nprobe": 128}, spec, rows)
    scores, ids = index.search(q, rows, everything)
    assert sorted(ids[0].tolist()) == list(range(rows))
    if index_type != "IVF_PQ":  # PQ codes are approximate; the others keep exact vectors
        oracle = exact_index(spec.metric, spec.dim)
        oracle.build(x)
        expected = oracle.search(q, rows)[0]
        np.testing.assert_allclose(scores, expected, rtol=1e-3, atol=1e-3)
    # more results than rows asked: padded
    assert (index.search(q, rows + 3, everything)[1][:, rows:] == -1).all()


def test_training_rows_are_a_seeded_sample_in_row_order() -> None:
    x = np.arange(5_000, dtype=np.float32).reshape(-1, 1).repeat(4, axis=1)
    assert training_rows(x, 5_000) is x  # few enough: all of them, no copy
    sample = training_rows(x, 1_000)
    rows = sample[:, 0].astype(np.int64)
    assert len(rows) == 1_000 and len(set(rows.tolist())) == 1_000
    assert np.all(np.diff(rows) > 0)  # in row order: a mapped column is read forwards
    assert np.array_equal(training_rows(x, 1_000), sample)  # reproducible


def test_ivf_trains_on_a_sample_and_still_adds_and_checks_every_row(
    dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nlist 4 keeps at most 4 * 256 training points: 5,000 rows train on a sample of 1,024
    x = np.concatenate([dataset.x] * (5_000 // len(dataset.x) + 1))[:5_000]
    trained: list[int] = []

    def recording(vectors: np.ndarray, limit: int) -> np.ndarray:
        rows = training_rows(vectors, limit)
        trained.append(len(rows))
        return rows

    monkeypatch.setattr(float_index, "training_rows", recording)
    spec = IndexSpec.parse("IVF_FLAT", "L2", {"nlist": 4}, 32, False)
    index = create_index(spec)
    index.build(x)
    assert trained == [1_024] and index.count == 5_000
    everything = SearchParams.parse({"nprobe": 4}, spec, 10)  # every list: exact over every row added
    oracle = exact_index(spec.metric, spec.dim)
    oracle.build(x)
    got, want = index.search(dataset.q[:5], 10, everything)[0], oracle.search(dataset.q[:5], 10)[0]
    assert np.allclose(got, want, rtol=1e-5)
    sampled = set(training_rows(np.arange(5_000)[:, None], 1_024)[:, 0].tolist())
    bad = x.copy()
    bad[next(i for i in range(5_000) if i not in sampled), 3] = np.nan  # not trained on: found when added
    with pytest.raises(InvalidArgumentError, match="NaN"):
        create_index(spec).build(bad)
