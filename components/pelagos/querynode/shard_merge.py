"""Merging the candidates of a channel's segments into the shard's answer, and gathering columns.

Invariants:
- Top-k: per query the k best candidates over all segments, best first;
  equal scores are ordered by primary key for the search iterator (so pages
  can resume after (score, pk)), otherwise by segment and row (stable).
- Primary keys and output columns are gathered segment by segment with one
  Arrow `take` each, then put back in hit order with one more `take`.
- One vectorised sort per merge; no Python loop over hits or queries.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.interfaces.roles import ShardSearchResult
from pelagos.querynode.search_context import SearchContext
from pelagos.querynode.segment_search import SegmentHits, SegmentScope
from pelagos.schema import CollectionSchema
from pelagos.schema.arrow import arrow_schema

Ids = npt.NDArray[np.int64]


class Candidates:
    """The candidates of every segment of a shard, concatenated."""

    def __init__(self, scopes: list[SegmentScope], hits: list[SegmentHits]) -> None:
        self.scopes = scopes
        self.seg_of = np.concatenate(
            [np.full(len(h.rows), i, dtype=np.int64) for i, h in enumerate(hits)] or [np.zeros(0, np.int64)]
        )
        self.qidx = np.concatenate([h.qidx for h in hits] or [np.zeros(0, np.int64)])
        self.scores = np.concatenate([h.scores for h in hits] or [np.zeros(0, np.float32)])
        self.rows = np.concatenate([h.rows for h in hits] or [np.zeros(0, np.int64)])

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str, which: Ids | None = None) -> pa.Array:
        """Column `name` of the chosen candidates (all when `which` is None), in that order."""
        return gather(self.scopes, self.seg_of, self.rows, [name], which).column(0).combine_chunks()

    def pks(self, which: Ids | None = None) -> pa.Array:
        seg_of = self.seg_of if which is None else self.seg_of[which]
        rows = self.rows if which is None else self.rows[which]
        return _gather_arrays([s.seg.pks for s in self.scopes], seg_of, rows)


def _gather_arrays(arrays: list[pa.Array], seg_of: Ids, rows: Ids) -> pa.Array:
    n = len(rows)
    order = np.argsort(seg_of, kind="stable")
    bounds = np.searchsorted(seg_of[order], np.arange(len(arrays) + 1))
    pieces = [
        arrays[i].take(pa.array(rows[order[bounds[i] : bounds[i + 1]]]))
        for i in range(len(arrays))
        if bounds[i + 1] > bounds[i]
    ]
    if not pieces:
        return arrays[0].slice(0, 0) if arrays else pa.array([], pa.int64())
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    return pa.concat_arrays(pieces).take(pa.array(back))


def gather(
    scopes: list[SegmentScope], seg_of: Ids, rows: Ids, columns: list[str], which: Ids | None = None
) -> pa.Table:
    """Columns of the rows (segment seg_of[i], offset rows[i]), in that order."""
    if which is not None:
        seg_of, rows = seg_of[which], rows[which]
    n = len(rows)
    order = np.argsort(seg_of, kind="stable")
    bounds = np.searchsorted(seg_of[order], np.arange(len(scopes) + 1))
    pieces = [
        scopes[i].seg.table.select(columns).take(pa.array(rows[order[bounds[i] : bounds[i + 1]]]))
        for i in range(len(scopes))
        if bounds[i + 1] > bounds[i]
    ]
    if not pieces:
        return empty_columns(scopes[0].seg.schema, columns) if scopes else pa.table({})
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    table = pa.concat_tables(pieces, promote_options="permissive") if len(pieces) > 1 else pieces[0]
    return table.take(pa.array(back))


def empty_columns(schema: CollectionSchema, columns: list[str]) -> pa.Table:
    target = arrow_schema(schema)
    return pa.table({c: pa.array([], target.field(c).type) for c in columns})


def pk_ranks(pks: pa.Array) -> npt.NDArray[np.int64]:
    """The rank of each primary key in ascending order (equal keys share no rank)."""
    return np.asarray(pc.rank(pks, sort_keys="ascending").to_numpy(), dtype=np.int64)


def empty_result(ctx: SearchContext, schema: CollectionSchema, pk_type: pa.DataType) -> ShardSearchResult:
    return ShardSearchResult(
        topks=np.zeros(ctx.nq, np.int64),
        pks=pa.array([], pk_type),
        scores=np.zeros(0, np.float32),
        fields=empty_columns(schema, ctx.req.output_fields) if ctx.req.output_fields else pa.table({}),
    )


def merge_topk(
    ctx: SearchContext, cands: Candidates, k: int, schema: CollectionSchema, pk_type: pa.DataType
) -> ShardSearchResult:
    nq = ctx.nq
    if len(cands) == 0:
        return empty_result(ctx, schema, pk_type)
    keys = ctx.metric.sort_key(cands.scores)
    all_pks: pa.Array | None = None
    if ctx.is_iterator:
        all_pks = cands.pks()
        order = np.lexsort((pk_ranks(all_pks), keys, cands.qidx))
    else:
        order = np.lexsort((cands.rows, cands.seg_of, keys, cands.qidx))
    q_sorted = cands.qidx[order]
    starts = np.searchsorted(q_sorted, np.arange(nq))
    rank = np.arange(len(order)) - starts[q_sorted]
    chosen = order[rank < k]
    topks = np.bincount(cands.qidx[chosen], minlength=nq).astype(np.int64)
    pks = all_pks.take(pa.array(chosen)) if all_pks is not None else cands.pks(chosen)
    fields = (
        gather(cands.scopes, cands.seg_of, cands.rows, ctx.req.output_fields, chosen)
        if ctx.req.output_fields
        else pa.table({})
    )
    return ShardSearchResult(
        topks=topks, pks=pks, scores=cands.scores[chosen].astype(np.float32), fields=fields
    )
