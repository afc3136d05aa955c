"""The `weed mini` launcher: loopback only, every port ours, nothing left behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pelagos.runtime.servers.weed import WeedServer
from tests.fixtures.weed import s3_store_on


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of every TCP socket in LISTEN state that process `pid` holds."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found: set[tuple[str, int]] = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            ip_hex, port_hex = local.split(":")
            raw = bytes.fromhex(ip_hex)
            if width == 4:
                ip = ".".join(str(b) for b in raw[::-1])
            else:
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                ip = ":".join(b"".join(words).hex()[i : i + 4] for i in range(0, 32, 4))
            found.add((ip, int(port_hex, 16)))
    return found


def test_listens_only_on_loopback_ports_it_chose(weed_server: WeedServer) -> None:
    assert weed_server.pid is not None
    sockets = listening_sockets(weed_server.pid)
    assert ("127.0.0.1", weed_server.s3_port) in sockets
    assert {ip for ip, _ in sockets} == {"127.0.0.1"}
    chosen = set(weed_server.ports.values())
    assert {port for _, port in sockets} <= chosen, "weed opened a port we did not choose"


def test_credentials_and_endpoint(weed_server: WeedServer) -> None:
    host, port = weed_server.s3_endpoint.split(":")
    assert host == "127.0.0.1"
    assert int(port) == weed_server.s3_port
    assert weed_server.access_key
    assert len(weed_server.secret_key) >= 16
    config = (weed_server.data_dir / "s3.json").stat()
    assert config.st_mode & 0o077 == 0  # the secret is readable by its owner only


async def test_restart_keeps_objects_and_stop_leaves_no_process(
    weed_factory: Callable[[], WeedServer],
) -> None:
    server = weed_factory()
    async with s3_store_on(server, prefix="p") as store:
        await store.put("k", b"kept")
        first_pid = server.pid
        assert first_pid is not None
        server.stop()
        with pytest.raises(ProcessLookupError):
            os.killpg(first_pid, 0)
        server.start()
        assert server.pid != first_pid
        assert await store.get("k") == b"kept"
    sockets = [path for path in server.socket_files if path.is_socket()]
    assert len(sockets) >= 5, "weed made fewer unix sockets than we expect to clean up"
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not [path for path in server.socket_files if path.exists()]
    server.stop()  # idempotent
    assert not server.running()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
