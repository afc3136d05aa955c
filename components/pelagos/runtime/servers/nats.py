"""nats-server with JetStream, as a managed child process.

Standalone mode and the test fixtures start the log broker through this
class, so the code the tests rely on is the code users run.

Invariants:
- the server listens on `host:port` for clients and on a second loopback
  port for HTTP monitoring, both chosen once at construction, so a restart
  comes back on the same address and clients reconnect by themselves;
- JetStream keeps its files under `data_dir/jetstream`: a restart (or a
  crash followed by a start) on the same `data_dir` finds every stream and
  message it had acknowledged;
- `start()` returns only when the client port accepts connections and the
  server's /healthz says JetStream is up with its streams recovered;
- the configuration file and the server log live in `data_dir` too.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from pelagos.errors import ConfigError
from pelagos.runtime.servers.base import (
    ManagedProcess,
    ensure_port_free,
    find_binary,
    free_port,
    port_is_open,
)

# nats-server refuses a max_payload above 64 MiB (and warns above 8 MiB).
_MAX_PAYLOAD_CEILING = 64 * 1024 * 1024


class NatsServer:
    """One nats-server process with JetStream enabled and its data under `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        max_payload: int | None = None,
        *,
        monitor_port: int | None = None,
        sync_always: bool = False,
    ) -> None:
        """`max_payload` is the largest message the server accepts (its default is 1 MiB).

        `sync_always` makes the server fsync every write before acknowledging
        it (power-loss safety, at a large cost in throughput); by default
        acknowledged writes survive a crash of the process, as the operating
        system holds them, and are flushed to disk periodically.
        """
        if max_payload is not None and not 0 < max_payload <= _MAX_PAYLOAD_CEILING:
            raise ConfigError(
                f"max_payload must be between 1 and {_MAX_PAYLOAD_CEILING} bytes, got {max_payload}"
            )
        self.data_dir = Path(data_dir)
        self.host = host
        self._port = port if port is not None else free_port(host)
        self._monitor_port = monitor_port if monitor_port is not None else free_port("127.0.0.1")
        self._max_payload = max_payload
        self._sync_always = sync_always
        self._config_path = self.data_dir / "nats-server.conf"
        self._process = ManagedProcess(
            "nats-server",
            [find_binary("nats-server"), "-c", str(self._config_path)],
            log_path=self.data_dir / "nats-server.log",
            ready=self._ready,
            cwd=self.data_dir,
        )

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self._monitor_port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def running(self) -> bool:
        return self._process.running()

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and block until JetStream is ready; no-op if running."""
        if self.running():
            return
        ensure_port_free(self.host, self._port, "nats-server (client port)")
        ensure_port_free("127.0.0.1", self._monitor_port, "nats-server (monitoring port)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._config_path.write_text(self._config_text())
        self._process.start(timeout=timeout)

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after a grace period). Idempotent."""
        self._process.stop()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (for failure tests)."""
        self._process.kill()

    def _config_text(self) -> str:
        # json.dumps gives double-quoted strings with escapes that the NATS
        # configuration syntax reads the same way.
        lines = [
            f"listen: {json.dumps(f'{self.host}:{self._port}')}",
            f"http: {json.dumps(f'127.0.0.1:{self._monitor_port}')}",
            f"server_name: {json.dumps(f'pelagos-nats-{self._port}')}",
        ]
        if self._max_payload is not None:
            lines.append(f"max_payload: {self._max_payload}")
        lines.append("jetstream {")
        lines.append(f"  store_dir: {json.dumps(str(self.data_dir))}")
        if self._sync_always:
            lines.append("  sync_interval: always")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _ready(self) -> bool:
        if not port_is_open(self.host, self._port):
            return False
        try:
            with urllib.request.urlopen(f"{self.monitor_url}/healthz", timeout=1.0) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False
