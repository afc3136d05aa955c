"""SearchMerger: concurrent searches of one shape run as one batch; each gets its own hits."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from pelagos.interfaces.hit_keys import keys_list
from pelagos.interfaces.roles import ShardSearch, ShardSearchResult
from pelagos.querynode import merged_search
from pelagos.querynode.merged_search import SearchMerger, split


def req(vectors: np.ndarray, **kw: Any) -> ShardSearch:
    return ShardSearch(
        collection_id=1, channel="ch", partition_ids=[], vectors=vectors, field_name="v", limit=3,
        metric_type="L2", params=kw.pop("params", {"ef": 8}), filter=kw.pop("filter", ""),
        filter_params={}, output_fields=["pk"], read_ts=0, guarantee_ts=kw.pop("guarantee_ts", 5), **kw,
    )  # fmt: skip


class Engine:
    """Answers each query q with hits (q*10, q*10+1, ...): query i's first vector value is q."""

    def __init__(self) -> None:
        self.calls: list[ShardSearch] = []
        self.fail: Exception | None = None

    async def run(self, r: ShardSearch) -> ShardSearchResult:
        self.calls.append(r)
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        qs = r.vectors[:, 0].astype(np.int64)
        per = np.minimum(qs % 4, r.limit)  # a varying number of hits per query
        pks = np.concatenate([q * 10 + np.arange(n) for q, n in zip(qs, per, strict=True)] or [[]]).astype(
            np.int64
        )
        return ShardSearchResult(
            topks=per, pks=pks, scores=pks.astype(np.float32) / 10, fields=pa.table({"n": pks * 2})
        )


def queries(*values: int) -> np.ndarray:
    return np.array([[v, 0.0] for v in values], dtype=np.float32)


@pytest.fixture
def always_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merged_search, "PROBE_EVERY", 1)


async def test_searches_that_arrive_together_share_one_run(always_merge: None) -> None:
    engine, merger = Engine(), SearchMerger()
    asks = [req(queries(1, 2)), req(queries(3)), req(queries(5, 6, 7), guarantee_ts=9)]
    results = await asyncio.gather(*(merger.search(r, engine.run) for r in asks))
    assert len(engine.calls) == 1
    assert engine.calls[0].vectors[:, 0].tolist() == [1, 2, 3, 5, 6, 7]
    assert engine.calls[0].guarantee_ts == 9  # the strictest guarantee of the batch
    alone = [await Engine().run(r) for r in asks]
    for got, want in zip(results, alone, strict=True):
        assert got.topks.tolist() == want.topks.tolist()
        assert keys_list(got.pks) == keys_list(want.pks)
        assert got.scores.tolist() == want.scores.tolist()
        assert got.fields.to_pydict() == want.fields.to_pydict()
    assert merger.merging


async def test_other_shapes_grouping_and_iterators_do_not_merge(always_merge: None) -> None:
    engine, merger = Engine(), SearchMerger()
    asks = [
        req(queries(1)),
        req(queries(2)),
        req(queries(3), params={"ef": 16}),
        req(queries(4), filter="pk > 1"),
        req(queries(5), group_by_field="g"),
        req(queries(6), iterator=True),
    ]
    await asyncio.gather(*(merger.search(r, engine.run) for r in asks))
    sizes = sorted(len(c.vectors) for c in engine.calls)
    assert sizes == [1, 1, 1, 1, 2]  # only the first two share a shape


async def test_a_failing_batch_fails_every_member(always_merge: None) -> None:
    engine, merger = Engine(), SearchMerger()
    engine.fail = ValueError("boom")
    results = await asyncio.gather(
        *(merger.search(req(queries(i)), engine.run) for i in range(3)), return_exceptions=True
    )
    assert [type(r) for r in results] == [ValueError] * 3


async def test_a_cancelled_search_does_not_cancel_the_others(always_merge: None) -> None:
    engine, merger = Engine(), SearchMerger()
    lead = asyncio.ensure_future(merger.search(req(queries(1)), engine.run))
    others = [asyncio.ensure_future(merger.search(req(queries(i)), engine.run)) for i in (2, 3)]
    await asyncio.sleep(0)
    lead.cancel()
    done = await asyncio.gather(*others)
    assert [keys_list(d.pks) for d in done] == [[20, 21], [30, 31, 32]]


async def test_a_lone_client_stops_waiting_and_a_crowd_starts_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(merged_search, "PROBE_EVERY", 4)
    monkeypatch.setattr(merged_search, "SOLO_TO_STOP", 3)
    engine, merger = Engine(), SearchMerger()
    merger.merging = True
    for i in range(3):
        await merger.search(req(queries(i)), engine.run)
    assert not merger.merging
    for _ in range(8):  # probes find company and turn merging back on
        await asyncio.gather(*(merger.search(req(queries(i)), engine.run) for i in range(4)))
        if merger.merging:
            break
    assert merger.merging


def test_split_cuts_hits_by_query() -> None:
    result = ShardSearchResult(
        topks=np.array([2, 0, 1, 3]),
        pks=np.array([1, 2, 3, 4, 5, 6]),
        scores=np.arange(6, dtype=np.float32),
        fields=pa.table({"n": [10, 20, 30, 40, 50, 60]}),
    )
    a, b = split(result, [1, 3])
    assert (a.topks.tolist(), keys_list(a.pks), a.scores.tolist()) == ([2], [1, 2], [0.0, 1.0])
    assert (b.topks.tolist(), keys_list(b.pks), b.fields.column("n").to_pylist()) == (
        [0, 1, 3],
        [3, 4, 5, 6],
        [30, 40, 50, 60],
    )


async def test_searches_behind_a_probe_join_it_and_a_lone_search_never_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(merged_search, "PROBE_EVERY", 3)
    engine, merger = Engine(), SearchMerger()
    await merger.search(req(queries(1)), engine.run)  # not a probe, nobody waiting: runs alone
    await merger.search(req(queries(2)), engine.run)
    assert [len(c.vectors) for c in engine.calls] == [1, 1]
    # the third search probes; the two queued right behind it join although they are no probes
    await asyncio.gather(*(merger.search(req(queries(i)), engine.run) for i in (3, 4, 5)))
    assert [len(c.vectors) for c in engine.calls] == [1, 1, 3]
    assert merger.merging
