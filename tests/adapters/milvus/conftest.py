"""Fixtures of the Milvus adapter tests: a MilvusServer on a free loopback port over a
RecordingProxy (one per test module and transport), and a pymilvus MilvusClient connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymilvus import MilvusClient

from pelagos.adapters.milvus import MilvusServer
from pelagos.adapters.milvus.server import TRANSPORTS
from tests.adapters.milvus.helpers import SERVER_INFO, call
from tests.adapters.milvus.recording_proxy import RecordingProxy


@pytest.fixture(scope="module")
async def proxy() -> RecordingProxy:
    return RecordingProxy()


@pytest.fixture(scope="module", params=TRANSPORTS)
async def server(proxy: RecordingProxy, request: pytest.FixtureRequest) -> AsyncIterator[MilvusServer]:
    """Every adapter test runs on both transports: they must answer alike."""
    srv = MilvusServer(proxy, "127.0.0.1", 0, server_info=SERVER_INFO, transport=request.param)
    await srv.start()
    yield srv
    await srv.stop(0.5)


@pytest.fixture(scope="module")
async def client(server: MilvusServer) -> AsyncIterator[MilvusClient]:
    c = await call(MilvusClient, uri=f"http://127.0.0.1:{server.port}")
    yield c
    await call(c.close)
