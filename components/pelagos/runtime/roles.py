"""The roles standalone runs: THE hook where each role plugs in.

`STANDALONE_ROLES` is the list of role factories (`RoleFactory`: Services ->
Component) that `pelagos standalone` builds and starts, in list order, once
nats-server, etcd, the three stores and the /metrics+/healthz server are up;
it stops them in reverse order before the stores close. Each role is
therefore started after every role before it in the list (a coordinator
before the workers, the workers before the proxy that serves clients).

To plug a role in, append its factory here, e.g.

    from pelagos.coordinator.component import Coordinator
    STANDALONE_ROLES.append(lambda s: Coordinator(s.config, s.meta, s.log, s.objects))

Invariants:
- a factory does no I/O; the Component's `start()` does (and raises a
  PelagosError with a message a user can act on when it cannot start);
- every Component has a unique `name` (it names its line in /healthz).
"""

from __future__ import annotations

from pelagos.runtime.lifecycle import Component
from pelagos.runtime.services import RoleFactory, Services

STANDALONE_ROLES: list[RoleFactory] = []


def _serving_node(services: Services) -> Component:
    from pelagos.runtime.assembly import ServingNode

    return ServingNode(services)


STANDALONE_ROLES.append(_serving_node)
