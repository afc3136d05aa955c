"""Segments with fewer rows than the index wants to train on still build and search."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.index import IndexSpec, SearchParams, create_index, exact_index
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
