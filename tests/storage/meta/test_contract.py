"""The meta store contract, run against etcd and the in-memory store alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import pytest

from pelagos.errors import LeaseExpiredError, MetaStoreError
from pelagos.storage.meta.protocol import MetaStore, WatchEvent
from tests.fixtures.etcd import unique_root
from tests.storage.meta.conftest import StoreFactory

WAIT_S = 15.0  # upper bound for anything that should happen "soon"; never reached when green


async def take(watch: AsyncGenerator[WatchEvent, None], n: int) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async with asyncio.timeout(WAIT_S):
        async for event in watch:
            out.append(event)
            if len(out) == n:
                break
    return out


async def next_revision(store: MetaStore) -> int:
    _, revision = await store.range_with_revision("")
    return revision + 1


async def test_put_get_delete(store: MetaStore) -> None:
    assert await store.get("a") is None
    r1 = await store.put("a", b"1")
    r2 = await store.put("a", b"2")
    assert r2 > r1
    kv = await store.get("a")
    assert kv is not None
    assert (kv.key, kv.value, kv.mod_revision) == ("a", b"2", r2)
    assert await store.put("empty", b"") > r2
    empty = await store.get("empty")
    assert empty is not None and empty.value == b""
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None


async def test_range_is_sorted_and_bounded_by_prefix(store: MetaStore) -> None:
    for key in ["a/3", "b/1", "a/1", "ab", "a/2", "a"]:
        await store.put(key, key.encode())
    got = await store.range("a/")
    assert [kv.key for kv in got] == ["a/1", "a/2", "a/3"]
    assert [kv.value for kv in got] == [b"a/1", b"a/2", b"a/3"]
    assert [kv.key for kv in await store.range("")] == ["a", "a/1", "a/2", "a/3", "ab", "b/1"]
    assert await store.range("zz") == []
    last = await store.put("c", b"")
    items, revision = await store.range_with_revision("a/")
    assert len(items) == 3 and revision >= last


async def test_range_pages_through_many_keys(store: MetaStore) -> None:
    # more keys than one etcd page, written in transactions of 100 (etcd allows 128 ops)
    keys = [f"many/{i:05d}" for i in range(1100)]
    for start in range(0, len(keys), 100):
        assert await store.transaction(puts={k: k.encode() for k in keys[start : start + 100]})
    got = await store.range("many/")
    assert [kv.key for kv in got] == keys
    assert all(kv.value == kv.key.encode() for kv in got)


async def test_delete_prefix(store: MetaStore) -> None:
    for key in ["p/1", "p/2", "p/x/3", "q/1", "p"]:
        await store.put(key, b"v")
    assert await store.delete_prefix("p/") == 3
    assert [kv.key for kv in await store.range("")] == ["p", "q/1"]
    assert await store.delete_prefix("p/") == 0


async def test_roots_isolate_stores(make_store: StoreFactory) -> None:
    root = unique_root()
    one = await make_store(root)
    # a root that extends the other's name must still be separate
    two = await make_store(root + "x")
    await one.put("k", b"one")
    await two.put("k", b"two")
    await two.put("only-two", b"2")
    assert [(kv.key, kv.value) for kv in await one.range("")] == [("k", b"one")]
    assert [(kv.key, kv.value) for kv in await two.range("")] == [("k", b"two"), ("only-two", b"2")]
    assert await one.delete_prefix("") == 1
    assert await one.get("k") is None
    two_k = await two.get("k")
    assert two_k is not None and two_k.value == b"two"
    # a second client on the same root sees the same keys
    again = await make_store(root + "x")
    assert [kv.key for kv in await again.range("")] == ["k", "only-two"]


async def test_compare_and_swap(store: MetaStore) -> None:
    assert await store.compare_and_swap("c", None, b"1") is True
    assert await store.compare_and_swap("c", None, b"x") is False
    assert await store.compare_and_swap("c", b"0", b"x") is False
    assert await store.compare_and_swap("c", b"1", b"2") is True
    kv = await store.get("c")
    assert kv is not None and kv.value == b"2"
    assert await store.compare_and_swap("missing", b"", b"x") is False
    assert await store.get("missing") is None
    assert await store.compare_and_swap("c", b"2", None) is True
    assert await store.get("c") is None


async def test_compare_and_swap_loses_to_a_concurrent_writer(make_store: StoreFactory) -> None:
    root = unique_root()
    mine, theirs = await make_store(root), await make_store(root)
    await mine.put("owner", b"me")
    seen = await mine.get("owner")
    assert seen is not None
    await theirs.put("owner", b"them")
    assert await mine.compare_and_swap("owner", seen.value, b"me again") is False
    now = await mine.get("owner")
    assert now is not None and now.value == b"them"


async def test_compare_and_swap_counter_under_contention(make_store: StoreFactory) -> None:
    root = unique_root()
    clients = [await make_store(root) for _ in range(4)]
    await clients[0].put("counter", b"0")
    per_task = 5

    async def bump(store: MetaStore) -> int:
        losses = 0
        for _ in range(per_task):
            while True:
                kv = await store.get("counter")
                assert kv is not None
                if await store.compare_and_swap("counter", kv.value, str(int(kv.value) + 1).encode()):
                    break
                losses += 1
        return losses

    await asyncio.gather(*(bump(c) for c in clients for _ in range(2)))
    final = await clients[0].get("counter")
    assert final is not None and int(final.value) == per_task * 2 * len(clients)


async def test_transaction_applies_all_or_nothing(store: MetaStore) -> None:
    ra = await store.put("a", b"a0")
    await store.put("d", b"doomed")
    applied = await store.transaction(
        expect_revisions={"a": ra, "b": 0}, puts={"a": b"a1", "c": b"c1"}, deletes=["d"]
    )
    assert applied is True
    a, c = await store.get("a"), await store.get("c")
    assert a is not None and c is not None
    assert (a.value, c.value) == (b"a1", b"c1")
    assert a.mod_revision == c.mod_revision  # one revision for the whole transaction
    assert await store.get("d") is None

    # stale revision for "a": nothing happens
    assert (
        await store.transaction(expect_revisions={"a": ra}, puts={"c": b"c2", "e": b"e"}, deletes=["a"])
        is False
    )
    # "c" exists, so expecting it absent fails too
    assert await store.transaction(expect_revisions={"c": 0}, puts={"e": b"e"}) is False
    assert (await store.get("a")) == a
    assert (await store.get("c")) == c
    assert await store.get("e") is None

    with pytest.raises(MetaStoreError):
        await store.transaction(puts={"x": b"1"}, deletes=["x"])
    assert await store.get("x") is None


async def test_expired_lease_deletes_its_keys_and_keep_alive_holds(store: MetaStore) -> None:
    start = await next_revision(store)
    short = await store.grant_lease(1, keep_alive=False)
    kept = await store.grant_lease(1, keep_alive=True)
    assert short.ttl >= 1 and kept.ttl >= 1
    await store.put("lease/short", b"s", lease=short)
    await store.put("lease/kept", b"k", lease=kept)
    watch = store.watch_prefix("lease/", start_revision=start)
    events = await take(watch, 3)
    assert [(e.kind, e.key) for e in events] == [
        ("put", "lease/short"),
        ("put", "lease/kept"),
        ("delete", "lease/short"),
    ]
    await watch.aclose()
    assert await store.get("lease/short") is None
    assert short.alive is False
    with pytest.raises(LeaseExpiredError):
        await short.refresh()
    with pytest.raises(LeaseExpiredError):
        await store.put("lease/again", b"x", lease=short)
    # without keep-alive "kept" would have gone in the same sweep; give it time to
    await asyncio.sleep(kept.ttl / 2)
    assert kept.alive is True
    assert await store.get("lease/kept") is not None
    await kept.refresh()
    await kept.revoke()
    assert kept.alive is False


async def test_revoke_deletes_keys_at_once(store: MetaStore) -> None:
    lease = await store.grant_lease(30)
    assert lease.alive
    await store.put("r/1", b"1", lease=lease)
    await store.put("r/2", b"2", lease=lease)
    await store.put("r/free", b"f")
    assert await store.compare_and_swap("r/3", None, b"3", lease=lease)
    await lease.revoke()
    assert lease.alive is False
    assert [kv.key for kv in await store.range("r/")] == ["r/free"]
    await lease.revoke()  # idempotent
    with pytest.raises(LeaseExpiredError):
        await lease.refresh()
    with pytest.raises(LeaseExpiredError):
        await store.put("r/4", b"4", lease=lease)


async def test_rewriting_a_key_without_its_lease_detaches_it(store: MetaStore) -> None:
    lease = await store.grant_lease(30, keep_alive=False)
    await store.put("detach", b"leased", lease=lease)
    await store.put("detach", b"free")
    await lease.revoke()
    kv = await store.get("detach")
    assert kv is not None and kv.value == b"free"


async def test_watch_sees_puts_and_deletes_in_order(store: MetaStore) -> None:
    start = await next_revision(store)
    watch = store.watch_prefix("w/", start_revision=start)
    r1 = await store.put("w/a", b"1")
    r2 = await store.put("w/b", b"2")
    await store.put("other", b"not watched")
    assert await store.delete("w/a")
    await store.transaction(puts={"w/c": b"3"}, deletes=["w/b"])
    events = await take(watch, 5)
    assert [(e.kind, e.key, e.value) for e in events] == [
        ("put", "w/a", b"1"),
        ("put", "w/b", b"2"),
        ("delete", "w/a", None),
        ("put", "w/c", b"3"),
        ("delete", "w/b", None),
    ]
    assert events[0].revision == r1 and events[1].revision == r2
    assert events[3].revision == events[4].revision > events[2].revision > r2
    await watch.aclose()

    # a watch from a past revision replays history from there
    replay = store.watch_prefix("w/", start_revision=r2)
    assert [(e.kind, e.key) for e in await take(replay, 2)] == [("put", "w/b"), ("delete", "w/a")]
    await replay.aclose()


async def test_watch_from_now_sees_later_changes(store: MetaStore) -> None:
    await store.put("now/old", b"old")
    watch = store.watch_prefix("now/")
    first = asyncio.ensure_future(anext(watch))
    # the watch is set up once iteration started; keep writing until it shows up
    for i in range(200):
        await store.put(f"now/{i}", b"new")
        done, _ = await asyncio.wait({first}, timeout=0.05)
        if done:
            break
    event = await asyncio.wait_for(first, WAIT_S)
    assert event.kind == "put" and event.key.startswith("now/") and event.key != "now/old"
    await watch.aclose()


async def test_watch_stops_cleanly(store: MetaStore) -> None:
    start = await next_revision(store)
    async with contextlib.aclosing(store.watch_prefix("s/", start_revision=start)) as watch:
        await store.put("s/1", b"1")
        async for event in watch:
            assert event.key == "s/1"
            break
    # the store still works after the consumer stopped iterating
    await store.put("s/2", b"2")
    assert [kv.key for kv in await store.range("s/")] == ["s/1", "s/2"]


async def test_closing_the_store_ends_its_watches(make_store: StoreFactory) -> None:
    store = await make_store(unique_root())
    start = await next_revision(store)
    watch = store.watch_prefix("x/", start_revision=start)
    await store.put("x/1", b"1")
    assert [e.key for e in await take(watch, 1)] == ["x/1"]
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, WAIT_S)
    with pytest.raises(MetaStoreError):
        await store.get("x/1")
