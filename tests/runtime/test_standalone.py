"""`pelagos standalone` as a user runs it: a subprocess on a temp data dir.

Few and end-to-end: serve /healthz and /metrics, stop cleanly on SIGINT with
no child left, keep etcd keys and JetStream streams across restarts, fail
clearly on a taken port, and leave no orphan when the launcher is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pelagos.runtime.children import is_alive, wait_gone
from pelagos.runtime.servers.base import free_port
from pelagos.storage.log.jetstream import JetStreamLogBroker
from pelagos.storage.meta.etcd import EtcdMetaStore

BOUND = 60.0  # seconds: a bound on waits so a hung launcher fails the test, not a timing claim


@dataclass
class Launch:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    metrics_port: int
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        state = json.loads((self.data_dir / "children.json").read_text())
        return {name: entry["pid"] for name, entry in state["children"].items()}

    def watchdog_pid(self) -> int:
        return int(json.loads((self.data_dir / "children.json").read_text())["watchdog_pid"])

    def ports(self) -> dict[str, int]:
        return dict(json.loads((self.data_dir / "ports.json").read_text()))

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_healthy(self) -> dict[str, object]:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"standalone exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                status, body = self.get("/healthz")
            except OSError:
                status, body = 0, b""
            if status == 200:
                return dict(json.loads(body))
            time.sleep(0.05)
        pytest.fail(f"standalone not healthy after {BOUND}s:\n{self.stderr}")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=BOUND)


@pytest.fixture
def launched() -> Iterator[list[Launch]]:
    launches: list[Launch] = []
    yield launches
    for launch in launches:  # never leave a launcher behind, whatever failed
        if launch.proc.poll() is None:
            launch.proc.kill()
            launch.proc.wait()


def launch(
    launches: list[Launch],
    data_dir: Path,
    *,
    port: int | None = None,
    metrics_port: int | None = None,
    env: dict[str, str] | None = None,
) -> Launch:
    """Start `pelagos standalone`; the metrics port goes through `env` when given there."""
    port = port or free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PELAGOS_")}
    full_env.update(env or {})
    argv = [sys.executable, "-m", "pelagos.runtime.cli", "standalone", "--data-dir", str(data_dir)]
    argv += ["--port", str(port)]
    if "PELAGOS_SERVER__METRICS_PORT" in full_env:
        metrics_port = int(full_env["PELAGOS_SERVER__METRICS_PORT"])
    else:
        metrics_port = metrics_port or free_port()
        argv += ["--metrics-port", str(metrics_port)]
    stderr_path = data_dir.parent / f"{data_dir.name}-{len(launches)}.log"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=full_env
        )
    result = Launch(proc, data_dir, port, metrics_port, stderr_path)
    launches.append(result)
    return result


async def test_serves_stops_cleanly_and_keeps_its_data(tmp_path: Path, launched: list[Launch]) -> None:
    data_dir = tmp_path / "data"
    first = launch(launched, data_dir)
    health = await asyncio.to_thread(first.wait_healthy)
    components = health["components"]
    assert isinstance(components, dict)
    assert {"nats-server", "etcd", "log broker", "meta store", "object store", "http"} <= set(components)
    status, metrics = first.get("/metrics")
    assert status == 200
    assert b"pelagos_runtime_start_duration_seconds" in metrics
    assert b'pelagos_runtime_build_info{mode="standalone"' in metrics
    assert "Pelagos standalone ready in" in first.stderr

    ports = first.ports()
    meta = await EtcdMetaStore.connect(f"127.0.0.1:{ports['etcd_client']}", root="pelagos")
    await meta.put("tests/kept", b"across restarts")
    await meta.close()
    log = await JetStreamLogBroker.connect(f"nats://127.0.0.1:{ports['nats']}")
    await log.create_channel("kept-channel")
    await log.close()

    rival = launch(launched, data_dir)  # one launcher per data dir
    assert await asyncio.to_thread(rival.proc.wait, BOUND) == 1
    assert f"the data directory {data_dir} is in use by another pelagos standalone" in rival.stderr

    children = first.children()
    assert set(children) == {"nats-server", "etcd"}
    assert all(is_alive(pid) for pid in children.values())
    assert await asyncio.to_thread(first.stop, signal.SIGINT) == 0
    for name, pid in children.items():
        assert not is_alive(pid), f"{name} (pid {pid}) outlived the launcher"
    assert first.children() == {}

    second = launch(launched, data_dir)
    await asyncio.to_thread(second.wait_healthy)
    assert second.ports() == ports  # still free, so reused
    meta = await EtcdMetaStore.connect(f"127.0.0.1:{ports['etcd_client']}", root="pelagos")
    kept = await meta.get("tests/kept")
    await meta.close()
    assert kept is not None and kept.value == b"across restarts"
    log = await JetStreamLogBroker.connect(f"nats://127.0.0.1:{ports['nats']}")
    channels = await log.list_channels()
    await log.close()
    assert "kept-channel" in channels
    assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0


@pytest.mark.parametrize("which", ["port", "metrics_port"])
async def test_taken_port_fails_with_a_clear_message(
    tmp_path: Path, launched: list[Launch], which: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        if which == "port":
            attempt = launch(launched, tmp_path / "data", port=taken)
        else:  # through the environment this time
            attempt = launch(launched, tmp_path / "data", env={"PELAGOS_SERVER__METRICS_PORT": str(taken)})
        code = await asyncio.to_thread(attempt.proc.wait, BOUND)
    assert code == 1
    err = attempt.stderr
    assert f"pelagos: error: port 127.0.0.1:{taken}" in err
    assert "already in use" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data" / "children.json").exists() or attempt.children() == {}


async def test_sigkilled_launcher_leaves_no_orphan(tmp_path: Path, launched: list[Launch]) -> None:
    data_dir = tmp_path / "data"
    # 1. the watchdog kills the children as soon as the launcher dies
    first = launch(launched, data_dir)
    await asyncio.to_thread(first.wait_healthy)
    children = first.children()
    first.stop(signal.SIGKILL)
    for name, pid in children.items():
        assert await asyncio.to_thread(wait_gone, pid, BOUND), f"{name} (pid {pid}) orphaned"

    # 2. with the watchdog gone too, the next start kills the stale children
    second = launch(launched, data_dir)
    await asyncio.to_thread(second.wait_healthy)
    children = second.children()
    os.kill(second.watchdog_pid(), signal.SIGKILL)
    second.stop(signal.SIGKILL)
    assert all(is_alive(pid) for pid in children.values())  # orphaned for now

    third = launch(launched, data_dir)
    await asyncio.to_thread(third.wait_healthy)
    for name, pid in children.items():
        assert not is_alive(pid), f"stale {name} (pid {pid}) survived the next start"
    assert "left by an earlier launcher" in third.stderr
    assert await asyncio.to_thread(third.stop, signal.SIGINT) == 0
