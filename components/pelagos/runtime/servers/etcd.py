"""etcd as a child process: a single-node cluster on loopback.

Standalone starts it to hold Pelagos' metadata, and the test fixtures start
it the same way.

Invariants:
- the server listens only on `host` (127.0.0.1 by default), on a client and
  a peer port chosen once per `EtcdServer` object, so a restart of the same
  object serves the same endpoint;
- its data lives in `data_dir / "data"` and its log in `data_dir / "etcd.log"`;
  starting again on the same `data_dir` keeps every key;
- it counts as ready when `/health` on the client URL answers
  {"health":"true"}.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from pelagos.runtime.servers.base import ManagedProcess, ensure_port_free, find_binary, free_port

_MEMBER_NAME = "pelagos"


class EtcdServer(ManagedProcess):
    """One etcd member forming its own cluster."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        client_port: int | None = None,
        peer_port: int | None = None,
        *,
        unsafe_no_fsync: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self._client_port = client_port if client_port is not None else free_port(host)
        self._peer_port = peer_port if peer_port is not None else free_port(host)
        while self._peer_port == self._client_port:
            self._peer_port = free_port(host)
        client_url = f"http://{host}:{self._client_port}"
        peer_url = f"http://{host}:{self._peer_port}"
        argv = [
            find_binary("etcd"),
            "--name",
            _MEMBER_NAME,
            "--data-dir",
            str(self.data_dir / "data"),
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
            "--listen-peer-urls",
            peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
            "--initial-cluster",
            f"{_MEMBER_NAME}={peer_url}",
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "pelagos",
            # keep an hour of history for watches, then reclaim space
            "--auto-compaction-mode",
            "periodic",
            "--auto-compaction-retention",
            "1h",
            "--logger",
            "zap",
            "--log-level",
            "warn",
        ]
        if unsafe_no_fsync:
            argv.append("--unsafe-no-fsync")
        super().__init__(
            "etcd",
            argv,
            log_path=self.data_dir / "etcd.log",
            ready=self._healthy,
            cwd=self.data_dir,
        )

    @property
    def client_port(self) -> int:
        return self._client_port

    @property
    def peer_port(self) -> int:
        return self._peer_port

    @property
    def endpoint(self) -> str:
        """The client endpoint as "host:port", what EtcdMetaStore.connect takes."""
        return f"{self.host}:{self._client_port}"

    def start(self, timeout: float = 30.0) -> None:
        if self.running():
            return
        ensure_port_free(self.host, self._client_port, "etcd clients")
        ensure_port_free(self.host, self._peer_port, "etcd peers")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().start(timeout=timeout)

    def _healthy(self) -> bool:
        url = f"http://{self.host}:{self._client_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                body = json.loads(response.read() or b"{}")
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return isinstance(body, dict) and body.get("health") == "true"
