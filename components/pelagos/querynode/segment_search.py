"""Search one segment: its best hits for every query, as flat candidates with an unseen bound.

A segment is searched through its built vector index when it has one for the
field, else exactly over its stored vectors (growing data, sealed segments
whose index is not built yet). Only rows allowed by the row mask (alive,
in the requested partitions, matching the filter) are ever returned.

Invariants:
- Candidates are flat triples (query, score, row offset); `bound[q]` is a
  sort key (smaller is better) that every allowed row not returned for
  query q reaches or exceeds (+inf when the segment returned all it could).
  Grouping uses the bound to prove a merged selection exact.
- Top-k: the best k allowed rows per query. Range search (radius, with or
  without range_filter): the best k rows whose scores are in range, with
  each metric's semantics (index/results.in_range).
- Search iterator: only rows strictly after the bound in (score, pk) order
  (every row on the first page); the segment widens its search until it
  holds k such rows per query and the run of scores tied with the k-th is
  complete, or it is exhausted, so the shard can order ties by pk.
- Quantised indexes (IVF_SQ8, IVF_PQ) are refined with the segment's raw
  vectors (refine.py): reported scores are always true scores.
- Exact search gathers the allowed rows when they are at most
  GATHER_FRACTION of the segment, otherwise masks the rest.
- No Python loop over rows or queries; the widening loop runs O(log n) times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.index import VectorIndex
from pelagos.index.exact import exact_knn, exact_range
from pelagos.index.filtering import gathered_scan_pays, subindex_width
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.results import RangeResult, TopK
from pelagos.querynode.filter_cache import FilterCache, FilterRows
from pelagos.querynode.refine import REFINE_FACTOR, needs_refine, refine_range, refine_topk
from pelagos.querynode.search_context import SearchContext, iterator_key_bound
from pelagos.querynode.segment_view import SegmentView

GATHER_FRACTION = 0.5

Ids = npt.NDArray[np.int64]
Keys = npt.NDArray[np.float64]


@dataclass(slots=True)
class SegmentHits:
    qidx: Ids
    scores: npt.NDArray[np.float32]
    rows: Ids
    bound: Keys

    @classmethod
    def empty(cls, nq: int) -> SegmentHits:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64), np.full(nq, np.inf))


@dataclass(slots=True)
class SegmentScope:
    """The rows of one segment a request may return."""

    seg: SegmentView
    #: None: every row
    mask: npt.NDArray[np.bool_] | None
    allowed: int
    #: when the mask is exactly a filter's cached rows: that entry, and the cache that keeps it
    filtered: FilterRows | None = None
    cache: FilterCache | None = None


def _vectors(seg: SegmentView, ctx: SearchContext) -> np.ndarray:
    name = ctx.req.field_name
    return seg.normalized_vectors(name) if ctx.metric is MetricType.COSINE else seg.vectors(name)


def knn(scope: SegmentScope, ctx: SearchContext, k: int) -> TopK:
    seg, mask = scope.seg, scope.mask
    index = seg.indexes.get(ctx.req.field_name)
    if index is not None:
        params = ctx.params_for(index.spec)
        if scope.filtered is not None and gathered_scan_pays(
            index.spec, index.count, scope.allowed, params.ef_for(k)
        ):  # scoring the allowed rows gathered costs less than the widened walk (or the index's own scan)
            return _gathered_knn(scope, ctx, k)
        if (
            scope.filtered is not None
            and index.spec.index_type is IndexType.HNSW
            and scope.allowed < index.count
        ):
            sub = _subindex(scope, ctx, index)
            if sub is not None:  # an HNSW over just the filter's rows: search it unfiltered, as wide
                # as it needs to answer as well as the filtered walk it replaces (measured when it was
                # made: a share of the walk's width); its answers never get worse when it arrives, and
                # where the walk would cost more than the exact scan above, the scan takes over
                share = float(sub.info.get("walk_width_share", 1.0))
                width = subindex_width(params.ef_for(k), scope.allowed / index.count, sub.count, share)
                walk = replace(params, ef=width)
                scores, ids = sub.search(ctx.queries, k, walk)
                return scores, np.where(ids >= 0, scope.filtered.rows[np.maximum(ids, 0)], -1)
        if not needs_refine(index.spec.index_type):
            return index.search(ctx.queries, k, params, allowed=mask)
        wide = index.search(ctx.queries, min(REFINE_FACTOR * k, max(k, index.count)), params, allowed=mask)
        return refine_topk(wide, ctx.exact_queries, _vectors(seg, ctx), k, ctx.metric)
    data = _vectors(seg, ctx)
    if mask is not None and scope.allowed <= GATHER_FRACTION * seg.num_rows:
        rows = np.flatnonzero(mask).astype(np.int64)
        return exact_knn(ctx.exact_queries, data[rows], k, ctx.metric, row_ids=rows)
    return exact_knn(ctx.exact_queries, data, k, ctx.metric, mask=mask)


def _gathered_name(ctx: SearchContext) -> str:
    return ctx.req.field_name + ("#unit" if ctx.metric is MetricType.COSINE else "")


def _subindex(scope: SegmentScope, ctx: SearchContext, index: VectorIndex) -> VectorIndex | None:
    filtered, cache = scope.filtered, scope.cache
    assert filtered is not None and cache is not None
    seg = scope.seg
    return cache.subindex(
        seg, ctx.plan, filtered, _gathered_name(ctx), index, lambda: _vectors(seg, ctx), ctx.queries
    )


def _gathered_knn(scope: SegmentScope, ctx: SearchContext, k: int) -> TopK:
    """Exact top-k over the filter's rows, gathered once and kept by the filter cache."""
    filtered, cache = scope.filtered, scope.cache
    assert filtered is not None and cache is not None
    data = cache.gathered(
        scope.seg, ctx.plan, filtered, _gathered_name(ctx), lambda: _vectors(scope.seg, ctx)
    )
    return exact_knn(ctx.exact_queries, data, k, ctx.metric, row_ids=filtered.rows)


def range_hits(scope: SegmentScope, ctx: SearchContext) -> RangeResult:
    seg, mask = scope.seg, scope.mask
    radius, range_filter = ctx.params.radius, ctx.params.range_filter
    assert radius is not None
    index = seg.indexes.get(ctx.req.field_name)
    if index is not None:
        found = index.range_search(
            ctx.queries, radius, range_filter, ctx.params_for(index.spec), allowed=mask
        )
        if not needs_refine(index.spec.index_type):
            return found
        return refine_range(found, ctx.exact_queries, _vectors(seg, ctx), radius, range_filter)
    data = _vectors(seg, ctx)
    if mask is not None and scope.allowed <= GATHER_FRACTION * seg.num_rows:
        rows = np.flatnonzero(mask).astype(np.int64)
        return exact_range(ctx.exact_queries, data[rows], ctx.metric, radius, range_filter, row_ids=rows)
    return exact_range(ctx.exact_queries, data, ctx.metric, radius, range_filter, mask=mask)


def _after_bound(
    keys: Keys, rows: Ids, seg: SegmentView, ctx: SearchContext, key_bound: float | None
) -> npt.NDArray[np.bool_]:
    """Which candidates come after the iterator's bound in (score, pk) order."""
    if key_bound is None:
        return np.ones(keys.shape, dtype=bool)
    ok = keys > key_bound
    tied = np.flatnonzero(keys == key_bound)
    after_pk = ctx.req.iterator_after_pk
    if len(tied) and after_pk is not None:
        pks = seg.pks.take(pa.array(rows.reshape(-1)[tied]))
        later = pc.greater(pks, pa.scalar(after_pk, pks.type))
        flat = ok.reshape(-1)
        flat[tied] = np.asarray(later.to_numpy(zero_copy_only=False), dtype=bool)
        ok = flat.reshape(keys.shape)
    return ok


def _flat(scores: np.ndarray, ids: Ids, keep: npt.NDArray[np.bool_], bound: Keys) -> SegmentHits:
    if keep.all():  # the usual case: every slot holds a hit
        nq, k = keep.shape
        return SegmentHits(
            np.repeat(np.arange(nq, dtype=np.int64), k),
            np.asarray(scores, dtype=np.float32).reshape(-1),
            np.asarray(ids, dtype=np.int64).reshape(-1),
            bound,
        )
    q, c = np.nonzero(keep)
    return SegmentHits(
        q.astype(np.int64), np.asarray(scores[q, c], dtype=np.float32), ids[q, c].astype(np.int64), bound
    )


def topk_hits(scope: SegmentScope, ctx: SearchContext, k: int) -> SegmentHits:
    """The best k allowed rows per query (restricted by range and iterator bound when asked)."""
    nq, metric = ctx.nq, ctx.metric
    k = max(1, min(k, scope.allowed))
    if scope.allowed == 0:
        return SegmentHits.empty(nq)
    key_bound = iterator_key_bound(ctx)
    if ctx.is_range:
        return _range_topk(scope, ctx, k, key_bound)
    if not ctx.is_iterator:
        scores, ids = knn(scope, ctx, k)
        valid = ids >= 0
        last_keys = metric.sort_key(scores[:, -1])
        exhausted = ~valid[:, -1] | (k >= scope.allowed)
        return _flat(scores, ids, valid, np.where(exhausted, np.inf, last_keys))
    kk = max(1, min(scope.allowed, k + ctx.req.iterator_skip))
    while True:
        scores, ids = knn(scope, ctx, kk)
        valid = ids >= 0
        keys = metric.sort_key(scores)
        ok = valid & _after_bound(keys, np.where(valid, ids, 0), scope.seg, ctx, key_bound)
        count = ok.sum(axis=1)
        exhausted = ~valid[:, -1] | (kk >= scope.allowed)
        # the k-th candidate after the bound, and whether the run of its ties may go on unseen
        ranks = np.cumsum(ok, axis=1)
        kth_col = np.argmax(ranks >= k, axis=1)
        kth_key = keys[np.arange(nq), kth_col]
        enough = (count >= k) & (kth_key < keys[:, -1])
        if bool(np.all(exhausted | enough)):
            break
        kk = min(scope.allowed, 2 * kk)
    return _flat(scores, ids, ok, np.where(exhausted, np.inf, keys[:, -1]))


def _range_topk(scope: SegmentScope, ctx: SearchContext, k: int, key_bound: float | None) -> SegmentHits:
    rr = range_hits(scope, ctx)
    nq, metric = ctx.nq, ctx.metric
    counts = rr.counts()
    qidx = np.repeat(np.arange(nq, dtype=np.int64), counts)
    keys = metric.sort_key(rr.scores)
    ok = _after_bound(keys, rr.ids, scope.seg, ctx, key_bound)
    qidx, scores, rows, keys = qidx[ok], rr.scores[ok], rr.ids[ok], keys[ok]
    # still best first within each query: keep the first k
    starts = np.searchsorted(qidx, np.arange(nq))
    rank = np.arange(len(qidx)) - starts[qidx]
    keep = rank < k
    per_query = np.bincount(qidx, minlength=nq)
    bound = np.full(nq, np.inf)
    full = np.flatnonzero(per_query > k)
    if len(full):
        bound[full] = keys[starts[full] + k - 1]
        if ctx.is_iterator:  # the whole run of scores tied with the k-th, so the shard orders it by pk
            keep |= keys <= bound[qidx]
    return SegmentHits(qidx[keep], scores[keep].astype(np.float32), rows[keep].astype(np.int64), bound)
