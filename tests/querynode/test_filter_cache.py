"""The filter cache: rows kept per (segment, filter), gathered vectors, the byte budget, and the
filtered HNSW search it serves (the same answer as the index's own exact scan through a bitmap)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import numpy as np
import pyarrow as pa
import pytest
from tests.querynode.test_search_channel import DIM, SCHEMA, filled, per_query, request, true_scores

from pelagos.expr import compile_filter
from pelagos.index import IndexSpec, SearchParams, create_index, filtering, hnsw_subgraph
from pelagos.index.filtering import widened
from pelagos.querynode import filter_cache
from pelagos.querynode.executor import search_channel
from pelagos.querynode.filter_cache import (
    SUBINDEX_BUILD_NICENESS,
    FilterCache,
    FilterRows,
    lower_thread_priority,
)
from pelagos.querynode.segment_view import SegmentView


def seg_of(n: int, seed: int = 0) -> SegmentView:
    _, d = filled(1, n, seed=seed)
    table = pa.table({"id": pa.array(d["id"]), "n": pa.array(d["n"])})
    return SegmentView(1, np.zeros(n, np.int64), table, SCHEMA)


def test_rows_are_evaluated_once_per_segment_and_plan() -> None:
    cache = FilterCache(1 << 20)
    seg = seg_of(500)
    plan = compile_filter("n == 3", SCHEMA, {})
    first = cache.rows(seg, plan)
    assert first.mask.tolist() == (seg.table.column("n").to_numpy() == 3).tolist()
    assert first.count == int(first.mask.sum())
    assert cache.rows(seg, plan) is first
    assert cache.rows(seg, compile_filter("n == 4", SCHEMA, {})) is not first
    assert cache.rows(seg_of(500, seed=1), plan) is not first  # another segment


def test_the_budget_evicts_the_least_recently_used() -> None:
    seg = seg_of(1000)
    plans = [compile_filter(f"n == {i}", SCHEMA, {}) for i in range(5)]
    cache = FilterCache(3 * 1000 + 10)  # three 1000-row masks
    entries = [cache.rows(seg, p) for p in plans[:3]]
    cache.rows(seg, plans[0])  # touch: plans[1] is now the oldest
    cache.rows(seg, plans[3])
    assert cache.bytes <= cache.max_bytes
    assert cache.rows(seg, plans[0]) is entries[0]
    assert cache.rows(seg, plans[1]) is not entries[1]  # evicted, evaluated again


def test_an_entry_over_the_budget_is_computed_but_not_kept() -> None:
    cache = FilterCache(10)
    seg, plan = seg_of(100), compile_filter("n > 1", SCHEMA, {})
    first = cache.rows(seg, plan)
    assert cache.rows(seg, plan) is not first and cache.bytes == 0


def test_entries_die_with_their_segment() -> None:
    cache = FilterCache(1 << 20)
    seg, plan = seg_of(300), compile_filter("n == 2", SCHEMA, {})
    cache.rows(seg, plan)
    assert cache.bytes > 0
    del seg
    gc.collect()
    assert cache.bytes == 0


def test_gathered_vectors_are_the_allowed_rows_and_count_against_the_budget() -> None:
    cache = FilterCache(1 << 20)
    seg, plan = seg_of(200), compile_filter("n < 5", SCHEMA, {})
    entry = cache.rows(seg, plan)
    x = np.arange(200 * 4, dtype=np.float32).reshape(200, 4)
    before = cache.bytes
    got = cache.gathered(seg, plan, entry, "v", lambda: x)
    assert np.array_equal(got, x[entry.mask]) and got.flags.c_contiguous
    assert cache.gathered(seg, plan, entry, "v", lambda: x) is got
    assert cache.bytes == before + got.nbytes + entry.rows.nbytes


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
async def test_selective_filters_on_hnsw_score_the_gathered_rows_exactly(metric: str) -> None:
    ch, d = filled(1, 3000, seed=7, groups=20)  # n == 3 allows ~5%: HNSW scores those rows exactly
    seg = ch.sealed[1]
    index = create_index(IndexSpec.parse("HNSW", metric, {"M": "8", "efConstruction": "64"}, DIM, False))
    index.build(seg.vectors("v"))
    seg.indexes["v"] = index
    q = np.random.default_rng(8).standard_normal((3, DIM)).astype(np.float32)
    r = await search_channel(ch, request(q, 10, metric, filter="n == 3", params={"ef": 16}))
    entry = ch.filters.rows(seg, compile_filter("n == 3", SCHEMA, {}))
    assert entry.vectors  # the gathered path ran and kept its matrix
    x, allowed = d["v"].astype(np.float64), d["n"] == 3
    if metric == "COSINE":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q64 = q / np.linalg.norm(q, axis=1, keepdims=True)
    else:
        q64 = q.astype(np.float64)
    scores = ((q64[:, None] - x[None]) ** 2).sum(-1) if metric == "L2" else -(q64 @ x.T)
    scores[:, ~allowed] = np.inf
    assert per_query(r) == d["id"][np.argsort(scores, axis=1, kind="stable")[:, :10]].tolist()
    # the same answer without the cache: the index scores the rows through its bitmap
    fresh, _ = filled(1, 3000, seed=7, groups=20)
    fresh.sealed[1].indexes["v"] = index
    fresh.filters = FilterCache(0)
    again = await search_channel(fresh, request(q, 10, metric, filter="n == 3", params={"ef": 16}))
    assert per_query(again) == per_query(r)
    assert not fresh.filters.bytes


async def test_deletes_bypass_the_cached_rows_and_stay_deleted() -> None:
    ch, d = filled(1, 400, seed=9, groups=4)
    seg = ch.sealed[1]
    dead = np.zeros(400, dtype=bool)
    dead[np.flatnonzero(d["n"] == 1)[:50]] = True
    ch._alive_cache[seg.segment_id] = (ch._version, ~dead)
    q = np.zeros((1, DIM), np.float32)
    r = await search_channel(ch, request(q, 400, filter="n == 1"))
    returned = set(per_query(r)[0])
    assert returned == set(d["id"][(d["n"] == 1) & ~dead].tolist())


def walk_rather_than_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a filtered search of these small segments walk the graph instead of scoring the allowed
    rows exactly (which it does below some thousands of rows, sub-index or not)."""
    monkeypatch.setattr(filter_cache, "SUBINDEX_MIN_ROWS", 500)
    monkeypatch.setattr(filtering, "EXACT_MIN_ROWS", 10)
    monkeypatch.setattr(filtering, "GRAPH_STEP_COST", 0.01)
    monkeypatch.setattr(filtering, "GATHERED_GRAPH_STEP_COST", 0.01)


async def test_a_repeated_broad_filter_gets_an_hnsw_sub_index(monkeypatch: pytest.MonkeyPatch) -> None:
    walk_rather_than_scan(monkeypatch)
    ch, d = filled(1, 6000, seed=31, groups=4)  # n == 2: ~1,500 rows, 25%
    seg = ch.sealed[1]
    index = create_index(IndexSpec.parse("HNSW", "L2", {"M": "16", "efConstruction": "100"}, DIM, False))
    index.build(seg.vectors("v"))
    seg.indexes["v"] = index
    given: list[np.ndarray | None] = []
    subset_index = index.subset_index  # type: ignore[attr-defined]

    def spy_subset(rows: np.ndarray, vectors: np.ndarray, probes: np.ndarray | None = None) -> object:
        given.append(probes)
        return subset_index(rows, vectors, probes)

    monkeypatch.setattr(index, "subset_index", spy_subset)
    q = np.random.default_rng(32).standard_normal((20, DIM)).astype(np.float32)
    plan = compile_filter("n == 2", SCHEMA, {})
    allowed = d["n"] == 2
    truth = true_scores(q, d["v"], "L2")
    truth[:, ~allowed] = np.inf
    expected = d["id"][np.argsort(truth, axis=1, kind="stable")[:, :10]]
    first = await search_channel(ch, request(q, 10, filter="n == 2", params={"ef": 64}))
    entry = ch.filters.rows(seg, plan)
    assert not entry.subindexes  # one use: no build yet
    await search_channel(ch, request(q, 10, filter="n == 2", params={"ef": 64}))  # earns the build
    for _ in range(200):
        if entry.subindexes:
            break
        await asyncio.sleep(0.05)
    ((key, sub),) = entry.subindexes.items()
    assert key[1] == index.spec and sub.count == int(allowed.sum())
    assert "derived" in sub.info["notes"][0]  # from the segment's graph, checked on the queries seen
    ((probes,),) = [given]  # checked on the queries that used the filter
    assert probes is not None and np.array_equal(probes, np.concatenate([q, q]))
    assert entry.probes == []  # and let go once it was
    worker = ch.filters._workers[False]  # derived by the worker of our own priority, not niced
    assert worker.native_id is not None and True not in ch.filters._workers
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, worker.native_id) == ours
    assert not entry.vectors  # the gathered copy went: the sub-index holds the rows
    assert ch.filters.bytes >= sub.memory_bytes()  # type: ignore[attr-defined]
    later = await search_channel(ch, request(q, 10, filter="n == 2", params={"ef": 64}))
    for result in (first, later):
        got = per_query(result)
        assert all(set(g) <= set(d["id"][allowed].tolist()) for g in got)  # only allowed rows
        hits = sum(len(set(g) & set(e)) for g, e in zip(got, expected.tolist(), strict=True))
        assert hits / expected.size >= 0.95
    asked: list[int | None] = []
    search = sub.search

    def spy(queries: np.ndarray, k: int, params: SearchParams | None = None) -> object:
        asked.append(None if params is None else params.ef)
        return search(queries, k, params)

    monkeypatch.setattr(sub, "search", spy)
    await search_channel(ch, request(q, 10, filter="n == 2", params={"ef": 16}))
    # as wide as it needs to answer as well as the filtered walk it replaces (measured when it was made)
    share = sub.info["walk_width_share"]
    assert share in hnsw_subgraph.WIDTH_SHARES
    assert asked == [max(16, round(widened(16, entry.count / index.count, entry.count) * share))]


async def test_a_sub_index_the_graph_cannot_serve_is_built_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    walk_rather_than_scan(monkeypatch)
    monkeypatch.setattr(hnsw_subgraph, "MIN_CANDIDATES", 10**9)
    ch, d = filled(1, 3000, seed=33, groups=4)
    seg = ch.sealed[1]
    index = create_index(IndexSpec.parse("HNSW", "L2", {"M": "16", "efConstruction": "100"}, DIM, False))
    index.build(seg.vectors("v"))
    seg.indexes["v"] = index
    q = np.random.default_rng(34).standard_normal((5, DIM)).astype(np.float32)
    for _ in range(2):
        await search_channel(ch, request(q, 10, filter="n == 2", params={"ef": 64}))
    entry = ch.filters.rows(seg, compile_filter("n == 2", SCHEMA, {}))
    for _ in range(200):
        if entry.subindexes:
            break
        await asyncio.sleep(0.05)
    ((_, sub),) = entry.subindexes.items()
    assert sub.count == int((d["n"] == 2).sum()) and sub.info["notes"] == []  # a fresh HNSW
    builder = ch.filters._workers[True]  # built by the niced worker: it takes idle CPU
    assert builder.native_id is not None
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, builder.native_id) == min(19, ours + SUBINDEX_BUILD_NICENESS)


def test_lowering_a_threads_priority_leaves_the_others_alone() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    seen: list[tuple[int | None, int]] = []

    def lowered() -> None:
        got = lower_thread_priority(3)
        seen.append((got, os.getpriority(os.PRIO_PROCESS, 0)))

    t = threading.Thread(target=lowered)
    t.start()
    t.join()
    assert seen == [(min(19, ours + 3), min(19, ours + 3))]
    assert os.getpriority(os.PRIO_PROCESS, 0) == ours  # this thread kept its own


def test_the_queries_kept_to_check_a_sub_index_count_against_the_budget() -> None:
    entry = FilterRows(np.zeros(100, dtype=bool), 0)
    before = entry.nbytes
    entry.probes.append(np.zeros((4, 8), np.float32))
    assert entry.nbytes == before + 4 * 8 * 4
