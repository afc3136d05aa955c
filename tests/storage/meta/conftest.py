"""Fixtures of the meta store contract suite: every test runs on both stores.

`make_store(root)` opens a store under `root`; stores made in one test share
one backend (one etcd, or one MemoryBackend), as clients of one etcd do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pelagos.storage.meta.etcd import EtcdMetaStore
from pelagos.storage.meta.memory import MemoryBackend, MemoryMetaStore
from pelagos.storage.meta.protocol import MetaStore
from tests.fixtures.etcd import unique_root

StoreFactory = Callable[[str], Awaitable[MetaStore]]


@pytest.fixture(params=["memory", "etcd"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    opened: list[MetaStore] = []
    backend = MemoryBackend()
    endpoint = request.getfixturevalue("etcd_server").endpoint if request.param == "etcd" else ""

    async def make(root: str) -> MetaStore:
        store: MetaStore
        if request.param == "memory":
            store = MemoryMetaStore(backend, root=root)
        else:
            store = await EtcdMetaStore.connect(endpoint, root=root)
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> MetaStore:
    return await make_store(unique_root())
