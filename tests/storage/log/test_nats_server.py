"""The nats-server launcher: readiness, addresses, port conflicts, restarts."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from pelagos.errors import ConfigError, ServerProcessError
from pelagos.runtime.servers.base import port_is_open
from pelagos.runtime.servers.nats import NatsServer


def test_started_server_is_ready_with_jetstream(nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory(max_payload=128 * 1024)
    assert server.running()
    assert server.pid is not None
    assert server.url == f"nats://127.0.0.1:{server.port}"
    assert port_is_open("127.0.0.1", server.port)
    with urllib.request.urlopen(f"{server.monitor_url}/jsz", timeout=2) as resp:
        assert b'"config"' in resp.read()
    with urllib.request.urlopen(f"{server.monitor_url}/varz", timeout=2) as resp:
        assert b'"max_payload": 131072' in resp.read()


def test_stop_is_idempotent_and_restart_keeps_the_address(nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory()
    port = server.port
    server.stop()
    server.stop()
    assert not server.running()
    assert not port_is_open("127.0.0.1", port)
    server.start()
    assert server.port == port
    assert port_is_open("127.0.0.1", port)


def test_port_in_use_gives_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = NatsServer(tmp_path / "n", port=port)
        with pytest.raises(ServerProcessError, match=f"{port}.*already in use"):
            server.start()
        assert not server.running()


def test_bad_max_payload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_payload"):
        NatsServer(tmp_path, max_payload=65 * 1024 * 1024)
