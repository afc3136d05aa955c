"""The timestamp oracle: logic on the in-memory store, then against real etcd."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pelagos.coordinator.tso import LOGICAL_LIMIT, TimestampOracle, compose_ts, parse_ts
from pelagos.errors import InvalidArgumentError, ServiceUnavailableError, StorageError, StoreUnavailableError
from pelagos.runtime.servers.etcd import EtcdServer
from pelagos.storage.meta.etcd import EtcdMetaStore
from pelagos.storage.meta.memory import MemoryMetaStore
from pelagos.storage.meta.protocol import MetaStore
from tests.fixtures.etcd import unique_root

WAIT_S = 15.0
KEY = "tso/upper"


class FakeClock:
    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def memory_meta() -> AsyncIterator[MemoryMetaStore]:
    store = MemoryMetaStore(root=unique_root())
    yield store
    await store.close()


async def stored_upper(meta: MetaStore) -> int:
    kv = await meta.get(KEY)
    assert kv is not None
    return int(kv.value.split()[0])


async def until(predicate: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_compose_and_parse() -> None:
    for physical, logical in [(0, 0), (1, 0), (1_700_000_000_123, 5), (2**40, LOGICAL_LIMIT - 1)]:
        ts = compose_ts(physical, logical)
        assert ts == physical * LOGICAL_LIMIT + logical
        assert parse_ts(ts) == (physical, logical)
    assert compose_ts(7, LOGICAL_LIMIT - 1) < compose_ts(8, 0)
    with pytest.raises(InvalidArgumentError):
        compose_ts(1, LOGICAL_LIMIT)
    with pytest.raises(InvalidArgumentError):
        compose_ts(1, -1)
    with pytest.raises(InvalidArgumentError):
        parse_ts(-5)


async def test_every_timestamp_is_under_a_bound_persisted_before(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock()
    tso = TimestampOracle(memory_meta, window_ms=100, clock=clock, renew_interval_s=3600)
    await tso.start()
    last = -1
    for step in [0, 0, 1, 50, 99, 250, 0, 1000, 3]:
        clock.now += step
        ts = await tso.allocate()
        physical, _ = parse_ts(ts)
        assert ts > last
        assert physical < await stored_upper(memory_meta)
        assert physical < tso.upper_bound_ms
        last = ts
    assert tso.last_issued == last
    await tso.close()


async def test_consecutive_counts_and_same_millisecond(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock()
    tso = TimestampOracle(memory_meta, clock=clock)
    first = await tso.allocate(10)
    second = await tso.allocate(1)
    assert parse_ts(first) == (clock.now, 0)
    assert second == first + 10
    clock.now += 1
    assert parse_ts(await tso.allocate()) == (clock.now, 0)
    await tso.close()


async def test_clock_going_backwards_keeps_the_last_millisecond(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock(10_000_000)
    tso = TimestampOracle(memory_meta, clock=clock)
    t1 = await tso.allocate()
    clock.now -= 5_000
    t2 = await tso.allocate(3)
    clock.now -= 1
    t3 = await tso.allocate()
    assert t1 < t2 < t3
    assert parse_ts(t2) == (10_000_000, 1)
    assert parse_ts(t3) == (10_000_000, 4)
    clock.now = 10_000_002
    assert parse_ts(await tso.allocate()) == (10_000_002, 0)
    await tso.close()


async def test_full_logical_counter_moves_to_the_next_millisecond(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock()
    tso = TimestampOracle(memory_meta, clock=clock)
    first = await tso.allocate(LOGICAL_LIMIT - 1)
    assert parse_ts(first) == (clock.now, 0)
    second = await tso.allocate(2)  # does not fit in this millisecond
    assert parse_ts(second) == (clock.now + 1, 0)
    assert second > first + LOGICAL_LIMIT - 2
    whole = await tso.allocate(LOGICAL_LIMIT)
    assert parse_ts(whole) == (clock.now + 2, 0)
    with pytest.raises(InvalidArgumentError):
        await tso.allocate(LOGICAL_LIMIT + 1)
    with pytest.raises(InvalidArgumentError):
        await tso.allocate(0)
    await tso.close()


async def test_restart_issues_only_larger_timestamps(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock()
    first = TimestampOracle(memory_meta, clock=clock)
    issued = [await first.allocate(5) for _ in range(10)]
    bound = first.upper_bound_ms
    await first.close()
    # the successor's clock is far behind: it must still start above the bound
    second = TimestampOracle(memory_meta, clock=FakeClock(clock.now - 60_000))
    await second.start()
    ts = await second.allocate()
    assert ts > max(issued) + 4
    assert parse_ts(ts) == (bound, 0)
    await second.close()


async def test_bound_is_renewed_ahead_of_need(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock()
    tso = TimestampOracle(memory_meta, window_ms=300, clock=clock, renew_interval_s=0.005)
    await tso.start()
    before = await stored_upper(memory_meta)
    clock.now += 150  # half the window used up, nothing allocated

    async def renewed() -> bool:
        return await stored_upper(memory_meta) >= clock.now + 300

    await until(renewed)
    assert await stored_upper(memory_meta) > before
    await tso.close()


async def test_an_oracle_that_lost_the_key_is_fenced(memory_meta: MemoryMetaStore) -> None:
    clock = FakeClock()
    old = TimestampOracle(memory_meta, window_ms=100, clock=clock, renew_interval_s=3600)
    issued_old = [await old.allocate()]
    new = TimestampOracle(memory_meta, window_ms=100, clock=clock, renew_interval_s=3600)
    issued_new = [await new.allocate()]
    with pytest.raises(ServiceUnavailableError, match="another timestamp oracle"):
        for _ in range(1000):
            clock.now += 7
            issued_old.append(await old.allocate())
            issued_new.append(await new.allocate())
    with pytest.raises(ServiceUnavailableError):
        await old.allocate()
    assert max(issued_old) < min(issued_new)
    assert len(set(issued_old) | set(issued_new)) == len(issued_old) + len(issued_new)
    await old.close()
    await new.close()


# --- against etcd --------------------------------------------------------------------


async def test_concurrent_allocations_are_distinct_and_increasing(meta_store: EtcdMetaStore) -> None:
    tso = TimestampOracle(meta_store, window_ms=50)  # short window: renewals interleave with allocations
    await tso.start()
    rng = random.Random(7)

    async def caller() -> list[tuple[int, int]]:
        got = []
        for _ in range(25):
            count = rng.randint(1, 4)
            got.append((await tso.allocate(count), count))
            await asyncio.sleep(0)
        return got

    results = await asyncio.gather(*(caller() for _ in range(20)))
    everything: list[int] = []
    for got in results:
        firsts = [first for first, _ in got]
        assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
        for first, count in got:
            everything.extend(range(first, first + count))
    assert len(everything) == len(set(everything))
    assert parse_ts(max(everything))[0] < await stored_upper(meta_store)
    await tso.close()


async def test_racing_oracles_never_overlap(etcd_server: EtcdServer) -> None:
    root = unique_root()
    stores = [await EtcdMetaStore.connect(etcd_server.endpoint, root=root) for _ in range(2)]
    oracles = [TimestampOracle(store, window_ms=20, renew_interval_s=0.005) for store in stores]
    issued: list[list[int]] = [[], []]
    fenced = [False, False]

    async def run(i: int) -> None:
        try:
            await oracles[i].start()
            for _ in range(300):
                issued[i].append(await oracles[i].allocate())
                await asyncio.sleep(0.001)
        except ServiceUnavailableError:
            fenced[i] = True

    try:
        # the second one takes over while the first is issuing
        first = asyncio.create_task(run(0))
        await asyncio.sleep(0.05)
        await run(1)
        await first
    finally:
        for oracle in oracles:
            await oracle.close()
        for store in stores:
            await store.close()
    # whichever wrote the bound last owns it; the other is fenced, and nothing overlaps
    assert fenced.count(True) == 1
    assert issued[fenced.index(False)]
    assert set(issued[0]).isdisjoint(issued[1])


async def test_timestamps_keep_increasing_across_an_etcd_restart(
    etcd_factory: Callable[[], EtcdServer],
) -> None:
    server = etcd_factory()
    root = unique_root()
    meta = await EtcdMetaStore.connect(server.endpoint, root=root, timeout=1.0)
    wall_clock = int(time.time() * 1000)
    clock = FakeClock(wall_clock)
    tso = TimestampOracle(meta, window_ms=1000, clock=clock, renew_interval_s=3600)
    try:
        before = [await tso.allocate(2) for _ in range(5)]
        server.stop()
        clock.now += 5_000  # past the window: the next allocation must persist a new bound
        with pytest.raises(StoreUnavailableError):
            await tso.allocate()
        server.start()

        async def allocate_when_back() -> int:
            while True:
                try:
                    return await tso.allocate()
                except StorageError:
                    await asyncio.sleep(0.1)

        after = await asyncio.wait_for(allocate_when_back(), WAIT_S)
        assert after > max(before) + 1
        assert parse_ts(after)[0] < await stored_upper(meta)
    finally:
        await tso.close()
        await meta.close()

    # a successor on a new connection, with the real clock, starts above everything
    meta = await EtcdMetaStore.connect(server.endpoint, root=root)
    try:
        successor = TimestampOracle(meta, clock=FakeClock(wall_clock))
        assert await successor.allocate() > after
        await successor.close()
    finally:
        await meta.close()
