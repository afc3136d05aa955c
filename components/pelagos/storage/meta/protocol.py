"""The meta store protocol: a byte-level key-value store with transactions,
leases and watches (etcd in every deployment).

Keys are strings relative to the store's root (one etcd can serve several
clusters); typed catalogs above this layer own the encoding of values.

Invariants:
- a compare-and-swap or transaction either applies every operation or none;
- a key written with a lease disappears when the lease expires or is revoked;
- a watch yields every change under its prefix after its start revision, in
  revision order.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kind: Literal["put", "delete"]
    key: str
    value: bytes | None
    revision: int


class Lease(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def ttl(self) -> float: ...

    async def refresh(self) -> None:
        """Renew once; LeaseExpiredError when it is already gone."""
        ...

    async def revoke(self) -> None:
        """Revoke now; every key attached to it is deleted."""
        ...

    @property
    def alive(self) -> bool:
        """False once the lease expired, was revoked, or keep-alive failed."""
        ...


class MetaStore(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def put(self, key: str, value: bytes, lease: Lease | None = None) -> int:
        """Write and return the new revision."""
        ...

    async def delete(self, key: str) -> bool:
        """True when the key existed."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Number of keys deleted."""
        ...

    async def range(self, prefix: str) -> list[KeyValue]:
        """Every key under the prefix, sorted by key."""
        ...

    async def range_with_revision(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under the prefix, sorted by key, and the store revision
        the listing reflects: watch from that revision + 1 to miss nothing."""
        ...

    async def compare_and_swap(
        self, key: str, expected: bytes | None, value: bytes | None, lease: Lease | None = None
    ) -> bool:
        """Set `key` to `value` (None deletes) only if its current value is
        `expected` (None: the key is absent). True when applied."""
        ...

    async def transaction(
        self,
        *,
        expect_revisions: Mapping[str, int] | None = None,
        puts: Mapping[str, bytes] | None = None,
        deletes: Sequence[str] = (),
    ) -> bool:
        """Apply every put and delete only if each key in `expect_revisions`
        still has that mod revision (0: the key is absent). True when applied."""
        ...

    async def grant_lease(self, ttl: float, keep_alive: bool = True) -> Lease:
        """A lease of `ttl` seconds, renewed in the background while `keep_alive`.

        The store may round the TTL up (etcd grants whole seconds, at least
        its minimum, 2 s by default); `Lease.ttl` is what was granted."""
        ...

    def watch_prefix(
        self, prefix: str, start_revision: int | None = None
    ) -> AsyncGenerator[WatchEvent, None]:
        """Changes under `prefix` from `start_revision` (default: now) on.

        The watch is set up when iteration starts, so "now" is that moment;
        to miss nothing after a listing, pass its revision + 1. Stop a watch
        with `aclose()` (or `contextlib.aclosing`); closing the store ends
        every watch it opened."""
        ...

    async def close(self) -> None: ...
