"""/metrics and /healthz."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from pelagos.errors import ServerProcessError
from pelagos.runtime.http import OpsHttpServer
from pelagos.runtime.lifecycle import Health, Lifecycle
from pelagos.runtime.servers.base import free_port


class Switch:
    def __init__(self) -> None:
        self.name = "switch"
        self.ok = True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def health(self) -> Health:
        return Health(self.ok, "on" if self.ok else "off")


async def test_healthz_and_metrics() -> None:
    lc = Lifecycle()
    switch = Switch()
    server = OpsHttpServer("127.0.0.1", free_port(), lc.health)
    lc.add(server)
    lc.add(switch)
    await lc.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/healthz") as resp:
                assert resp.status == 200
                body = await resp.json()
            assert body["ok"] is True
            assert body["components"]["switch"] == {"ok": True, "detail": "on"}
            switch.ok = False
            async with http.get(f"{server.url}/healthz") as resp:
                assert resp.status == 503
                assert (await resp.json())["components"]["switch"]["ok"] is False
            async with http.get(f"{server.url}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                text = await resp.text()
            assert 'pelagos_runtime_component_healthy{component="switch"} 0.0' in text
    finally:
        await lc.stop()
    assert not server.health().ok


async def test_health_callback_failure_is_503() -> None:
    def broken() -> object:
        raise RuntimeError("no health")

    server = OpsHttpServer("127.0.0.1", free_port(), broken)  # type: ignore[arg-type]
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 503
            assert "no health" in (await resp.json())["error"]
    finally:
        await server.stop()


async def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = OpsHttpServer("127.0.0.1", port, Lifecycle().health)
        with pytest.raises(ServerProcessError, match=rf"127.0.0.1:{port}.*metrics_port"):
            await server.start()
