"""Reducing the answers of several shards into the global answer of a search.

Invariants:
- Each shard answers with its own exact top-k (k = limit + offset), so the
  best `limit + offset` of their union are the global ones; `offset` then
  drops the first hits of each query.
- Equal scores: ordered by primary key for the search iterator (pages resume
  after (score, pk)), otherwise by shard then by the shard's own order.
- Grouping: groups are merged with index/grouping.select_groups; when a
  shard may still hold hits that would change the answer (its unseen bound
  says so), it is asked again for four times as many groups, so the global
  grouping is exact; `offset` skips whole groups.
- One vectorised sort per reduction; no Python loop over hits or queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pelagos.index.grouping import group_codes, select_groups
from pelagos.index.kinds import MetricType
from pelagos.interfaces.hit_keys import HitKeys, concat_keys, key_ranks, take_keys
from pelagos.interfaces.roles import ShardSearchResult
from pelagos.interfaces.types import NO_FIELDS

Ids = npt.NDArray[np.int64]
#: a shard is never asked for more groups than this while proving a grouping exact
MAX_SHARD_GROUPS = 1 << 20
WIDEN_FACTOR = 4


@dataclass(slots=True)
class Reduced:
    topks: Ids
    pks: HitKeys
    scores: npt.NDArray[np.float32]
    fields: pa.Table
    group_values: pa.Array | None = None


class Concatenated:
    """The hits of several shard answers as one flat list."""

    def __init__(self, parts: list[ShardSearchResult], nq: int) -> None:
        self.parts = parts
        self.qidx = np.concatenate(
            [np.repeat(np.arange(nq, dtype=np.int64), np.asarray(p.topks, dtype=np.int64)) for p in parts]
        )
        self.part_of = np.concatenate(
            [np.full(len(p.scores), i, dtype=np.int64) for i, p in enumerate(parts)]
        )
        self.position = np.concatenate([np.arange(len(p.scores), dtype=np.int64) for p in parts])
        self.scores = np.concatenate([np.asarray(p.scores, dtype=np.float32) for p in parts])
        self.pks = concat_keys([p.pks for p in parts])

    def fields(self, chosen: Ids) -> pa.Table:
        tables = [p.fields for p in self.parts]
        if not any(t.num_columns for t in tables):  # nothing asked but (perhaps) the keys
            return NO_FIELDS
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        return table.take(pa.array(chosen))


def reduce_topk(
    parts: list[ShardSearchResult],
    nq: int,
    limit: int,
    offset: int,
    metric: MetricType,
    *,
    pk_order: bool = False,
) -> Reduced:
    """Per query, hits offset .. offset + limit of the union of the shards' answers."""
    if len(parts) == 1 and offset == 0 and not pk_order:
        only = parts[0]  # one shard: its hits are already the best first, at most `limit` per query
        if not len(only.topks) or int(only.topks.max()) <= limit:
            return Reduced(
                topks=np.asarray(only.topks, dtype=np.int64),
                pks=only.pks,
                scores=only.scores,
                fields=only.fields,
            )
    cat = Concatenated(parts, nq)
    keys = metric.sort_key(cat.scores)
    if pk_order:
        order = np.lexsort((key_ranks(cat.pks), keys, cat.qidx))
    else:
        order = np.lexsort((cat.position, cat.part_of, keys, cat.qidx))
    q_sorted = cat.qidx[order]
    starts = np.searchsorted(q_sorted, np.arange(nq))
    rank = np.arange(len(order)) - starts[q_sorted]
    chosen = order[(rank >= offset) & (rank < offset + limit)]
    return Reduced(
        topks=np.bincount(cat.qidx[chosen], minlength=nq).astype(np.int64),
        pks=take_keys(cat.pks, chosen),
        scores=cat.scores[chosen],
        fields=cat.fields(chosen),
    )


async def reduce_groups(
    ask: Callable[[int, int], Awaitable[ShardSearchResult]],
    n_shards: int,
    nq: int,
    limit: int,
    offset: int,
    group_size: int,
    metric: MetricType,
) -> Reduced:
    """The exact grouping over every shard: `ask(shard, groups)` searches one shard."""
    wanted = limit + offset
    asked = [wanted] * n_shards
    parts = list(await asyncio.gather(*(ask(i, asked[i]) for i in range(n_shards))))
    while True:
        cat = Concatenated(parts, nq)
        values = pa.concat_arrays([_group_values(p) for p in parts])
        unseen = np.min(np.stack([_bound(p, nq) for p in parts]), axis=0)
        sel = select_groups(
            cat.qidx, metric.sort_key(cat.scores), group_codes(values), nq, wanted, group_size, unseen
        )
        unproven = ~sel.proven
        if not unproven.any():
            break
        widen = [
            i
            for i, p in enumerate(parts)
            if asked[i] < MAX_SHARD_GROUPS and (~np.isposinf(_bound(p, nq)[unproven])).any()
        ]
        if not widen:
            break
        for i in widen:
            asked[i] = min(MAX_SHARD_GROUPS, WIDEN_FACTOR * asked[i])
        again = await asyncio.gather(*(ask(i, asked[i]) for i in widen))
        for i, p in zip(widen, again, strict=True):
            parts[i] = p
    chosen = sel.chosen[sel.chosen_group_rank >= offset]
    return Reduced(
        topks=np.bincount(cat.qidx[chosen], minlength=nq).astype(np.int64),
        pks=take_keys(cat.pks, chosen),
        scores=cat.scores[chosen],
        fields=cat.fields(chosen),
        group_values=values.take(pa.array(chosen)),
    )


def _group_values(p: ShardSearchResult) -> pa.Array:
    if p.group_values is None:
        raise AssertionError("a shard answered a grouping search without group values")
    return p.group_values


def _bound(p: ShardSearchResult, nq: int) -> npt.NDArray[np.float64]:
    if p.unseen_bound is None:
        return np.full(nq, np.inf)
    return np.asarray(p.unseen_bound, dtype=np.float64)
