"""An HNSW over a subset of a segment's rows, derived from the segment's HNSW graph: a valid graph over
exactly those rows that searches them about as well as an HNSW built afresh over them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pelagos.index import (
    DerivesSubsets,
    FaissFloatIndex,
    IndexSpec,
    SearchParams,
    create_index,
    float_index,
    load_index,
)
from pelagos.index.faiss_api import faiss
from pelagos.index.filtering import widened
from pelagos.index.hnsw_subgraph import CHECK_SLACK, derivable
from tests.index.helpers import K, gaussian_mixture, recall, true_scores

N = 20_000
DIM = 32


def hnsw(metric: str, ef_construction: int = 100) -> FaissFloatIndex:
    spec = IndexSpec.parse("HNSW", metric, {"M": 16, "efConstruction": ef_construction}, DIM, False)
    index = create_index(spec)
    assert isinstance(index, FaissFloatIndex)
    return index


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    both = gaussian_mixture(N + 60, DIM, seed=11, clusters=200)
    x, q = both[:N], both[N:]  # queries held out from the data's own distribution
    rows = np.flatnonzero(np.random.default_rng(13).random(N) < 0.3).astype(np.int64)  # ~30%
    return x, q, rows


@pytest.fixture(scope="module")
def l2_pair(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[FaissFloatIndex, FaissFloatIndex]:
    """An L2 HNSW over the data and the subset index derived from it."""
    x, _, rows = data
    parent = hnsw("L2")
    parent.build(x)
    derived = parent.subset_index(rows, x[rows])
    assert derived is not None
    return parent, derived


def test_derivable_needs_a_rich_enough_two_hop_neighbourhood() -> None:
    # the bench's 1M x 128 graph has 20.2 links a row: its two hops reach ~430 rows
    assert derivable(20.2, 0.0993)  # category == 3: ~43 candidates a row
    assert not derivable(20.2, 0.05)  # ~21
    assert not derivable(13.5, 0.1)  # a sparser graph: ~20
    assert not derivable(0.0, 1.0)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_a_kept_derived_subset_answers_as_well_as_the_filtered_walk_it_replaces(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], metric: str
) -> None:
    x, q, rows = data
    parent = hnsw(metric)
    parent.build(x)
    assert isinstance(parent, DerivesSubsets)
    derived = parent.subset_index(rows, x[rows])
    if metric == "L2":  # the case it is made for; IP and COSINE may fail the check (then: None)
        assert derived is not None
    if derived is None:
        return
    assert derived.count == len(rows) and "derived" in derived.info["notes"][0]
    allowed = np.zeros(N, dtype=bool)
    allowed[rows] = True
    truth = true_scores(q, x, metric)
    for ef in (16, 32, 64):
        walk = recall(parent.search(q, K, SearchParams(ef=ef), allowed)[1], truth, K, metric, allowed)
        share = derived.info["walk_width_share"]  # how a query node searches it (segment_search)
        width = max(ef, round(widened(ef, len(rows) / N, len(rows)) * share))
        found = derived.search(q, K, SearchParams(ef=width))[1]
        ours = recall(np.where(found >= 0, rows[np.maximum(found, 0)], -1), truth, K, metric, allowed)
        assert ours >= walk - 0.03, f"{metric} ef={ef}: derived {ours:.3f} vs the walk {walk:.3f}"


def test_the_derived_graph_is_an_hnsw_over_the_subset_with_the_parents_levels(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], l2_pair: tuple[FaissFloatIndex, FaissFloatIndex]
) -> None:
    x, _, rows = data
    parent, derived = l2_pair
    g, h = derived._index.hnsw, parent._index.hnsw
    n = len(rows)
    levels = faiss.vector_to_array(g.levels)
    assert levels.tolist() == faiss.vector_to_array(h.levels)[rows].tolist()
    assert g.max_level == levels.max() - 1 and levels[g.entry_point] - 1 == g.max_level
    neighbors = faiss.vector_to_array(g.neighbors)
    assert neighbors.min() >= -1 and neighbors.max() < n
    offsets = faiss.vector_to_array(g.offsets).astype(np.int64)
    level0 = neighbors[offsets[:-1, None] + np.arange(32)]
    assert ((level0 >= 0).sum(axis=1) > 0).all()  # no row is left without links
    assert not (level0 == np.arange(n)[:, None]).any()  # and none links to itself
    stored = faiss.rev_swig_ptr(faiss.downcast_index(derived._index.storage).codes.data(), n * DIM * 4)
    assert np.array_equal(stored.view(np.float32).reshape(n, DIM), x[rows])


def test_a_derived_subset_round_trips_through_serialize(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], l2_pair: tuple[FaissFloatIndex, FaissFloatIndex]
) -> None:
    q = data[1]
    derived = l2_pair[1]
    again = load_index(derived.spec, derived.serialize())
    params = SearchParams(ef=48)
    a, b = derived.search(q, K, params), again.search(q, K, params)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def test_no_derivation_where_it_would_serve_worse_or_cannot(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, _, _ = data
    parent = hnsw("L2")
    parent.build(x)
    few = np.arange(0, N, 40, dtype=np.int64)  # 2.5% of a graph of ~12 links a row: ~4 candidates
    assert parent.subset_index(few, x[few]) is None
    ivf = create_index(IndexSpec.parse("IVF_FLAT", "L2", {"nlist": 16}, DIM, False))
    ivf.build(x)
    half = np.arange(0, N, 2, dtype=np.int64)
    assert isinstance(ivf, FaissFloatIndex) and ivf.subset_index(half, x[half]) is None
    with pytest.raises(Exception, match="NaN"):
        bad = x[half].copy()
        bad[0, 0] = np.nan
        parent.subset_index(half, bad)


def test_a_derived_graph_is_kept_only_if_it_answers_as_well_as_the_walk_it_replaces(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    l2_pair: tuple[FaissFloatIndex, FaissFloatIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, q, rows = data
    parent = l2_pair[0]
    kept = parent.subset_index(rows, x[rows], probes=q)  # checked on held-out rows and the probes
    assert kept is not None
    note = kept.info["notes"][0]
    assert f"on {200 + len(q)} check queries" in note
    ours, walk = (float(v) for v in re.findall(r"\d\.\d{3}", note))
    assert ours >= walk - CHECK_SLACK
    monkeypatch.setattr(float_index, "CHECK_SLACK", -1.0)  # nothing can answer a whole 1.0 better
    assert parent.subset_index(rows, x[rows], probes=q) is None
