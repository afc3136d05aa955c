"""Filtered search: only allowed rows come back, and recall stays within 0.02 of unfiltered."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.index import filtering
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.spec import IndexSpec
from tests.index.cases import ALL_CASES, build, search_params
from tests.index.conftest import Dataset
from tests.index.helpers import K, recall, true_scores


def _data(dataset: Dataset, metric: str) -> tuple[np.ndarray, np.ndarray]:
    return (dataset.xb, dataset.qb) if metric in ("HAMMING", "JACCARD") else (dataset.x, dataset.q)


@pytest.mark.parametrize("fraction", [0.1, 0.5])
@pytest.mark.parametrize(("index_type", "metric", "build_params", "search"), ALL_CASES)
def test_filtered_recall_within_002_of_unfiltered(
    dataset: Dataset,
    index_type: str,
    metric: str,
    build_params: dict[str, int],
    search: dict[str, int],
    fraction: float,
) -> None:
    x, q = _data(dataset, metric)
    truth = true_scores(q, x, metric)
    index = build(index_type, metric, build_params, x)
    params = search_params(index, search)
    allowed = np.random.default_rng(3).random(len(x)) < fraction
    unfiltered = recall(index.search(q, K, params)[1], truth, K, metric)
    _scores, ids = index.search(q, K, params, allowed=allowed)
    assert allowed[ids[ids >= 0]].all(), "a row outside the filter came back"
    assert (ids >= 0).all(), "enough rows are allowed to fill k"
    filtered = recall(ids, truth, K, metric, allowed=allowed)
    assert filtered >= unfiltered - 0.02, f"filtered {filtered:.3f} vs unfiltered {unfiltered:.3f}"


@pytest.mark.parametrize(("metric", "fraction"), [("L2", 0.1), ("COSINE", 0.1), ("IP", 0.6)])
def test_hnsw_graph_path_with_selector_keeps_recall(
    dataset: Dataset, metric: str, fraction: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the IDSelector graph walk where the policy allows it: the widened ef keeps recall.

    (For IP the policy scans exactly below half the rows allowed; see filtering.py.)
    """
    monkeypatch.setattr(filtering, "EXACT_MIN_ROWS", 0)
    monkeypatch.setattr(filtering, "GRAPH_STEP_COST", 0.0)
    truth = true_scores(dataset.q, dataset.x, metric)
    index = build("HNSW", metric, {"M": 16, "efConstruction": 100}, dataset.x)
    params = search_params(index, {"ef": 32})
    unfiltered = recall(index.search(dataset.q, K, params)[1], truth, K, metric)
    allowed = np.random.default_rng(5).random(len(dataset.x)) < fraction
    ids = index.search(dataset.q, K, params, allowed=allowed)[1]
    assert allowed[ids[ids >= 0]].all()
    assert recall(ids, truth, K, metric, allowed=allowed) >= unfiltered - 0.02


@pytest.mark.parametrize(("index_type", "metric", "build_params", "search"), ALL_CASES)
def test_edge_filters(
    dataset: Dataset, index_type: str, metric: str, build_params: dict[str, int], search: dict[str, int]
) -> None:
    x, q = _data(dataset, metric)
    index = build(index_type, metric, build_params, x)
    params = search_params(index, search)
    # nothing allowed: nothing found
    scores, ids = index.search(q[:3], K, params, allowed=np.zeros(len(x), dtype=bool))
    assert (ids == -1).all() and not np.isfinite(scores).any()
    # everything allowed: the unfiltered answer
    everything = index.search(q[:3], K, params, allowed=np.ones(len(x), dtype=bool))
    np.testing.assert_array_equal(everything[1], index.search(q[:3], K, params)[1])
    # three rows allowed: exactly those, best first
    allowed = np.zeros(len(x), dtype=bool)
    allowed[[5, 500, 4999]] = True
    scores, ids = index.search(q[:3], K, params, allowed=allowed)
    assert {tuple(sorted(r[:3].tolist())) for r in ids} == {(5, 500, 4999)}
    assert (ids[:, 3:] == -1).all()


def test_allowed_must_match_row_count(dataset: Dataset) -> None:
    from pelagos.errors import InvalidArgumentError

    index = build("FLAT", "L2", {}, dataset.x)
    with pytest.raises(InvalidArgumentError, match="one entry per row"):
        index.search(dataset.q, K, allowed=np.ones(10, dtype=bool))
    with pytest.raises(InvalidArgumentError, match="bool"):
        index.search(dataset.q, K, allowed=np.ones(len(dataset.x), dtype=np.int8))


def test_hnsw_ip_selective_filter_scans_exactly(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the IP threshold the answer is exact even with the cost model switched off."""
    monkeypatch.setattr(filtering, "EXACT_MIN_ROWS", 0)
    monkeypatch.setattr(filtering, "GRAPH_STEP_COST", 0.0)
    truth = true_scores(dataset.q, dataset.x, "IP")
    index = build("HNSW", "IP", {"M": 16, "efConstruction": 100}, dataset.x)
    allowed = np.random.default_rng(5).random(len(dataset.x)) < 0.1
    ids = index.search(dataset.q, K, search_params(index, {"ef": 32}), allowed=allowed)[1]
    assert recall(ids, truth, K, "IP", allowed=allowed) == 1.0


def test_the_query_node_scans_gathered_rows_where_that_beats_the_widened_walk() -> None:
    hnsw = IndexSpec(IndexType.HNSW, MetricType.L2, 128, hnsw_m=16, ef_construction=200)
    pays = filtering.gathered_scan_pays
    # 10% of 100k: 10,000 gathered rows against a walk of width 160 (ef 16 widened) -> scan
    assert pays(hnsw, 100_000, 10_000, 16)
    # 10% of 1M: 100,000 rows; width 640 (ef 64) walks, width 1,280 (ef 128) scans
    assert not pays(hnsw, 1_000_000, 100_000, 64)
    assert pays(hnsw, 1_000_000, 100_000, 128)
    # the gathered scan is chosen wherever the index itself would scan (the bitmap cost model)
    for count, allowed, ef in [(100_000, 1_000, 16), (1_000_000, 100_000, 256), (50_000, 2_000, 8)]:
        plan = filtering.FilterPlan(count, allowed)
        width = filtering.widened(ef, plan.fraction, max(ef, count))
        if filtering.prefer_exact(plan, width, 16, MetricType.L2):
            assert pays(hnsw, count, allowed, ef)
    # a mild filter keeps the walk; no filter, or another index type, never scans gathered rows
    assert not pays(hnsw, 1_000_000, 600_000, 64)
    assert not pays(hnsw, 100_000, 100_000, 16)
    ivf = IndexSpec(IndexType.IVF_FLAT, MetricType.L2, 128, nlist=316)
    assert not pays(ivf, 100_000, 10_000, 16)
