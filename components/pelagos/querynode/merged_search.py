"""Searches of one shape that arrive together run as one batch (Milvus's query node merges
search tasks the same way).

With several clients (or client threads) searching at once, requests queue
up behind the one being served; each would pay the same preparation,
segment scoping and result assembly, and make its own faiss call. Here the
first search of a shape on a channel leads: it yields one turn of the event
loop, so that the searches queued right behind it can join, then searches
all of their queries in one call and hands each its part. Waiting that
turn costs a lone client a few percent of its rate, so searches only wait
while merging pays: one search in PROBE_EVERY waits to find out, any batch
with members turns waiting on, and SOLO_TO_STOP waits in a row that found
nobody turn it off again.

Invariants:
- only searches whose answers do not depend on each other are merged: same
  channel, field, metric, params, limit, filter and its values, partitions,
  output fields and growing-data switch; grouping and iterator searches run
  alone;
- the batch waits for the strictest consistency guarantee among its members,
  which satisfies every one of them;
- every member gets exactly the hits of its own queries, in order, as if it
  had searched alone: per-query results do not depend on the other queries
  of a batch;
- a failure of the batch is every member's failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import numpy as np

from pelagos.interfaces.keys import frozen
from pelagos.interfaces.roles import ShardSearch, ShardSearchResult
from pelagos.querynode import metrics

Run = Callable[[ShardSearch], Awaitable[ShardSearchResult]]

#: at most this many queries in one merged batch
MAX_MERGED_QUERIES = 256
#: while not merging, one search in this many waits a turn to see whether others would join it
PROBE_EVERY = 16
#: while merging, this many lone batches in a row stop the waiting
SOLO_TO_STOP = 32


def shape_of(req: ShardSearch) -> tuple[Any, ...] | None:
    """What must be equal for two searches to run as one; None for searches that never merge."""
    if req.group_by_field or req.iterator:
        return None
    return (
        req.channel,
        req.field_name,
        req.metric_type,
        req.limit,
        req.filter,
        req.ignore_growing,
        tuple(req.partition_ids),
        tuple(req.output_fields),
        frozen(req.params),
        frozen(req.filter_params),
        req.vectors.dtype.str,
    )


Member = tuple[ShardSearch, "asyncio.Future[ShardSearchResult] | None"]


class SearchMerger:
    def __init__(self) -> None:
        self._open: dict[tuple[Any, ...], list[Member]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self.merging = False
        self._searches = 0
        self._lone = 0

    def _spawn(self, members: list[Member], run: Run) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(members, run))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def search(self, req: ShardSearch, run: Run) -> ShardSearchResult:
        self._searches += 1
        may_lead = self.merging or not self._searches % PROBE_EVERY
        if not may_lead and not self._open:
            return await run(req)  # a lone client: no shape to compute, no turn to wait
        key = shape_of(req)
        if key is None:
            return await run(req)
        loop = asyncio.get_running_loop()
        members = self._open.get(key)
        if (
            members is not None
            and len(req.vectors) + sum(len(m.vectors) for m, _ in members) <= MAX_MERGED_QUERIES
        ):
            future: asyncio.Future[ShardSearchResult] = loop.create_future()
            members.append((req, future))
            return await future
        if not may_lead:  # only joins batches others lead
            return await run(req)
        members = self._open[key] = [(req, None)]
        try:
            await asyncio.sleep(0)  # one turn of the loop: searches queued behind this one join
        except BaseException:
            if len(members) > 1:  # this search is gone, the ones that joined it are not
                self._spawn(members[1:], run)
            raise
        finally:
            if self._open.get(key) is members:
                del self._open[key]
        if len(members) == 1:
            self._lone += 1
            if self._lone >= SOLO_TO_STOP:
                self.merging = False
            return await run(req)
        self.merging, self._lone = True, 0
        own: asyncio.Future[ShardSearchResult] = loop.create_future()
        members[0] = (req, own)
        self._spawn(members, run)  # its own task: no member's cancellation stops it
        return await own

    @staticmethod
    async def _serve(members: list[Member], run: Run) -> None:
        futures = [f for _, f in members]
        try:
            reqs = [m for m, _ in members]
            merged = replace(
                reqs[0],
                vectors=np.concatenate([r.vectors for r in reqs]),
                guarantee_ts=max(r.guarantee_ts for r in reqs),
            )
            parts = split(await run(merged), [len(r.vectors) for r in reqs])
        except asyncio.CancelledError:
            for f in futures:
                if f is not None and not f.done():
                    f.cancel()
            raise
        except Exception as exc:
            for f in futures:
                if f is not None and not f.done():
                    f.set_exception(exc)
            return
        for f, part in zip(futures, parts, strict=True):
            if f is not None and not f.done():
                f.set_result(part)
        metrics.MERGED.inc(len(members))


def split(result: ShardSearchResult, query_counts: list[int]) -> list[ShardSearchResult]:
    """The result of a merged search cut back into its members' results (queries in order)."""
    topks = np.asarray(result.topks, dtype=np.int64)
    hit_ends = np.concatenate([[0], np.cumsum(topks)])
    out: list[ShardSearchResult] = []
    q = 0
    for n in query_counts:
        lo, hi = int(hit_ends[q]), int(hit_ends[q + n])
        out.append(
            ShardSearchResult(
                topks=topks[q : q + n],
                pks=result.pks[lo:hi],
                scores=result.scores[lo:hi],
                fields=result.fields.slice(lo, hi - lo) if result.fields.num_columns else result.fields,
                group_values=None,
                unseen_bound=None if result.unseen_bound is None else result.unseen_bound[q : q + n],
            )
        )
        q += n
    return out
