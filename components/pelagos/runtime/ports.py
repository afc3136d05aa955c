"""Ports of standalone's child servers, remembered in `<data_dir>/ports.json`.

A second start on the same data dir uses the same ports as the first when
they are still free, so clients and notes that name them keep working.

Invariants:
- a port given in the config always wins, and is never replaced silently;
- a remembered port is reused only when it can be bound now; otherwise a
  free port is chosen, used and remembered instead;
- two names never get the same port from one PortBook.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

from pelagos.runtime.servers.base import free_port

log = logging.getLogger(__name__)

PORTS_FILE = "ports.json"


def can_bind(host: str, port: int) -> bool:
    """True when `port` on `host` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortBook:
    """Chooses and remembers the ports of named child servers."""

    def __init__(self, data_dir: Path, host: str) -> None:
        self.path = data_dir / PORTS_FILE
        self.host = host
        self._ports = self._load()
        self._taken: set[int] = set()

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}

    def port(self, name: str, configured: int | None = None) -> int:
        """The port for `name`: configured, else remembered if free, else a free one."""
        if configured is not None:
            chosen = configured
        else:
            remembered = self._ports.get(name)
            if remembered is not None and remembered not in self._taken and can_bind(self.host, remembered):
                chosen = remembered
            else:
                if remembered is not None:
                    log.info("port %d remembered for %s is taken; choosing another", remembered, name)
                chosen = free_port(self.host)
                while chosen in self._taken:
                    chosen = free_port(self.host)
        self._taken.add(chosen)
        self._ports[name] = chosen
        return chosen

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._ports, indent=2, sort_keys=True))
        tmp.replace(self.path)

    def as_dict(self) -> dict[str, int]:
        return dict(self._ports)
