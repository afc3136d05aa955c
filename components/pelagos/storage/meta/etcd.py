"""The meta store on etcd v3, through the asyncio client etcd3aio.

Invariants:
- every key lives under `root + "/"`; keys handed in and out are relative to
  it, so several clusters (or tests) can share one etcd without seeing each
  other's keys;
- compare-and-swap and transactions are single etcd transactions: all of
  their writes apply at one revision, or none does;
- `range` reads every page at the revision of its first page, so a large
  listing is one consistent snapshot;
- a lease with keep-alive is renewed in the background; `alive` turns False
  once etcd says it is gone, or once renewal failed for a whole TTL;
- an unreachable etcd raises StoreUnavailableError within the store's
  timeout, a lease that is gone LeaseExpiredError, anything else
  MetaStoreError (see etcd_errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

from etcd3aio import Etcd3Client, SortOrder, SortTarget, prefix_range_end
from etcd3aio._protobuf import Compare

from pelagos.errors import ConfigError, LeaseExpiredError, MetaStoreError, StorageError
from pelagos.storage.meta.etcd_errors import translate
from pelagos.storage.meta.keepalive import keep_alive_until_lost
from pelagos.storage.meta.protocol import KeyValue, Lease, MetaStore, WatchEvent

T = TypeVar("T")

_PAGE = 512  # keys per range request: keeps each response well under gRPC's 4 MiB
_PROBE_KEY = b"\x00pelagos-probe"
_EVENT_DELETE = 1  # mvccpb.Event.DELETE

# gRPC waits up to 120 s between reconnect attempts by default; after an etcd
# restart we want the channel back within a second
_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _normalise_endpoints(endpoints: str | Sequence[str]) -> list[str]:
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    out = []
    for item in items:
        item = item.strip()
        for scheme in ("http://", "https://"):
            item = item.removeprefix(scheme)
        if item:
            out.append(item.rstrip("/"))
    if not out:
        raise ConfigError("no etcd endpoint given; pass host:port, e.g. 127.0.0.1:2379")
    return out


class EtcdLease:
    """A lease granted by etcd; see `Lease`."""

    def __init__(self, store: EtcdMetaStore, lease_id: int, ttl: float, granted_at: float) -> None:
        self._store = store
        self._id = lease_id
        self._ttl = ttl
        self._alive = True
        # the latest moment etcd may still hold the lease: TTL counted from when
        # the last successful grant or renewal was *sent*
        self._deadline = granted_at + ttl
        self._task: asyncio.Task[None] | None = None

    @property
    def id(self) -> int:
        return self._id

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def alive(self) -> bool:
        return self._alive and time.monotonic() < self._deadline

    async def refresh(self) -> None:
        remaining = await self._renew(self._store._timeout)
        if remaining <= 0:
            raise LeaseExpiredError(f"lease {self._id:x} expired or was revoked; grant a new lease")

    async def revoke(self) -> None:
        self._stop_keep_alive()
        self._alive = False
        with contextlib.suppress(LeaseExpiredError):
            await self._store._revoke(self._id)
        self._store._leases.discard(self)

    async def _renew(self, timeout: float) -> float:
        sent = time.monotonic()
        try:
            remaining = await self._store._renew(self._id, timeout)
        except LeaseExpiredError:
            self._mark_dead()
            raise
        if remaining <= 0:
            self._mark_dead()
        else:
            self._deadline = max(self._deadline, sent + remaining)
        return remaining

    def _start_keep_alive(self) -> None:
        self._task = asyncio.create_task(self._keep_alive(), name=f"etcd-lease-{self._id:x}")

    async def _keep_alive(self) -> None:
        await keep_alive_until_lost(
            self._renew, lease_id=self._id, ttl=self._ttl, granted_at=self._deadline - self._ttl
        )
        self._mark_dead()

    def _mark_dead(self) -> None:
        self._alive = False
        self._store._leases.discard(self)

    def _stop_keep_alive(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None


class EtcdMetaStore:
    """`MetaStore` on etcd. Build it with `await EtcdMetaStore.connect(...)`."""

    def __init__(self, client: Etcd3Client, endpoints: list[str], root: str, timeout: float) -> None:
        root = root.strip("/")
        if not root:
            raise ConfigError("the meta store root must be a non-empty name, e.g. 'pelagos'")
        self._client = client
        self._endpoints = ",".join(endpoints)
        self._root = root
        self._prefix = root + "/"
        self._timeout = timeout
        self._closed = False
        self._leases: set[EtcdLease] = set()
        self._watches: weakref.WeakSet[AsyncGenerator[WatchEvent, None]] = weakref.WeakSet()

    @classmethod
    async def connect(
        cls, endpoints: str | list[str], *, root: str = "pelagos", timeout: float = 5.0
    ) -> EtcdMetaStore:
        """Connect to etcd and check it answers within `timeout` seconds.

        `timeout` also bounds every later request. StoreUnavailableError when
        etcd cannot be reached.
        """
        eps = _normalise_endpoints(endpoints)
        client = Etcd3Client(eps)
        _tune_channel(client)
        await client.connect()
        store = cls(client, eps, root, timeout)
        try:
            await store._call("connect", lambda kv: kv.get(_PROBE_KEY, timeout=timeout))
        except BaseException:
            await client.close()
            raise
        return store

    @property
    def root(self) -> str:
        return self._root

    @property
    def endpoints(self) -> str:
        return self._endpoints

    # --- keys -----------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        return (self._prefix + key).encode()

    def _relative(self, key: bytes) -> str:
        return key.decode()[len(self._prefix) :]

    async def _call(self, operation: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run `fn(kv_service)`, translating every client failure."""
        if self._closed or self._client.kv is None:
            raise MetaStoreError(f"the meta store was closed; cannot {operation}")
        try:
            return await fn(self._client.kv)
        except StorageError:
            raise
        except Exception as exc:
            raise translate(exc, operation=operation, endpoints=self._endpoints) from exc

    # --- MetaStore ------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        k = self._key(key)
        resp = await self._call("get", lambda kv: kv.get(k, timeout=self._timeout))
        if not resp.kvs:
            return None
        item = resp.kvs[0]
        return KeyValue(key, bytes(item.value), int(item.mod_revision))

    async def put(self, key: str, value: bytes, lease: Lease | None = None) -> int:
        k = self._key(key)
        lease_id = lease.id if lease is not None else 0
        resp = await self._call("put", lambda kv: kv.put(k, value, lease=lease_id, timeout=self._timeout))
        return int(resp.header.revision)

    async def delete(self, key: str) -> bool:
        k = self._key(key)
        resp = await self._call("delete", lambda kv: kv.delete(k, timeout=self._timeout))
        return int(resp.deleted) > 0

    async def delete_prefix(self, prefix: str) -> int:
        start = self._key(prefix)
        end = prefix_range_end(start)
        resp = await self._call("delete_prefix", lambda kv: kv.delete(start, end, timeout=self._timeout))
        return int(resp.deleted)

    async def range(self, prefix: str) -> list[KeyValue]:
        items, _ = await self.range_with_revision(prefix)
        return items

    async def range_with_revision(self, prefix: str) -> tuple[list[KeyValue], int]:
        start = self._key(prefix)
        end = prefix_range_end(start)
        revision = 0
        out: list[KeyValue] = []
        while True:
            resp = await self._call("range", functools.partial(self._range_page, start, end, revision))
            if revision == 0:
                revision = int(resp.header.revision)
            out.extend(
                KeyValue(self._relative(bytes(i.key)), bytes(i.value), int(i.mod_revision)) for i in resp.kvs
            )
            if not resp.more or not resp.kvs:
                return out, revision
            start = bytes(resp.kvs[-1].key) + b"\x00"

    async def _range_page(self, start: bytes, end: bytes, revision: int, kv: Any) -> Any:
        return await kv.get(
            start,
            end,
            revision=revision,
            limit=_PAGE,
            sort_order=SortOrder.ASCEND,
            sort_target=SortTarget.KEY,
            timeout=self._timeout,
        )

    async def compare_and_swap(
        self, key: str, expected: bytes | None, value: bytes | None, lease: Lease | None = None
    ) -> bool:
        k = self._key(key)
        lease_id = lease.id if lease is not None else 0

        async def txn(kv: Any) -> Any:
            cmp = kv.txn_compare_version(k, 0) if expected is None else kv.txn_compare_value(k, expected)
            op = kv.txn_op_delete(k) if value is None else kv.txn_op_put(k, value, lease=lease_id)
            return await kv.txn([cmp], [op], [], timeout=self._timeout)

        resp = await self._call("compare_and_swap", txn)
        return bool(resp.succeeded)

    async def transaction(
        self,
        *,
        expect_revisions: Mapping[str, int] | None = None,
        puts: Mapping[str, bytes] | None = None,
        deletes: Sequence[str] = (),
    ) -> bool:
        compares = []
        for key, revision in (expect_revisions or {}).items():
            if revision == 0:
                compares.append(
                    Compare(result=Compare.EQUAL, target=Compare.VERSION, key=self._key(key), version=0)
                )
            else:
                compares.append(
                    Compare(
                        result=Compare.EQUAL, target=Compare.MOD, key=self._key(key), mod_revision=revision
                    )
                )

        async def txn(kv: Any) -> Any:
            ops = [kv.txn_op_put(self._key(k), v) for k, v in (puts or {}).items()]
            ops += [kv.txn_op_delete(self._key(k)) for k in deletes]
            return await kv.txn(compares, ops, [], timeout=self._timeout)

        resp = await self._call("transaction", txn)
        return bool(resp.succeeded)

    async def grant_lease(self, ttl: float, keep_alive: bool = True) -> EtcdLease:
        if ttl <= 0:
            raise MetaStoreError(f"a lease TTL must be positive, got {ttl}")
        whole = max(1, math.ceil(ttl))
        granted_at = time.monotonic()
        lease_service = self._client.lease

        async def grant(_kv: Any) -> Any:
            if lease_service is None:
                raise MetaStoreError("the meta store was closed; cannot grant a lease")
            return await lease_service.grant(whole, timeout=self._timeout)

        resp = await self._call("grant_lease", grant)
        if resp.error:
            raise MetaStoreError(f"etcd refused a lease of {whole}s: {resp.error}")
        lease = EtcdLease(self, int(resp.ID), float(resp.TTL), granted_at)
        self._leases.add(lease)
        if keep_alive:
            lease._start_keep_alive()
        return lease

    def watch_prefix(
        self, prefix: str, start_revision: int | None = None
    ) -> AsyncGenerator[WatchEvent, None]:
        watch = self._watch(prefix, start_revision)
        self._watches.add(watch)
        return watch

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for lease in list(self._leases):
            lease._stop_keep_alive()
            lease._alive = False
        self._leases.clear()
        for watch in list(self._watches):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await watch.aclose()
        self._watches.clear()
        await self._client.close()

    # --- internals --------------------------------------------------------------

    async def _renew(self, lease_id: int, timeout: float) -> float:
        """One keep-alive round trip; the remaining TTL (0: the lease is gone)."""
        lease_service = self._client.lease

        async def renew(_kv: Any) -> float:
            if lease_service is None:
                raise MetaStoreError("the meta store was closed; cannot renew a lease")
            async with asyncio.timeout(min(timeout, self._timeout)):
                call = lease_service.keep_alive(lease_id)
                try:
                    async for response in call:
                        return float(response.TTL)
                finally:
                    call.cancel()
            return 0.0

        return await self._call("lease keep-alive", renew)

    async def _revoke(self, lease_id: int) -> None:
        lease_service = self._client.lease

        async def revoke(_kv: Any) -> None:
            if lease_service is None:
                raise MetaStoreError("the meta store was closed; cannot revoke a lease")
            await lease_service.revoke(lease_id, timeout=self._timeout)

        await self._call("revoke_lease", revoke)

    async def _watch(self, prefix: str, start_revision: int | None) -> AsyncGenerator[WatchEvent, None]:
        watch_service = self._client.watch
        if self._closed or watch_service is None:
            raise MetaStoreError("the meta store was closed; cannot watch")
        start = self._key(prefix)
        stream = cast(
            "AsyncGenerator[Any, None]",
            watch_service.watch(start, prefix_range_end(start), start_revision=start_revision or 0),
        )
        try:
            async with contextlib.aclosing(stream):
                async for response in stream:
                    if response.compact_revision > 0:
                        raise MetaStoreError(
                            f"cannot watch {prefix!r} from revision {start_revision}: etcd compacted its "
                            f"history up to {response.compact_revision}; list again and watch from there"
                        )
                    if response.canceled:
                        raise MetaStoreError(
                            f"etcd cancelled the watch on {prefix!r}: {response.cancel_reason}"
                        )
                    for event in response.events:
                        kind: Literal["put", "delete"] = "delete" if event.type == _EVENT_DELETE else "put"
                        yield WatchEvent(
                            kind=kind,
                            key=self._relative(bytes(event.kv.key)),
                            value=None if kind == "delete" else bytes(event.kv.value),
                            revision=int(event.kv.mod_revision),
                        )
        except StorageError:
            raise
        except asyncio.CancelledError:
            # closing the channel cancels its streams "locally": that ends the
            # watch; a cancellation of the consuming task itself propagates
            task = asyncio.current_task()
            if self._closed and task is not None and task.cancelling() == 0:
                return
            raise
        except Exception as exc:
            if self._closed:
                return
            raise translate(exc, operation="watch", endpoints=self._endpoints) from exc


def _tune_channel(client: Etcd3Client) -> None:
    """Shorten gRPC's reconnect back-off (etcd3aio exposes no option for it)."""
    manager = getattr(client, "_manager", None)
    options = getattr(manager, "grpc_options", None)
    if isinstance(options, list):
        options.extend(_CHANNEL_OPTIONS)


def _conforms(store: EtcdMetaStore, lease: EtcdLease) -> tuple[MetaStore, Lease]:
    """Never called: mypy proves here that the classes implement the protocols."""
    return store, lease
