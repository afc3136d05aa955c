"""An in-memory meta store with etcd's semantics, for tests only.

Use it ONLY in unit tests of pure logic (catalogs, allocators) and in the
meta store contract suite, which runs the same tests against this store and
against etcd to prove they agree. Nothing in a deployment uses it: it is not
durable and lives in one event loop.

Invariants (the same as etcd's):
- one revision counter per backend, starting at 1; every write that changes
  something (put, delete of a present key, a successful transaction or
  compare-and-swap, a lease revocation that deletes keys) raises it by
  exactly one, and every key it touches gets that mod revision;
- views with different roots over one backend never see each other's keys;
- a lease expires `ttl` seconds after its grant or last renewal and deletes
  its keys in one revision; keep-alive renews it every third of its TTL;
- a watch replays history from its start revision, then follows live
  changes, in revision order, with no gap between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field

from pelagos.errors import ConfigError, LeaseExpiredError, MetaStoreError
from pelagos.storage.meta.keepalive import keep_alive_until_lost
from pelagos.storage.meta.protocol import KeyValue, Lease, MetaStore, WatchEvent

_HISTORY = 100_000  # events kept for watches that start in the past


@dataclass(slots=True)
class _Entry:
    value: bytes
    mod_revision: int
    version: int
    lease_id: int


@dataclass(slots=True)
class _LeaseState:
    ttl: float
    timer: asyncio.TimerHandle | None = None
    keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Put:
    key: str
    value: bytes
    lease_id: int


@dataclass(slots=True)
class _Delete:
    key: str


class MemoryBackend:
    """The shared state behind every MemoryMetaStore view: one "etcd"."""

    def __init__(self) -> None:
        self.revision = 1
        self._data: dict[str, _Entry] = {}
        self._leases: dict[int, _LeaseState] = {}
        self._lease_ids = itertools.count(0x1000)
        self._history: deque[WatchEvent] = deque(maxlen=_HISTORY)
        self._watchers: set[asyncio.Queue[WatchEvent | None]] = set()
        self._watcher_prefix: dict[asyncio.Queue[WatchEvent | None], str] = {}

    # --- reads ------------------------------------------------------------------

    def get(self, key: str) -> _Entry | None:
        return self._data.get(key)

    def range(self, prefix: str) -> list[tuple[str, _Entry]]:
        return sorted((k, e) for k, e in self._data.items() if k.startswith(prefix))

    def version(self, key: str) -> int:
        entry = self._data.get(key)
        return entry.version if entry is not None else 0

    def mod_revision(self, key: str) -> int:
        entry = self._data.get(key)
        return entry.mod_revision if entry is not None else 0

    # --- writes -----------------------------------------------------------------

    def apply(self, ops: Sequence[_Put | _Delete]) -> int:
        """Apply `ops` at one new revision (if any changes something); the store revision after."""
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise MetaStoreError("a transaction names the same key twice; merge those operations")
        for op in ops:
            if isinstance(op, _Put) and op.lease_id and op.lease_id not in self._leases:
                raise LeaseExpiredError(f"lease {op.lease_id:x} expired or was revoked; grant a new lease")
        revision = self.revision + 1
        events: list[WatchEvent] = []
        for op in ops:
            old = self._data.get(op.key)
            if old is not None and old.lease_id in self._leases:
                self._leases[old.lease_id].keys.discard(op.key)
            if isinstance(op, _Put):
                version = old.version + 1 if old is not None else 1
                self._data[op.key] = _Entry(op.value, revision, version, op.lease_id)
                if op.lease_id:
                    self._leases[op.lease_id].keys.add(op.key)
                events.append(WatchEvent("put", op.key, op.value, revision))
            elif old is not None:
                del self._data[op.key]
                events.append(WatchEvent("delete", op.key, None, revision))
        if events:
            self.revision = revision
            self._publish(events)
        return self.revision

    def _publish(self, events: list[WatchEvent]) -> None:
        self._history.extend(events)
        for queue in self._watchers:
            prefix = self._watcher_prefix[queue]
            for event in events:
                if event.key.startswith(prefix):
                    queue.put_nowait(event)

    # --- leases -----------------------------------------------------------------

    def grant(self, ttl: float) -> int:
        lease_id = next(self._lease_ids)
        self._leases[lease_id] = _LeaseState(ttl)
        self._arm(lease_id)
        return lease_id

    def renew(self, lease_id: int) -> float:
        """Remaining TTL after renewal; 0 when the lease is gone."""
        state = self._leases.get(lease_id)
        if state is None:
            return 0.0
        self._arm(lease_id)
        return state.ttl

    def revoke(self, lease_id: int) -> bool:
        state = self._leases.pop(lease_id, None)
        if state is None:
            return False
        if state.timer is not None:
            state.timer.cancel()
        self.apply([_Delete(k) for k in sorted(state.keys)])
        return True

    def _arm(self, lease_id: int) -> None:
        state = self._leases[lease_id]
        if state.timer is not None:
            state.timer.cancel()
        state.timer = asyncio.get_running_loop().call_later(state.ttl, self.revoke, lease_id)

    # --- watches ----------------------------------------------------------------

    def subscribe(self, prefix: str, start_revision: int | None) -> asyncio.Queue[WatchEvent | None]:
        """A queue receiving every event under `prefix` from `start_revision` on."""
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        if start_revision is not None and start_revision <= self.revision:
            oldest = self._history[0].revision if self._history else self.revision + 1
            if len(self._history) == self._history.maxlen and start_revision < oldest:
                raise MetaStoreError(
                    f"cannot watch {prefix!r} from revision {start_revision}: history before {oldest} "
                    f"was compacted; list again and watch from there"
                )
            for event in self._history:
                if event.revision >= start_revision and event.key.startswith(prefix):
                    queue.put_nowait(event)
        self._watchers.add(queue)
        self._watcher_prefix[queue] = prefix
        return queue

    def unsubscribe(self, queue: asyncio.Queue[WatchEvent | None]) -> None:
        self._watchers.discard(queue)
        self._watcher_prefix.pop(queue, None)


class MemoryLease:
    """A lease of a MemoryBackend; see `Lease`."""

    def __init__(self, store: MemoryMetaStore, lease_id: int, ttl: float) -> None:
        self._store = store
        self._id = lease_id
        self._ttl = ttl
        self._alive = True
        self._task: asyncio.Task[None] | None = None

    @property
    def id(self) -> int:
        return self._id

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def alive(self) -> bool:
        return self._alive and self._id in self._store._backend._leases

    async def refresh(self) -> None:
        if self._store._backend.renew(self._id) <= 0:
            self._mark_dead()
            raise LeaseExpiredError(f"lease {self._id:x} expired or was revoked; grant a new lease")

    async def revoke(self) -> None:
        self._stop_keep_alive()
        self._alive = False
        self._store._backend.revoke(self._id)
        self._store._leases.discard(self)

    def _start_keep_alive(self, granted_at: float) -> None:
        self._task = asyncio.create_task(self._keep_alive(granted_at), name=f"memory-lease-{self._id:x}")

    async def _keep_alive(self, granted_at: float) -> None:
        async def renew(_timeout: float) -> float:
            return self._store._backend.renew(self._id)

        await keep_alive_until_lost(renew, lease_id=self._id, ttl=self._ttl, granted_at=granted_at)
        self._mark_dead()

    def _mark_dead(self) -> None:
        self._alive = False
        self._store._leases.discard(self)

    def _stop_keep_alive(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None


class MemoryMetaStore:
    """`MetaStore` in memory (tests only). Views sharing a `backend` act as
    clients of one etcd; `root` isolates them as it does on etcd."""

    def __init__(self, backend: MemoryBackend | None = None, *, root: str = "pelagos") -> None:
        root = root.strip("/")
        if not root:
            raise ConfigError("the meta store root must be a non-empty name, e.g. 'pelagos'")
        self._backend = backend if backend is not None else MemoryBackend()
        self._prefix = root + "/"
        self._closed = False
        self._leases: set[MemoryLease] = set()
        self._queues: weakref.WeakSet[asyncio.Queue[WatchEvent | None]] = weakref.WeakSet()

    @property
    def backend(self) -> MemoryBackend:
        return self._backend

    def _key(self, key: str) -> str:
        self._check_open()
        return self._prefix + key

    def _relative(self, key: str) -> str:
        return key[len(self._prefix) :]

    def _check_open(self) -> None:
        if self._closed:
            raise MetaStoreError("the meta store was closed")

    def _lease_id(self, lease: Lease | None) -> int:
        return lease.id if lease is not None else 0

    async def get(self, key: str) -> KeyValue | None:
        entry = self._backend.get(self._key(key))
        return KeyValue(key, entry.value, entry.mod_revision) if entry is not None else None

    async def put(self, key: str, value: bytes, lease: Lease | None = None) -> int:
        return self._backend.apply([_Put(self._key(key), bytes(value), self._lease_id(lease))])

    async def delete(self, key: str) -> bool:
        k = self._key(key)
        existed = self._backend.get(k) is not None
        self._backend.apply([_Delete(k)])
        return existed

    async def delete_prefix(self, prefix: str) -> int:
        keys = [k for k, _ in self._backend.range(self._key(prefix))]
        self._backend.apply([_Delete(k) for k in keys])
        return len(keys)

    async def range(self, prefix: str) -> list[KeyValue]:
        items, _ = await self.range_with_revision(prefix)
        return items

    async def range_with_revision(self, prefix: str) -> tuple[list[KeyValue], int]:
        items = [
            KeyValue(self._relative(k), e.value, e.mod_revision)
            for k, e in self._backend.range(self._key(prefix))
        ]
        return items, self._backend.revision

    async def compare_and_swap(
        self, key: str, expected: bytes | None, value: bytes | None, lease: Lease | None = None
    ) -> bool:
        k = self._key(key)
        entry = self._backend.get(k)
        if expected is None:
            if entry is not None:
                return False
        elif entry is None or entry.value != expected:
            return False
        op: _Put | _Delete = _Delete(k) if value is None else _Put(k, bytes(value), self._lease_id(lease))
        self._backend.apply([op])
        return True

    async def transaction(
        self,
        *,
        expect_revisions: Mapping[str, int] | None = None,
        puts: Mapping[str, bytes] | None = None,
        deletes: Sequence[str] = (),
    ) -> bool:
        for key, revision in (expect_revisions or {}).items():
            if self._backend.mod_revision(self._key(key)) != revision:
                return False
        ops: list[_Put | _Delete] = [_Put(self._key(k), bytes(v), 0) for k, v in (puts or {}).items()]
        ops += [_Delete(self._key(k)) for k in deletes]
        self._backend.apply(ops)
        return True

    async def grant_lease(self, ttl: float, keep_alive: bool = True) -> MemoryLease:
        self._check_open()
        if ttl <= 0:
            raise MetaStoreError(f"a lease TTL must be positive, got {ttl}")
        granted_at = time.monotonic()
        whole = float(max(1, math.ceil(ttl)))  # etcd grants whole seconds
        lease = MemoryLease(self, self._backend.grant(whole), whole)
        self._leases.add(lease)
        if keep_alive:
            lease._start_keep_alive(granted_at)
        return lease

    def watch_prefix(
        self, prefix: str, start_revision: int | None = None
    ) -> AsyncGenerator[WatchEvent, None]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int | None) -> AsyncGenerator[WatchEvent, None]:
        queue = self._backend.subscribe(self._key(prefix), start_revision)
        self._queues.add(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                if start_revision is not None and event.revision < start_revision:
                    continue
                yield WatchEvent(event.kind, self._relative(event.key), event.value, event.revision)
        finally:
            self._backend.unsubscribe(queue)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for lease in list(self._leases):
            lease._stop_keep_alive()
            lease._alive = False
        self._leases.clear()
        for queue in list(self._queues):
            self._backend.unsubscribe(queue)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


def _conforms(store: MemoryMetaStore, lease: MemoryLease) -> tuple[MetaStore, Lease]:
    """Never called: mypy proves here that the classes implement the protocols."""
    return store, lease
