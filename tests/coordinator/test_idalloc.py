"""The ID allocator: logic on the in-memory store, then against real etcd."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from pelagos.coordinator.idalloc import IdAllocator
from pelagos.errors import InvalidArgumentError, MetaStoreError, StorageError
from pelagos.runtime.servers.etcd import EtcdServer
from pelagos.storage.meta.etcd import EtcdMetaStore
from pelagos.storage.meta.memory import MemoryMetaStore
from pelagos.storage.meta.protocol import MetaStore
from tests.fixtures.etcd import unique_root

WAIT_S = 15.0
KEY = "id/upper"


@pytest.fixture
async def memory_meta() -> AsyncIterator[MemoryMetaStore]:
    store = MemoryMetaStore(root=unique_root())
    yield store
    await store.close()


async def stored_bound(meta: MetaStore) -> int:
    kv = await meta.get(KEY)
    assert kv is not None
    return int(kv.value)


async def test_ids_are_positive_consecutive_and_reserved_in_batches(memory_meta: MemoryMetaStore) -> None:
    ids = IdAllocator(memory_meta, batch=10)
    first = await ids.allocate()
    assert first == 1
    # the bound covering the ID was stored before the ID came back
    assert await stored_bound(memory_meta) == 11
    assert await ids.allocate(3) == 2
    assert await ids.allocate(6) == 5
    assert await stored_bound(memory_meta) == 11  # still within the first batch
    assert await ids.allocate() == 11
    assert await stored_bound(memory_meta) == 21
    with pytest.raises(InvalidArgumentError):
        await ids.allocate(0)


async def test_a_request_bigger_than_a_batch_stays_consecutive(memory_meta: MemoryMetaStore) -> None:
    ids = IdAllocator(memory_meta, batch=10)
    assert await ids.allocate(4) == 1
    big = await ids.allocate(25)
    assert big == 5  # continues the current batch
    assert await stored_bound(memory_meta) >= big + 25
    assert await ids.allocate() == big + 25


async def test_restart_hands_out_only_larger_ids(memory_meta: MemoryMetaStore) -> None:
    first = IdAllocator(memory_meta, batch=100)
    issued = [await first.allocate(7) + 6 for _ in range(5)]
    await first.close()
    second = IdAllocator(memory_meta, batch=100)
    assert await second.allocate() > max(issued)
    assert await second.allocate() >= 101  # above the whole batch the first one reserved


async def test_allocators_sharing_a_key_never_overlap(memory_meta: MemoryMetaStore) -> None:
    one, two = IdAllocator(memory_meta, batch=5), IdAllocator(memory_meta, batch=5)
    got: dict[IdAllocator, list[int]] = {one: [], two: []}
    rng = random.Random(3)
    for _ in range(200):
        allocator = rng.choice([one, two])
        count = rng.randint(1, 7)
        first = await allocator.allocate(count)
        got[allocator].extend(range(first, first + count))
    for ids in got.values():
        assert ids == sorted(ids)
    assert set(got[one]).isdisjoint(got[two])
    assert max(got[one] + got[two]) < await stored_bound(memory_meta)


async def test_a_corrupt_bound_is_reported(memory_meta: MemoryMetaStore) -> None:
    await memory_meta.put(KEY, b"not a number")
    with pytest.raises(MetaStoreError, match="not a number"):
        await IdAllocator(memory_meta).allocate()


async def test_the_int64_space_has_an_end(memory_meta: MemoryMetaStore) -> None:
    await memory_meta.put(KEY, str(2**63 - 5).encode())
    ids = IdAllocator(memory_meta, batch=3)
    assert await ids.allocate(3) == 2**63 - 5
    with pytest.raises(MetaStoreError, match="exhausted"):
        await ids.allocate(3)


# --- against etcd --------------------------------------------------------------------


async def test_concurrent_callers_and_allocators_get_distinct_ids(etcd_server: EtcdServer) -> None:
    root = unique_root()
    stores = [await EtcdMetaStore.connect(etcd_server.endpoint, root=root) for _ in range(2)]
    allocators = [IdAllocator(store, batch=40) for store in stores]
    rng = random.Random(11)

    async def caller(allocator: IdAllocator) -> list[int]:
        got: list[int] = []
        for _ in range(20):
            count = rng.randint(1, 9)
            first = await allocator.allocate(count)
            got.extend(range(first, first + count))
            await asyncio.sleep(0)
        return got

    try:
        results = await asyncio.gather(*(caller(allocators[i % 2]) for i in range(16)))
        bound = await stored_bound(stores[0])
    finally:
        for store in stores:
            await store.close()
    everything = [i for got in results for i in got]
    assert len(everything) == len(set(everything))
    assert min(everything) >= 1 and max(everything) < bound
    for got in results:
        assert got == sorted(got)


async def test_ids_keep_increasing_across_an_etcd_restart(etcd_factory: Callable[[], EtcdServer]) -> None:
    server = etcd_factory()
    root = unique_root()
    meta = await EtcdMetaStore.connect(server.endpoint, root=root, timeout=1.0)
    ids = IdAllocator(meta, batch=10)
    try:
        before = [await ids.allocate(3) for _ in range(3)]
        server.stop()
        server.start()

        async def allocate_when_back() -> int:
            while True:
                try:
                    return await ids.allocate(5)  # needs a new batch, so it reaches etcd
                except StorageError:
                    await asyncio.sleep(0.1)

        after = await asyncio.wait_for(allocate_when_back(), WAIT_S)
        assert after > max(before) + 2
    finally:
        await meta.close()

    meta = await EtcdMetaStore.connect(server.endpoint, root=root)
    try:
        assert await IdAllocator(meta, batch=10).allocate() >= after + 5
    finally:
        await meta.close()
