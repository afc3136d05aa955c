"""What only the etcd store can show: an unreachable etcd, and an etcd restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pelagos.errors import ServerProcessError, StoreUnavailableError
from pelagos.runtime.servers.base import free_port
from pelagos.runtime.servers.etcd import EtcdServer
from pelagos.storage.meta.etcd import EtcdMetaStore
from tests.fixtures.etcd import unique_root

WAIT_S = 15.0


async def until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_connect_to_a_closed_port_fails_promptly_and_says_what_to_do() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailableError) as caught:
        await asyncio.wait_for(EtcdMetaStore.connect(endpoint, timeout=1.0), WAIT_S)
    message = str(caught.value)
    assert endpoint in message
    assert "check that etcd is running" in message


async def test_server_refuses_a_taken_port(etcd_server: EtcdServer, tmp_path: Path) -> None:
    clash = EtcdServer(tmp_path / "clash", client_port=etcd_server.client_port)
    with pytest.raises(ServerProcessError, match="already in use"):
        clash.start()
    assert not clash.running()


async def test_data_and_service_survive_an_etcd_restart(etcd_factory: Callable[[], EtcdServer]) -> None:
    server = etcd_factory()
    root = unique_root()
    store = await EtcdMetaStore.connect(server.endpoint, root=root, timeout=1.0)
    try:
        await store.put("kept", b"across restarts")
        lease = await store.grant_lease(2, keep_alive=True)
        await store.put("leased", b"x", lease=lease)

        server.stop()
        with pytest.raises(StoreUnavailableError, match=server.endpoint):
            await store.get("kept")
        # keep-alive cannot reach etcd: the lease is given up within its TTL
        await until(lambda: not lease.alive)

        server.start()
        port = server.client_port

        # the same client reconnects by itself
        async def readable() -> bytes | None:
            while True:
                try:
                    kv = await store.get("kept")
                    return kv.value if kv is not None else None
                except StoreUnavailableError:
                    await asyncio.sleep(0.1)

        assert await asyncio.wait_for(readable(), WAIT_S) == b"across restarts"
        assert server.client_port == port
    finally:
        await store.close()

    # a new server object on the same data directory (other ports) keeps the data too
    server.stop()
    again = EtcdServer(server.data_dir)
    again.start()
    try:
        fresh = await EtcdMetaStore.connect(again.endpoint, root=root)
        try:
            kv = await fresh.get("kept")
            assert kv is not None and kv.value == b"across restarts"
        finally:
            await fresh.close()
    finally:
        again.stop()
