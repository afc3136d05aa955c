"""The services every role is built on, and the hook roles plug into.

`Services` is what a role factory receives: the config and the three
connected stores. In standalone the stores are connected (and their servers
started) before any factory is called, so a factory may use them at once.

A role plugs into standalone as a `RoleFactory`: a callable taking Services
and returning a lifecycle Component (see pelagos.runtime.roles, which lists
the factories standalone runs, in start order).

Invariants:
- a Services is complete: every store in it is connected when a factory
  sees it, and stays connected until every role has stopped;
- roles never close the stores; the runtime does, after the roles stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pelagos.runtime.config import Config
from pelagos.runtime.lifecycle import Component
from pelagos.storage.log.protocol import LogBroker
from pelagos.storage.meta.protocol import MetaStore
from pelagos.storage.objects.protocol import ObjectStore


@dataclass(frozen=True)
class Services:
    config: Config
    log: LogBroker
    meta: MetaStore
    objects: ObjectStore
    nats_url: str
    """URL of the NATS server behind `log` (the own one in standalone)."""
    etcd_endpoints: list[str] = field(default_factory=list)
    """host:port of the etcd behind `meta`."""

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


RoleFactory = Callable[[Services], Component]
"""Builds one role (proxy, coordinator, datanode, ...) on the given services."""
