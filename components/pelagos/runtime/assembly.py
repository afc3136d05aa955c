"""Assembling the roles into one process (standalone, and the tests).

`Node` builds the timestamp oracle, the ID allocator, the coordinator, a
data node, a query node and the proxy on three connected stores, wires them
through their APIs, and starts and stops them in dependency order. It is a
lifecycle Component, so standalone plugs it in like any other role.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pelagos.adapters.milvus.server import MilvusServer
from pelagos.coordinator.coordinator import Coordinator
from pelagos.coordinator.idalloc import IdAllocator
from pelagos.coordinator.tso import TimestampOracle
from pelagos.datanode.channel_writer import DataNodeSettings
from pelagos.datanode.datanode import DataNode
from pelagos.datanode.sealing import LOCALITY_MIN_BYTES, SEAL_IDLE_SECONDS, SEGMENT_MAX_BYTES
from pelagos.index import set_max_threads
from pelagos.indexnode.indexnode import IndexNode
from pelagos.proxy.proxy import Proxy
from pelagos.proxy.writer import ChannelWriter
from pelagos.querynode.querynode import QueryNode
from pelagos.runtime.lifecycle import Health
from pelagos.runtime.services import Services
from pelagos.runtime.version import pelagos_version
from pelagos.storage.log.protocol import ChannelLimits, LogBroker
from pelagos.storage.meta.protocol import MetaStore
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger("pelagos.runtime")


@dataclass(slots=True)
class NodeSettings:
    shards_num: int = 1
    segment_max_bytes: int = SEGMENT_MAX_BYTES
    seal_idle_seconds: float = SEAL_IDLE_SECONDS
    locality_min_bytes: int | None = LOCALITY_MIN_BYTES
    time_tick_interval_ms: int = 200
    segment_max_rows: int | None = None
    #: retention of every shard channel (None: the broker's default, unlimited)
    channel_limits: ChannelLimits | None = None
    #: how stale a Bounded read may be
    bounded_staleness_ms: int = 5000
    #: memory of the query node's filter cache
    filter_cache_mb: int = 256


class Node:
    """Every role of Pelagos in one process."""

    name = "node"

    def __init__(
        self,
        *,
        broker: LogBroker,
        meta: MetaStore,
        objects: ObjectStore,
        settings: NodeSettings | None = None,
    ) -> None:
        self.settings = settings or NodeSettings()
        self.broker = broker
        self.meta = meta
        self.objects = objects
        self.tso = TimestampOracle(meta)
        self.ids = IdAllocator(meta)
        self.coordinator = Coordinator(
            meta,
            broker,
            self.tso.allocate,
            self.ids.allocate,
            default_shards=self.settings.shards_num,
            channel_limits=self.settings.channel_limits,
        )
        self.datanode = DataNode(
            broker=broker,
            objects=objects,
            checkpoint=self.coordinator.catalog.checkpoint,
            commit=self.coordinator.commit_flush,
            allocate_ids=self.ids.allocate,
            settings=DataNodeSettings(
                segment_max_bytes=self.settings.segment_max_bytes,
                segment_max_rows=self.settings.segment_max_rows,
                seal_idle_seconds=self.settings.seal_idle_seconds,
                locality_min_bytes=self.settings.locality_min_bytes,
            ),
        )
        self.querynode = QueryNode(
            broker=broker, objects=objects, filter_cache_bytes=self.settings.filter_cache_mb << 20
        )
        self.indexnode = IndexNode(objects=objects)
        self.writer = ChannelWriter(
            broker, self.tso.allocate, tick_interval=self.settings.time_tick_interval_ms / 1000
        )
        self.proxy = Proxy(
            self.coordinator, self.writer, bounded_staleness_ms=self.settings.bounded_staleness_ms
        )
        self._started = False

    async def start(self) -> None:
        await self.tso.start()
        await self.coordinator.start()
        self.coordinator.register_datanode(self.datanode)
        self.coordinator.register_querynode(self.querynode)
        self.coordinator.register_indexnode(self.indexnode)
        await self.coordinator.resume_workers()
        for c in await self._all_collections():
            self.writer.track(c)
        await self.writer.start()
        self._started = True

    async def _all_collections(self) -> list[list[str]]:
        out = []
        for db in await self.coordinator.list_databases():
            for c in await self.coordinator.list_collections(db.name):
                out.append(c.channels)
        return out

    async def stop(self) -> None:
        await self.writer.stop()
        await self.querynode.stop()
        await self.datanode.stop()
        await self.tso.close()
        self._started = False

    def health(self) -> Health:
        return Health(ok=self._started, detail="running" if self._started else "stopped")


class ServingNode:
    """A Node plus the Milvus protocol server in front of its proxy: standalone's one role."""

    name = "pelagos"

    def __init__(self, services: Services) -> None:
        cfg = services.config
        self.node = Node(
            broker=services.log,
            meta=services.meta,
            objects=services.objects,
            settings=NodeSettings(
                shards_num=cfg.dataset.shards_num,
                segment_max_bytes=cfg.dataset.segment_max_bytes,
                seal_idle_seconds=cfg.dataset.seal_idle_seconds,
                locality_min_bytes=cfg.dataset.locality_order_min_bytes,
                time_tick_interval_ms=cfg.dataset.time_tick_interval_ms,
                segment_max_rows=cfg.dataset.segment_max_rows,
                channel_limits=cfg.log.retention.as_limits(),
                bounded_staleness_ms=cfg.query.graceful_time_ms,
                filter_cache_mb=cfg.query.filter_cache_mb,
            ),
        )
        if cfg.query.search_threads:
            set_max_threads(cfg.query.search_threads)
        self.server = MilvusServer(
            self.node.proxy,
            cfg.server.host,
            cfg.server.port,
            server_info={"build_tags": pelagos_version(), "deploy_mode": "STANDALONE"},
            transport=cfg.server.transport,
            busy_poll_us=cfg.server.busy_poll_us,
        )

    async def start(self) -> None:
        await self.node.start()
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop(grace=2.0)
        await self.node.stop()

    def health(self) -> Health:
        return self.node.health()
