"""`pelagos standalone`: every role in one process, on servers it starts itself.

Start-up, in order (a Lifecycle; independent steps run concurrently):
1. lock `<data_dir>/standalone.lock` (one launcher per data dir), check that
   server.port and server.metrics_port are free, kill children an earlier
   launcher left behind (see pelagos.runtime.children);
2. unless log.nats_url is set, start nats-server (JetStream data in
   `<data_dir>/nats`); unless meta.endpoints is set, start etcd (data in
   `<data_dir>/etcd`); their ports come from the config, else
   `<data_dir>/ports.json`, else free ones (pelagos.runtime.ports); start
   the /metrics and /healthz server; open the object store (local disk in
   `<data_dir>/objects` unless objects.kind is "s3");
3. connect the log broker and the meta store;
4. build and start the roles: `roles` (default pelagos.runtime.roles.
   STANDALONE_ROLES), each factory called with the connected Services.

Stop (SIGINT, SIGTERM, or `stop()`): roles, then stores, then the HTTP
server and the child servers, in reverse start order; a failing stop is
logged and the rest still stop.

Invariants:
- a second start on the same data dir finds the same etcd keys and
  JetStream streams (same data directories, same ports when still free);
- when start-up fails, whatever started is stopped before the error is
  raised, so a failed start leaves no process behind;
- when the launcher dies without stopping (SIGKILL), the watchdog kills its
  children at once, and the next start on the data dir kills any the
  watchdog missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from pelagos.errors import ConfigError, ServerProcessError
from pelagos.observability.metrics import RoleMetrics
from pelagos.runtime.children import ChildRecord, ChildServerComponent, Watchdog
from pelagos.runtime.config import Config
from pelagos.runtime.http import OpsHttpServer
from pelagos.runtime.lifecycle import Lifecycle, LifecycleHealth, StopFailure
from pelagos.runtime.ports import PortBook
from pelagos.runtime.servers.base import ensure_port_free
from pelagos.runtime.services import RoleFactory, Services
from pelagos.runtime.stores import StoreComponent, log_broker, meta_store, object_store
from pelagos.runtime.version import pelagos_version
from pelagos.storage.log.protocol import LogBroker
from pelagos.storage.meta.protocol import MetaStore
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger(__name__)

CHILD_HOST = "127.0.0.1"
"""Child servers listen on loopback only, whatever server.host says."""
LOCK_FILE = "standalone.lock"
_ETCD_SINGLE_MEMBER_ENV = {"ETCD_HEARTBEAT_INTERVAL": "10", "ETCD_ELECTION_TIMEOUT": "100"}

_metrics = RoleMetrics("runtime")
_start_seconds = _metrics.gauge("start_duration", "Seconds the last start-up took", unit="seconds")
_build_info = _metrics.gauge("build_info", "Always 1; the labels say which Pelagos runs", ["version", "mode"])


class DataDirLock:
    """An exclusive flock on `<data_dir>/standalone.lock`; the kernel drops it when we die."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ServerProcessError(
                f"the data directory {self.path.parent} is in use by another pelagos standalone "
                f"(pid {holder}); stop it or choose another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class Standalone:
    """Every Pelagos role in this process, on child nats-server and etcd.

    One object starts and stops once; build a new one to start again.
    """

    def __init__(self, config: Config, roles: Sequence[RoleFactory] | None = None) -> None:
        if config.server.port == config.server.metrics_port:
            raise ConfigError(
                f"server.port and server.metrics_port are both {config.server.port}; "
                "give them different ports"
            )
        self.config = config
        self.data_dir = config.data_dir.expanduser().resolve()
        if roles is None:
            from pelagos.runtime.roles import STANDALONE_ROLES

            roles = STANDALONE_ROLES
        self._role_factories = list(roles)
        self.lifecycle = Lifecycle()
        self.services: Services | None = None
        self.ports: dict[str, int] = {}
        self.startup_seconds: float | None = None
        self._lock = DataDirLock(self.data_dir)
        self._watchdog = Watchdog()
        self._record = ChildRecord(self.data_dir, self._watchdog)
        self._nats_url = config.log.nats_url
        self._etcd_endpoints = list(config.meta.endpoints)
        self._log: StoreComponent[LogBroker] | None = None
        self._meta: StoreComponent[MetaStore] | None = None
        self._objects: StoreComponent[ObjectStore] | None = None
        self.http: OpsHttpServer | None = None

    def health(self) -> LifecycleHealth:
        return self.lifecycle.health()

    @property
    def nats_url(self) -> str:
        return self._nats_url

    @property
    def etcd_endpoints(self) -> list[str]:
        return list(self._etcd_endpoints)

    # --- start / stop ------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; on failure stop what started and raise."""
        began = time.monotonic()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create data_dir {self.data_dir}: {exc.strerror or exc}") from None
        self._lock.acquire()
        try:
            await self._start(began)
        except BaseException:
            await asyncio.shield(self.lifecycle.stop())  # what started before the failure
            await self._release()
            raise

    async def _start(self, began: float) -> None:
        server = self.config.server
        ensure_port_free(server.host, server.port, "the Milvus endpoint (server.port / --port)")
        ensure_port_free(server.host, server.metrics_port, "/metrics and /healthz (server.metrics_port)")
        killed = await asyncio.to_thread(self._record.kill_stale)
        if killed:
            log.warning("cleaned %d child process(es) left by an earlier launcher: %s", len(killed), killed)

        self._add_infrastructure()
        await self.lifecycle.start()

        assert self._log is not None and self._meta is not None and self._objects is not None
        self.services = Services(
            config=self.config,
            log=self._log.store,
            meta=self._meta.store,
            objects=self._objects.store,
            nats_url=self._nats_url,
            etcd_endpoints=list(self._etcd_endpoints),
        )
        previous: list[str] = ["log broker", "meta store", "object store", "http"]
        for factory in self._role_factories:
            role = factory(self.services)
            self.lifecycle.add(role, depends_on=previous)
            previous = [role.name]
        if self._role_factories:
            await self.lifecycle.start()

        self.startup_seconds = time.monotonic() - began
        _start_seconds.set(self.startup_seconds)
        _build_info.labels(version=pelagos_version(), mode="standalone").set(1)
        log.info(
            "Pelagos standalone ready in %.2fs on %s:%d (metrics on :%d, data in %s)",
            self.startup_seconds,
            server.host,
            server.port,
            server.metrics_port,
            self.data_dir,
        )

    def _add_infrastructure(self) -> None:
        config = self.config
        lc = self.lifecycle
        book = PortBook(self.data_dir, CHILD_HOST)
        children: list[ChildServerComponent] = []

        if not config.log.nats_url:
            from pelagos.runtime.servers.nats import NatsServer

            nats = NatsServer(
                self.data_dir / "nats",
                host=CHILD_HOST,
                port=book.port("nats", config.log.nats_port),
                max_payload=config.log.max_payload,
                monitor_port=book.port("nats_monitor"),
            )
            self._nats_url = nats.url
            nats_child = ChildServerComponent("nats-server", nats, self._record, describe=lambda: nats.url)
            children.append(nats_child)
        if not config.meta.endpoints:
            from pelagos.runtime.servers.etcd import EtcdServer

            # A single-member etcd has no peer to detect the failure of, so short
            # raft timers cost nothing; with the defaults (100 ms / 1 s) a restart
            # on existing data waits 1-2 s to elect itself, with these ~0.2 s.
            # etcd reads them from its environment, which it inherits from ours.
            for var, value in _ETCD_SINGLE_MEMBER_ENV.items():
                os.environ.setdefault(var, value)

            etcd = EtcdServer(
                self.data_dir / "etcd",
                host=CHILD_HOST,
                client_port=book.port("etcd_client", config.meta.etcd_client_port),
                peer_port=book.port("etcd_peer", config.meta.etcd_peer_port),
            )
            self._etcd_endpoints = [etcd.endpoint]
            children.append(ChildServerComponent("etcd", etcd, self._record, describe=lambda: etcd.endpoint))
        if children:
            book.save()
            self.ports = book.as_dict()
            self._watchdog.start()
        for child in children:
            lc.add(child)

        self.http = OpsHttpServer(config.server.host, config.server.metrics_port, self.lifecycle.health)
        lc.add(self.http)
        self._objects = lc.add(object_store(config))  # type: ignore[assignment]
        self._log = log_broker(config, lambda: self._nats_url)
        lc.add(self._log, depends_on=["nats-server"] if "nats-server" in lc else ())
        self._meta = meta_store(config, lambda: self._etcd_endpoints)
        lc.add(self._meta, depends_on=["etcd"] if "etcd" in lc else ())

    async def stop(self) -> list[StopFailure]:
        """Stop everything in reverse start order; returns the stops that failed."""
        failures = await self.lifecycle.stop()
        await self._release()
        return failures

    async def _release(self) -> None:
        await asyncio.to_thread(self._watchdog.close)
        self._lock.release()

    # --- running until signalled -------------------------------------------------------

    async def run(self) -> None:
        """Start, serve until SIGINT or SIGTERM, stop. Raises when start-up fails.

        A signal during start-up cancels it (what started is stopped) and
        returns normally: the user asked to stop.
        """
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        start = asyncio.ensure_future(self.start())
        signalled: list[str] = []

        def on_signal(sig: signal.Signals) -> None:
            if signalled:
                log.info("%s again: already stopping", sig.name)
                return
            signalled.append(sig.name)
            log.info("%s received: stopping", sig.name)
            if not start.done():
                start.cancel()
            stopping.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            try:
                await start
            except asyncio.CancelledError:
                if not signalled:
                    raise
                log.info("start-up interrupted; everything that started was stopped")
                return
            await stopping.wait()
            began = time.monotonic()
            failures = await self.stop()
            if failures:
                log.warning("stopped with %d failure(s): %s", len(failures), [f.name for f in failures])
            log.info("Pelagos standalone stopped in %.2fs", time.monotonic() - began)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
