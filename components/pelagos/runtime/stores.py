"""The three stores as lifecycle Components: connect on start, close on stop.

The concrete classes are imported when a store connects, not when this
module is imported, so `pelagos version` or `pelagos config show` never pay
for the gRPC and NATS client imports.

Invariants:
- `store` is available between a successful `start()` and `stop()`, and
  raises ServiceUnavailableError outside that window;
- `stop()` closes the store once and is idempotent.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar, cast

from pelagos.errors import ServiceUnavailableError
from pelagos.runtime.config import Config
from pelagos.runtime.lifecycle import Health
from pelagos.storage.log.protocol import LogBroker
from pelagos.storage.meta.protocol import MetaStore
from pelagos.storage.objects.protocol import ObjectStore


class _Closable(Protocol):
    async def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class StoreComponent(Generic[S]):
    def __init__(self, name: str, connect: Callable[[], Awaitable[S]], describe: str) -> None:
        self.name = name
        self._connect = connect
        self._describe = describe
        self._store: S | None = None

    @property
    def store(self) -> S:
        if self._store is None:
            raise ServiceUnavailableError(f"the {self.name} is not connected (not started, or stopped)")
        return self._store

    async def start(self) -> None:
        if self._store is None:
            self._store = await self._connect()

    async def stop(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    def health(self) -> Health:
        if self._store is None:
            return Health(False, f"{self._describe}: not connected")
        return Health(True, self._describe)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def log_broker(config: Config, nats_url: Callable[[], str]) -> StoreComponent[LogBroker]:
    """The log broker on the NATS server at `nats_url()` (read at start)."""

    async def connect() -> LogBroker:
        from pelagos.storage.log.jetstream import JetStreamLogBroker

        broker = JetStreamLogBroker.connect([nats_url()], stream_prefix=config.log.stream_prefix)
        return cast(LogBroker, await _maybe_await(broker))

    return StoreComponent("log broker", connect, f"jetstream, streams {config.log.stream_prefix}*")


def meta_store(config: Config, endpoints: Callable[[], list[str]]) -> StoreComponent[MetaStore]:
    """The meta store on the etcd at `endpoints()` (read at start)."""

    async def connect() -> MetaStore:
        from pelagos.storage.meta.etcd import EtcdMetaStore

        return await EtcdMetaStore.connect(endpoints(), root=config.meta.root)

    return StoreComponent("meta store", connect, f"etcd, root {config.meta.root}/")


def object_store(config: Config) -> StoreComponent[ObjectStore]:
    """Local disk under objects.local_root (default <data_dir>/objects), or S3."""
    objects = config.objects
    if objects.kind == "s3":
        s3 = objects.s3

        async def connect() -> ObjectStore:
            from pelagos.storage.objects.s3 import S3ObjectStore

            store = S3ObjectStore(
                s3.endpoint,
                s3.access_key,
                s3.secret_key.get_secret_value(),
                s3.bucket,
                prefix=s3.prefix,
                secure=s3.secure,
            )
            return cast(ObjectStore, await _maybe_await(store))

        return StoreComponent("object store", connect, f"s3 {s3.endpoint}/{s3.bucket}/{s3.prefix}")

    root = config.objects_root

    async def connect_local() -> ObjectStore:
        from pelagos.storage.objects.local import LocalObjectStore

        root.mkdir(parents=True, exist_ok=True)
        return cast(ObjectStore, LocalObjectStore(root))

    return StoreComponent("object store", connect_local, f"local {root}")
