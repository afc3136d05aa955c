"""An HNSW over a subset of another HNSW's rows, derived from that HNSW's graph instead of built afresh.

A filter that keeps selecting the same rows of a segment gets an index of its
own (querynode/filter_cache.py). Building it from scratch costs what the
segment's index cost per row: at 1M x 128, 10% of the rows (M=16,
efConstruction=200) took 18 s of both cores. Those rows' neighbourhoods are
already in the segment's graph: with ~20 links a row, a row's two hops reach
~430 rows, ~43 of them in a 10% subset. faiss's neighbour-selection
heuristic chooses each row's links among the POOL nearest of those, a
refinement round over the new graph's own two hops and reverse links
improves them, and the free slots of each list are filled with the nearest
pruned candidates up to FILL_SHARE of the list (the HNSW paper's "keep
pruned connections"; the heuristic alone left ~6-8 links a row on clustered
data). Derived so, that subset's HNSW took 6.9 s of one core, and answered
the bench's queries with recall@10 0.940 at ef=64 (a fresh build: 0.947)
and 0.983 at ef=161 (the width a 10% filter's walk gets for ef=16).

Invariants:
- only where the candidate pool is rich enough: the subset's expected share
  of a row's two hops (fraction x (d + d^2), d the parent's mean level-0
  links) must reach MIN_CANDIDATES. Measured: ~43 served as well as a fresh
  build; ~21 (5% of the same 1M rows, or 10% of a 50k-row graph with 13.5
  links a row) answered recall 0.87-0.92 at ef=64 where a fresh build
  answered 0.95. `derivable` says whether; callers build afresh otherwise;
- row i of the result is rows[i] of the parent; its vectors are the ones the
  caller passes (the parent's stored form: normalised for COSINE);
- each row keeps its level in the parent, so the level distribution is an
  HNSW's; level-0 lists are chosen by faiss's heuristic
  (`init_level_0_from_knngraph`) and then filled, upper levels hold the
  nearest candidates;
- kept only after the check (CHECK_EF) against the filtered walk it replaces,
  which also measures how wide it must be searched to answer as well
  (WIDTH_SHARES of the walk's width);
- the parent is only read; the result is an ordinary faiss IndexHNSWFlat
  (searchable, serializable) with the parent's M and metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.index.faiss_api import faiss, vector_view

#: a derived graph needs at least this many expected candidates per row (the subset's share of a
#: row's 1- and 2-hop neighbourhood in the parent); see the module's invariants
MIN_CANDIDATES = 40
#: candidates handed to faiss's neighbour-selection heuristic per row
POOL = 128
#: refinement rounds over the derived graph's own neighbourhoods. At 1M/10%, one thread: 1 round
#: 6.9 s, recall 0.940 at ef=64, 0.983 at ef=161; 2 rounds 11.5 s, 0.957 and 0.984. A pool of 64
#: instead of 128 lost more (0.877 at ef=64) than it saved (6.7 s)
ROUNDS = 1
#: a derived graph is kept only if, searched at most as wide as a filtered walk of the parent at
#: ef=CHECK_EF would search, it answers recall@10 at least that walk's less CHECK_SLACK, over
#: CHECK_QUERIES held-out rows of the parent (the data's own distribution) and the filter's recent
#: queries. That is the promise of segment_search (answers never get worse when a sub-index arrives),
#: checked where it is made: queries away from the data are a derived graph's weak spot (fewer long
#: links than a fresh build)
CHECK_EF = 16
CHECK_SLACK = 0.01
CHECK_QUERIES = 200
#: the narrowest of these shares of the walk's width that keeps that promise is the width the
#: sub-index is searched at (stored in its info as `walk_width_share`): it wastes no step on rows the
#: filter rejects, so it usually needs less (bench's 1M at 10%: recall 0.983 at the walk's 161,
#: where the walk answered 0.965)
WIDTH_SHARES = (0.25, 0.5, 0.75, 1.0)
#: rows processed at a time (bounds the temporary candidate matrices to some tens of MiB)
CHUNK = 8192
#: level-0 lists are filled up to this share of their 2M slots with the nearest pruned candidates:
#: at 1M/10% (M=16, two rounds), 24 of 32 gave recall 0.964 at ef=64 (119 us), 32 0.953 (131 us),
#: none 0.946 (107 us)
FILL_SHARE = 0.75
_NONE = np.iinfo(np.int64).max
Ids = npt.NDArray[np.int64]


def mean_degree(index: Any, sample: int = 8192) -> float:
    """The mean number of level-0 links of an IndexHNSW's rows (from an even sample of them)."""
    h = index.hnsw
    total = int(index.ntotal)
    if total == 0:
        return 0.0
    rows = np.unique(np.linspace(0, total - 1, min(sample, total)).astype(np.int64))
    offsets = vector_view(h.offsets, np.uint64)[rows].astype(np.int64)
    lists = vector_view(h.neighbors, np.int32)[offsets[:, None] + np.arange(int(h.nb_neighbors(0)))]
    return float((lists >= 0).sum(axis=1).mean())


def derivable(degree: float, fraction: float) -> bool:
    """Will a graph derived from a parent whose rows have `degree` level-0 links on average serve a
    subset of `fraction` of its rows well? Its expected share of a row's two hops must be rich enough."""
    return fraction * (degree + degree * degree) >= MIN_CANDIDATES


def _distinct(cand: Ids, own: Ids) -> Ids:
    """Each row's distinct candidate ids (>= 0, not the row's own id `own[i]`), ascending, padded
    with -1 on the right to the widest row."""
    c = len(cand)
    valid = (cand >= 0) & (cand != own[:, None])
    counts = valid.sum(axis=1)
    width = max(1, int(counts.max()) if c else 0)
    out = np.full((c, width), _NONE, np.int64)
    pos = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    out[np.repeat(np.arange(c), counts), pos] = cand[valid]
    out.sort(axis=1)
    out[:, 1:][out[:, 1:] == out[:, :-1]] = _NONE
    out.sort(axis=1)
    keep = max(1, int((out != _NONE).sum(axis=1).max()) if c else 0)
    out = out[:, :keep]
    out[out == _NONE] = -1
    return out


class _Scorer:
    """Distances between a row of the subset and candidate rows, smaller is nearer (HNSW's sense)."""

    def __init__(self, storage: Any, vectors: npt.NDArray[np.float32], inner_product: bool) -> None:
        self._storage = storage
        self._vectors = vectors
        self._sign = np.float32(-1.0 if inner_product else 1.0)

    def __call__(self, rows: Ids, cand: Ids) -> npt.NDArray[np.float32]:
        valid = cand >= 0
        labels = np.ascontiguousarray(np.where(valid, cand, rows[:, None]))
        queries = np.ascontiguousarray(self._vectors[rows])
        dist = np.empty(labels.shape, np.float32)
        self._storage.compute_distance_subset(
            len(rows), faiss.swig_ptr(queries), labels.shape[1], faiss.swig_ptr(dist), faiss.swig_ptr(labels)
        )
        dist *= self._sign
        dist[~valid] = np.inf
        return dist


def _nearest(dist: npt.NDArray[np.float32], cand: Ids, k: int) -> tuple[Ids, npt.NDArray[np.float32]]:
    """The k nearest candidates of each row, nearest first, padded with -1 / inf."""
    c, w = cand.shape
    kk = min(k, w)
    part = np.argpartition(dist, kk - 1, axis=1)[:, :kk] if w > kk else np.broadcast_to(np.arange(w), (c, w))
    d = np.take_along_axis(dist, part, axis=1)
    order = np.argsort(d, axis=1)
    d = np.take_along_axis(d, order, axis=1)
    ids = np.take_along_axis(np.take_along_axis(cand, part, axis=1), order, axis=1)
    out_i = np.full((c, k), -1, np.int64)
    out_d = np.full((c, k), np.inf, np.float32)
    out_i[:, :kk] = np.where(np.isfinite(d), ids, -1)
    out_d[:, :kk] = d
    return out_i, out_d


def derive_subgraph(
    parent: Any,
    rows: Ids,
    vectors: npt.NDArray[np.float32],
) -> Any:
    """An IndexHNSWFlat over `vectors` (the parent's rows `rows`, ascending, in its stored form) whose
    graph is derived from `parent`'s (an IndexHNSWFlat). Check `derivable` first."""
    h = parent.hnsw
    total, n = int(parent.ntotal), len(rows)
    m0, m1 = int(h.nb_neighbors(0)), int(h.nb_neighbors(1))
    nbrs = vector_view(h.neighbors, np.int32)
    offsets = vector_view(h.offsets, np.uint64).astype(np.int64)
    levels = vector_view(h.levels, np.int32)  # level + 1 per row

    sub = faiss.IndexHNSWFlat(vectors.shape[1], m1, parent.metric_type)
    storage = faiss.downcast_index(sub.storage)
    storage.add(vectors)
    sub.ntotal = n
    sub_levels = np.ascontiguousarray(levels[rows], dtype=np.int32)
    faiss.copy_array_to_vector(sub_levels, sub.hnsw.levels)
    top = int(sub.hnsw.prepare_level_tab(n, True))
    sub.hnsw.max_level = top
    sub.hnsw.entry_point = int(np.flatnonzero(sub_levels - 1 == top)[0])
    score = _Scorer(storage, vectors, parent.metric_type == faiss.METRIC_INNER_PRODUCT)

    # parent ids -> subset ids (-1 outside it); slot `total` answers the parent's -1 padding
    to_sub = np.full(total + 1, -1, np.int32)
    to_sub[rows] = np.arange(n, dtype=np.int32)
    pool_i = np.full((n, POOL), -1, np.int64)
    pool_d = np.full((n, POOL), np.inf, np.float32)

    # level 0: the subset's rows among each row's 1- and 2-hop neighbours in the parent
    mapped = np.empty((total, m0), np.int32)  # every parent row's level-0 list in subset ids
    for s in range(0, total, 1 << 16):
        e = min(total, s + (1 << 16))
        mapped[s:e] = to_sub[nbrs[offsets[s:e, None] + np.arange(m0)]]
    own_lists = nbrs[offsets[rows][:, None] + np.arange(m0)]
    for s in range(0, n, CHUNK):
        at = np.arange(s, min(n, s + CHUNK))
        one = own_lists[at]
        two = mapped[np.maximum(one, 0)]
        two[one < 0] = -1
        cand = _distinct(
            np.concatenate([mapped[rows[at]], two.reshape(len(at), -1)], axis=1).astype(np.int64), at
        )
        pool_i[at], pool_d[at] = _nearest(score(at, cand), cand, POOL)
    del mapped, own_lists
    sub.init_level_0_from_knngraph(POOL, faiss.swig_ptr(pool_d), faiss.swig_ptr(pool_i))

    sub_nbrs = vector_view(sub.hnsw.neighbors, np.int32)
    sub_offsets = vector_view(sub.hnsw.offsets, np.uint64).astype(np.int64)
    slots0 = sub_offsets[:-1, None] + np.arange(m0)
    for _ in range(ROUNDS):
        graph = sub_nbrs[slots0].astype(np.int64)
        back = _reverse(graph)
        near = graph[:, : m0 // 2]  # the nearer half of each list (faiss keeps them nearest first)
        for s in range(0, n, CHUNK):
            at = np.arange(s, min(n, s + CHUNK))
            g = near[at]
            two = near[np.maximum(g, 0)]
            two[g < 0] = -1
            cand = _distinct(np.concatenate([graph[at], back[at], two.reshape(len(at), -1)], axis=1), at)
            pool_i[at], pool_d[at] = _nearest(score(at, cand), cand, POOL)
        sub_nbrs[slots0.reshape(-1)] = -1
        sub.init_level_0_from_knngraph(POOL, faiss.swig_ptr(pool_d), faiss.swig_ptr(pool_i))

    _fill_lists(sub_nbrs, slots0, score, pool_i)

    # upper levels: the nearest subset rows among 1- and 2-hop neighbours at that level in the parent
    for level in range(1, top + 1):
        at = np.flatnonzero(sub_levels - 1 >= level)
        if len(at) < 2:
            continue
        base = offsets[rows[at]] + int(h.cum_nb_neighbors(level))
        one = nbrs[base[:, None] + np.arange(m1)].astype(np.int64)
        safe = np.where(one >= 0, one, rows[at][:, None])
        two = nbrs[(offsets[safe] + int(h.cum_nb_neighbors(level)))[..., None] + np.arange(m1)].astype(
            np.int64
        )
        two[one < 0] = -1
        parent_ids = np.concatenate([one, two.reshape(len(at), -1)], axis=1)
        cand = _distinct(
            np.where(parent_ids >= 0, to_sub[np.maximum(parent_ids, 0)], -1).astype(np.int64), at
        )
        chosen, _ = _nearest(score(at, cand), cand, m1)
        dst = (sub_offsets[at] + int(sub.hnsw.cum_nb_neighbors(level)))[:, None] + np.arange(m1)
        sub_nbrs[dst] = chosen.astype(np.int32)
    return sub


def _reverse(graph: Ids) -> Ids:
    """Who links to each row (at most as many as a list holds, the rest dropped): (n, width), -1 padded."""
    n, width = graph.shape
    src = np.repeat(np.arange(n, dtype=np.int64), width)
    dst = graph.reshape(-1)
    keep = dst >= 0
    src, dst = src[keep], dst[keep]
    order = np.argsort(dst, kind="stable")
    src, dst = src[order], dst[order]
    rank = np.arange(len(dst)) - np.searchsorted(dst, dst)
    out = np.full((n, width), -1, np.int64)
    fits = rank < width
    out[dst[fits], rank[fits]] = src[fits]
    return out


def _fill_lists(neighbors: npt.NDArray[np.int32], slots: Ids, score: _Scorer, pool: Ids) -> None:
    """Fill the free slots of each level-0 list, up to FILL_SHARE of them, with the nearest of the rows
    linking to it and of its pool (`pool`, nearest first) that it does not link to yet."""
    graph = neighbors[slots].astype(np.int64)
    n, width = graph.shape
    fill = round(FILL_SHARE * width)
    back = _reverse(graph)
    for s in range(0, n, CHUNK):
        at = np.arange(s, min(n, s + CHUNK))
        g = graph[at]
        cand = _distinct(np.concatenate([back[at], pool[at, :width]], axis=1), at)
        cand = np.where((cand[:, :, None] == g[:, None, :]).any(axis=2), -1, cand)  # already linked
        by_distance, _ = _nearest(score(at, cand), cand, width)
        free = (g < 0) & (np.arange(width) < fill)
        rank = np.cumsum(free, axis=1) - 1  # the j-th free slot takes the j-th nearest candidate
        lists = np.where(free, np.take_along_axis(by_distance, np.maximum(rank, 0), axis=1), g)
        neighbors[slots[at].reshape(-1)] = lists.astype(np.int32).reshape(-1)


def check_queries(
    parent: Any, rows: Ids, probes: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """Queries to check a subset index derived for the parent's `rows` with: up to CHECK_QUERIES parent
    rows outside `rows` (the data's own distribution, in its stored form) and the caller's `probes`
    (the filter's own recent queries, which may lie away from the data)."""
    outside = np.ones(int(parent.ntotal), dtype=bool)
    outside[rows] = False
    pick = np.flatnonzero(outside)
    pick = pick[np.linspace(0, len(pick) - 1, min(CHECK_QUERIES, len(pick))).astype(np.int64)]
    asked = [faiss.downcast_index(parent.storage).reconstruct_batch(pick)] if len(pick) else []
    if probes is not None and len(probes):
        asked.append(probes[:CHECK_QUERIES])
    if not asked:
        return np.zeros((0, int(parent.d)), np.float32)
    return np.ascontiguousarray(np.concatenate(asked), dtype=np.float32)


def recall_at(found: Ids, truth: Ids) -> float:
    """The share of `truth`'s ids (-1: none) that `found` holds, row by row."""
    real = truth >= 0
    if not real.any():
        return 1.0
    hits = (truth[:, :, None] == found[:, None, :]).any(axis=2) & real
    return float(hits.sum() / real.sum())
