"""The coordinator: DDL, timestamps and IDs, segments, loads, index tasks.

One process holds the root, data, query and index coordination roles (as
Milvus's mixcoord does). It keeps the catalog in memory, writes through to
the meta store first (the meta store is the truth; memory is a cache), and
tells worker nodes what to do through their APIs (DataNodeAPI,
QueryNodeAPI), never by touching their objects.

Invariants:
- every DDL change is persisted before it is acknowledged;
- a collection's channels exist in the log broker before the collection is
  visible, and are deleted only after the collection is gone from the catalog;
- a flush commit (segments + deletes + checkpoint) is one meta transaction,
  and query nodes serving the channel hear of it afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from pelagos.coordinator import metrics
from pelagos.coordinator.catalog import Catalog
from pelagos.coordinator.indexes import IndexCoordinator
from pelagos.errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    CollectionNotFoundError,
    DatabaseNotFoundError,
    InvalidArgumentError,
    PartitionNotFoundError,
)
from pelagos.interfaces.messages import channel_name
from pelagos.interfaces.roles import (
    ChannelView,
    DataNodeAPI,
    FlushCommit,
    IndexNodeAPI,
    QueryNodeAPI,
    SegmentInfo,
)
from pelagos.interfaces.types import (
    DEFAULT_DATABASE,
    DEFAULT_PARTITION,
    AliasInfo,
    CollectionInfo,
    ConsistencyLevel,
    DatabaseInfo,
    IndexInfo,
    LoadState,
    PartitionInfo,
)
from pelagos.schema import CollectionSchema
from pelagos.storage.log.protocol import ChannelLimits, LogBroker
from pelagos.storage.meta.protocol import MetaStore

log = logging.getLogger("pelagos.coordinator")

Allocator = Callable[[int], Awaitable[int]]

MAX_PARTITIONS = 1024
DEFAULT_PARTITION_KEY_PARTITIONS = 16


class Coordinator:
    def __init__(
        self,
        meta: MetaStore,
        log_broker: LogBroker,
        allocate_ts: Allocator,
        allocate_ids: Allocator,
        *,
        default_shards: int = 1,
        channel_limits: ChannelLimits | None = None,
    ) -> None:
        self.catalog = Catalog(meta)
        self.log = log_broker
        self._allocate_ts = allocate_ts
        self._allocate_ids = allocate_ids
        self.default_shards = default_shards
        self.channel_limits = channel_limits
        self._lock = asyncio.Lock()
        self._databases: dict[str, DatabaseInfo] = {}
        self._collections: dict[int, CollectionInfo] = {}
        self._aliases: dict[tuple[str, str], int] = {}
        #: (db, name or alias) -> the collection as callers see it (with aliases); cleared on every change
        self._views: dict[tuple[str, str], CollectionInfo] = {}
        self._loads: dict[int, list[int]] = {}
        self.datanodes: list[DataNodeAPI] = []
        self.querynodes: list[QueryNodeAPI] = []
        #: one lock per channel: a flush commit and every view sent to query nodes are
        #: serialised, so a view is read whole and views reach a query node in order
        self._channel_locks: dict[str, asyncio.Lock] = {}
        #: channel -> index into self.querynodes of its leader
        self._leaders: dict[str, int] = {}
        self.index = IndexCoordinator(self.catalog, allocate_ids, self.sync_collection)
        #: notified after every flush commit (waiters of wait_flushed)
        self._flushes = asyncio.Condition()

    # --- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        for db in await self.catalog.databases():
            self._databases[db.name] = db
        if DEFAULT_DATABASE not in self._databases:
            db = DatabaseInfo(
                name=DEFAULT_DATABASE, database_id=1, created_ts=await self.allocate_timestamp()
            )
            await self.catalog.save_database(db)
            self._databases[db.name] = db
        for c in await self.catalog.collections():
            self._collections[c.collection_id] = c
            self._views.clear()
        for db_name, alias, cid in await self.catalog.aliases():
            self._aliases[(db_name, alias)] = cid
            self._views.clear()
        for cid, load in (await self.catalog.loads()).items():
            self._loads[cid] = list(load.get("partitions", []))
        await self.index.load(list(self._collections))

    async def resume_workers(self) -> None:
        """After the nodes registered: data nodes watch every channel, loads are served again."""
        for c in list(self._collections.values()):
            for ch in c.channels:
                await self._watch(c, ch)
        for cid in list(self._loads):
            loaded = self._collections.get(cid)
            if loaded is not None:
                await self._serve(loaded)
        for c in list(self._collections.values()):
            await self.index.schedule(c, await self.catalog.segments(c.collection_id))

    def register_datanode(self, node: DataNodeAPI) -> None:
        self.datanodes.append(node)

    def register_querynode(self, node: QueryNodeAPI) -> None:
        self.querynodes.append(node)

    def register_indexnode(self, node: IndexNodeAPI) -> None:
        self.index.indexnodes.append(node)

    # --- time and ids ------------------------------------------------------------------
    async def allocate_timestamp(self, count: int = 1) -> int:
        return await self._allocate_ts(count)

    async def allocate_ids(self, count: int) -> int:
        return await self._allocate_ids(count)

    # --- databases ---------------------------------------------------------------------
    async def create_database(self, name: str, properties: dict[str, str]) -> None:
        async with self._lock:
            if name in self._databases:
                raise AlreadyExistsError(f"database already exist: {name}")
            db = DatabaseInfo(
                name=name,
                database_id=await self.allocate_ids(1),
                created_ts=await self.allocate_timestamp(),
                properties=dict(properties),
            )
            await self.catalog.save_database(db)
            self._databases[name] = db

    async def drop_database(self, name: str) -> None:
        async with self._lock:
            if name == DEFAULT_DATABASE:
                raise InvalidArgumentError("can not drop default database")
            if name not in self._databases:
                raise DatabaseNotFoundError(f"database not found[database={name}]")
            if any(c.db == name for c in self._collections.values()):
                raise InvalidArgumentError(
                    f"database:{name} not empty, must drop all collections before drop database"
                )
            await self.catalog.delete_database(name)
            del self._databases[name]

    async def list_databases(self) -> list[DatabaseInfo]:
        return sorted(self._databases.values(), key=lambda d: d.created_ts)

    def database(self, name: str) -> DatabaseInfo:
        db = self._databases.get(name or DEFAULT_DATABASE)
        if db is None:
            raise DatabaseNotFoundError(f"database not found[database={name}]")
        return db

    async def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        async with self._lock:
            db = self.database(name)
            props = {k: v for k, v in {**db.properties, **properties}.items() if k not in delete_keys}
            new = replace(db, properties=props)
            await self.catalog.save_database(new)
            self._databases[name] = new

    # --- collections --------------------------------------------------------------------
    def _find(self, db: str, name: str) -> CollectionInfo | None:
        db = db or DEFAULT_DATABASE
        for c in self._collections.values():
            if c.db == db and c.name == name:
                return c
        cid = self._aliases.get((db, name))
        if cid is not None:
            return self._collections.get(cid)
        return None

    def collection(self, db: str, name: str) -> CollectionInfo:
        key = (db or DEFAULT_DATABASE, name)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        self.database(db)
        c = self._find(db, name)
        if c is None:
            raise CollectionNotFoundError(
                f"collection not found[database={db or DEFAULT_DATABASE}][collection={name}]"
            )
        view = self._with_aliases(c)
        self._views[key] = view
        return view

    def _with_aliases(self, c: CollectionInfo) -> CollectionInfo:
        aliases = sorted(a for (db, a), cid in self._aliases.items() if cid == c.collection_id)
        return replace(c, aliases=aliases)

    async def create_collection(
        self,
        db: str,
        name: str,
        schema: CollectionSchema,
        *,
        shards_num: int,
        consistency_level: ConsistencyLevel,
        properties: dict[str, str],
        num_partitions: int,
    ) -> CollectionInfo:
        async with self._lock:
            db = db or DEFAULT_DATABASE
            self.database(db)
            existing = self._find(db, name)
            if existing is not None and existing.name == name:
                raise AlreadyExistsError(f"collection already exists: {name}")
            if (db, name) in self._aliases:
                raise AlreadyExistsError(f"collection name [{name}] conflicts with an existing alias")
            shards = shards_num or self.default_shards
            cid = await self.allocate_ids(1)
            ts = await self.allocate_timestamp()
            if schema.partition_key_field is not None:
                n = num_partitions or DEFAULT_PARTITION_KEY_PARTITIONS
                if n > MAX_PARTITIONS:
                    raise InvalidArgumentError(
                        f"partition number ({n}) exceeds max configuration ({MAX_PARTITIONS})"
                    )
                first = await self.allocate_ids(n)
                partitions = [PartitionInfo(f"{DEFAULT_PARTITION}_{i}", first + i, ts) for i in range(n)]
            else:
                partitions = [PartitionInfo(DEFAULT_PARTITION, await self.allocate_ids(1), ts)]
            channels = [channel_name(cid, i) for i in range(shards)]
            info = CollectionInfo(
                db=db,
                name=name,
                collection_id=cid,
                schema=schema,
                shards_num=shards,
                channels=channels,
                consistency_level=consistency_level,
                properties=dict(properties),
                aliases=[],
                partitions=partitions,
                created_ts=ts,
                updated_ts=ts,
            )
            for ch in channels:
                await self.log.create_channel(ch, self.channel_limits)
            await self.catalog.save_collection(info)
            self._collections[cid] = info
            self._views.clear()
            metrics.DDL.labels("create_collection").inc()
            metrics.COLLECTIONS.set(len(self._collections))
        for ch in channels:
            await self._watch(info, ch)
        return info

    async def drop_collection(self, db: str, name: str) -> None:
        async with self._lock:
            c = self._find(db or DEFAULT_DATABASE, name)
            if c is None or c.name != name:
                return  # Milvus: dropping a missing collection succeeds
            if any(cid == c.collection_id for cid in self._aliases.values()):
                raise InvalidArgumentError(
                    f"cannot drop the collection via alias = {name}; or the collection {name} still has aliases, "
                    "drop them first"
                )
            await self.catalog.delete_collection(c.collection_id)
            del self._collections[c.collection_id]
            self._views.clear()
            self._loads.pop(c.collection_id, None)
            metrics.DDL.labels("drop_collection").inc()
            metrics.COLLECTIONS.set(len(self._collections))
            self.index.forget(c.collection_id)
        await self._release(c)
        for ch in c.channels:
            for node in self.datanodes:
                await node.release_channel(ch)
            await self.catalog.delete_checkpoint(ch)
            await self.log.delete_channel(ch)

    async def list_collections(self, db: str) -> list[CollectionInfo]:
        self.database(db)
        db = db or DEFAULT_DATABASE
        return sorted(
            (self._with_aliases(c) for c in self._collections.values() if c.db == db),
            key=lambda c: c.created_ts,
        )

    async def _update(self, c: CollectionInfo) -> None:
        c.updated_ts = await self.allocate_timestamp()
        await self.catalog.save_collection(c)
        self._collections[c.collection_id] = c
        self._views.clear()

    async def rename_collection(self, db: str, old: str, new: str, new_db: str | None) -> None:
        async with self._lock:
            c = self.collection(db, old)
            target_db = new_db or db or DEFAULT_DATABASE
            self.database(target_db)
            if self._find(target_db, new) is not None:
                raise AlreadyExistsError(f"duplicated new collection name {new} in database {target_db}")
            if any(cid == c.collection_id for cid in self._aliases.values()) and target_db != c.db:
                raise InvalidArgumentError(
                    "fail to rename collection to different database, must drop all aliases"
                )
            await self._update(replace(c, name=new, db=target_db, aliases=[]))

    async def alter_collection(
        self, db: str, name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        async with self._lock:
            c = self.collection(db, name)
            props = {k: v for k, v in {**c.properties, **properties}.items() if k not in delete_keys}
            await self._update(replace(c, properties=props, aliases=[]))

    async def truncate_collection(self, db: str, name: str) -> None:
        """Remove every row, keep schema, partitions, indexes and load state.

        The collection's channels are recreated empty and its segments, delete
        logs and checkpoints forgotten; workers then start over on the empty
        channels. Files of the old segments are left for garbage collection.
        """
        async with self._lock:
            c = self.collection(db, name)
            if c.name != name:
                c = self._collections[c.collection_id]
            loaded = c.collection_id in self._loads
            await self._release(c)
            for ch in c.channels:
                for node in self.datanodes:
                    await node.release_channel(ch)
            await self.catalog.truncate_collection(c.collection_id, c.channels)
            self.index.truncated(c.collection_id)
            for ch in c.channels:
                await self.log.delete_channel(ch)
                await self.log.create_channel(ch, self.channel_limits)
            metrics.DDL.labels("truncate_collection").inc()
        for ch in c.channels:
            await self._watch(c, ch)
        if loaded:
            await self._serve(c)

    # --- partitions -----------------------------------------------------------------------
    async def create_partition(self, db: str, collection: str, partition: str) -> None:
        async with self._lock:
            c = self.collection(db, collection)
            if c.schema.partition_key_field is not None:
                raise InvalidArgumentError("disable create partition if partition key mode is used")
            if any(p.name == partition for p in c.partitions):
                raise AlreadyExistsError(f"partition already exists: {partition}")
            if len(c.partitions) >= MAX_PARTITIONS:
                raise InvalidArgumentError(
                    f"partition number ({len(c.partitions) + 1}) exceeds max configuration ({MAX_PARTITIONS})"
                )
            p = PartitionInfo(partition, await self.allocate_ids(1), await self.allocate_timestamp())
            await self._update(replace(c, partitions=[*c.partitions, p], aliases=[]))

    async def drop_partition(self, db: str, collection: str, partition: str) -> None:
        async with self._lock:
            c = self.collection(db, collection)
            if partition == DEFAULT_PARTITION:
                raise InvalidArgumentError("default partition cannot be deleted")
            if c.schema.partition_key_field is not None:
                raise InvalidArgumentError("disable drop partition if partition key mode is used")
            p = next((p for p in c.partitions if p.name == partition), None)
            if p is None:
                return
            loaded = self._loads.get(c.collection_id)
            if loaded is not None and (not loaded or p.partition_id in loaded):
                raise InvalidArgumentError(
                    f"partition {partition} cannot be dropped, partition is loaded, please release it first"
                )
            await self._update(
                replace(c, partitions=[q for q in c.partitions if q.name != partition], aliases=[])
            )

    def partition_ids(self, c: CollectionInfo, names: list[str]) -> list[int]:
        out = []
        for n in names:
            p = next((p for p in c.partitions if p.name == n), None)
            if p is None:
                raise PartitionNotFoundError(f"partition not found[partition={n}]")
            out.append(p.partition_id)
        return out

    # --- aliases ------------------------------------------------------------------------------
    async def create_alias(self, db: str, alias: str, collection: str) -> None:
        async with self._lock:
            db = db or DEFAULT_DATABASE
            c = self.collection(db, collection)
            if c.name != collection:
                raise InvalidArgumentError(f"cannot create alias {alias} on an alias {collection}")
            if (db, alias) in self._aliases:
                raise AlreadyExistsError(
                    f"alias exists and already aliased to another collection, alias: {alias}"
                )
            if self._find(db, alias) is not None:
                raise AlreadyExistsError(f"alias {alias} conflicts with an existing collection name")
            await self.catalog.save_alias(db, alias, c.collection_id)
            self._aliases[(db, alias)] = c.collection_id
            self._views.clear()

    async def drop_alias(self, db: str, alias: str) -> None:
        async with self._lock:
            db = db or DEFAULT_DATABASE
            if (db, alias) not in self._aliases:
                return
            await self.catalog.delete_alias(db, alias)
            del self._aliases[(db, alias)]
            self._views.clear()

    async def alter_alias(self, db: str, alias: str, collection: str) -> None:
        async with self._lock:
            db = db or DEFAULT_DATABASE
            if (db, alias) not in self._aliases:
                raise AliasNotFoundError(f"alias not found[database={db}][alias={alias}]")
            c = self.collection(db, collection)
            await self.catalog.save_alias(db, alias, c.collection_id)
            self._aliases[(db, alias)] = c.collection_id
            self._views.clear()

    async def describe_alias(self, db: str, alias: str) -> AliasInfo:
        db = db or DEFAULT_DATABASE
        cid = self._aliases.get((db, alias))
        if cid is None or cid not in self._collections:
            raise AliasNotFoundError(f"alias not found[database={db}][alias={alias}]")
        return AliasInfo(db=db, alias=alias, collection=self._collections[cid].name)

    async def list_aliases(self, db: str, collection: str | None) -> list[AliasInfo]:
        db = db or DEFAULT_DATABASE
        cid = self.collection(db, collection).collection_id if collection else None
        return [
            AliasInfo(db=d, alias=a, collection=self._collections[c].name)
            for (d, a), c in sorted(self._aliases.items())
            if d == db and (cid is None or c == cid) and c in self._collections
        ]

    # --- data nodes and flushes ------------------------------------------------------------------
    async def _watch(self, c: CollectionInfo, channel: str) -> None:
        if not self.datanodes:
            return
        node = self.datanodes[hash(channel) % len(self.datanodes)]
        await node.watch_channel(c, channel)

    async def commit_flush(self, commit: FlushCommit) -> None:
        """A data node persisted a channel flush: record it, then tell the query side."""
        c = self._collections.get(commit.collection_id)
        if c is None:
            return  # dropped meanwhile; its files are garbage
        async with self._channel_lock(commit.channel):
            await self.catalog.commit_flush(commit)
            metrics.SEGMENTS_COMMITTED.inc(len(commit.segments))
            if commit.collection_id in self._loads:
                await self._sync_locked(c, commit.channel)
        async with self._flushes:
            self._flushes.notify_all()
        if commit.segments:
            await self.index.schedule(c, commit.segments)

    async def segments(self, collection_id: int) -> list[SegmentInfo]:
        return await self.catalog.segments(collection_id)

    async def channel_view(self, c: CollectionInfo, channel: str) -> ChannelView:
        segs = [s for s in await self.catalog.segments(c.collection_id) if s.channel == channel]
        deltas = [d for d in await self.catalog.deltas(c.collection_id) if d.channel == channel]
        seg_ids = {s.segment_id for s in segs}
        return ChannelView(
            collection=self._with_aliases(c),
            channel=channel,
            segments=segs,
            deltas=deltas,
            checkpoint=await self.catalog.checkpoint(channel),
            indexes=[i for i in self.index.built(c.collection_id) if i.segment_id in seg_ids],
            index_specs=self.index.indexes(c.collection_id),
        )

    async def checkpoints(self, c: CollectionInfo) -> list[int]:
        return [(await self.catalog.checkpoint(ch)).ts for ch in c.channels]

    async def wait_flushed(self, c: CollectionInfo, flush_ts: int, timeout: float) -> bool:
        """Wait until every channel's checkpoint reached `flush_ts` (True) or `timeout` passed."""
        try:
            async with asyncio.timeout(timeout), self._flushes:
                while not all(ts >= flush_ts for ts in await self.checkpoints(c)):
                    await self._flushes.wait()
        except TimeoutError:
            return False
        return True

    # --- indexes ------------------------------------------------------------------------------
    async def create_index(
        self, c: CollectionInfo, field_name: str, index_name: str, params: dict[str, str]
    ) -> None:
        await self.index.create(c, field_name, index_name, params)

    async def describe_index(self, c: CollectionInfo, field_name: str, index_name: str) -> list[IndexInfo]:
        return self.index.describe(c, field_name, index_name, await self.catalog.segments(c.collection_id))

    async def drop_index(self, c: CollectionInfo, field_name: str, index_name: str) -> None:
        if c.collection_id in self._loads and any(
            i.field_name == field_name or i.index_name == index_name
            for i in self.index.indexes(c.collection_id)
        ):
            raise InvalidArgumentError(
                "index cannot be dropped, collection is loaded, please release it first"
            )
        await self.index.drop(c, field_name, index_name)

    def index_metric(self, collection_id: int, field_name: str) -> str | None:
        return self.index.metric(collection_id, field_name)

    # --- loads --------------------------------------------------------------------------------------
    def leader(self, channel: str) -> QueryNodeAPI:
        idx = self._leaders.get(channel)
        if idx is None:
            from pelagos.errors import CollectionNotLoadedError

            raise CollectionNotLoadedError(
                f"channel {channel} is not served by any query node; load the collection"
            )
        return self.querynodes[idx]

    def loaded_partitions(self, collection_id: int) -> list[int] | None:
        return self._loads.get(collection_id)

    async def load(self, c: CollectionInfo, partition_ids: list[int]) -> None:
        async with self._lock:
            current = self._loads.get(c.collection_id)
            if current is not None:
                if not current or not partition_ids:
                    partition_ids = []
                else:
                    partition_ids = sorted(set(current) | set(partition_ids))
            await self.catalog.save_load(c.collection_id, partition_ids, 1)
            self._loads[c.collection_id] = partition_ids
        if current is None:
            await self._serve(c)

    async def _serve(self, c: CollectionInfo) -> None:
        if not self.querynodes:
            return
        for i, ch in enumerate(c.channels):
            idx = i % len(self.querynodes)
            self._leaders[ch] = idx
            async with self._channel_lock(ch):
                await self.querynodes[idx].serve_channel(await self.channel_view(c, ch))

    def _channel_lock(self, channel: str) -> asyncio.Lock:
        lock = self._channel_locks.get(channel)
        if lock is None:
            lock = self._channel_locks[channel] = asyncio.Lock()
        return lock

    async def _sync(self, c: CollectionInfo, channel: str) -> None:
        async with self._channel_lock(channel):
            await self._sync_locked(c, channel)

    async def _sync_locked(self, c: CollectionInfo, channel: str) -> None:
        idx = self._leaders.get(channel)
        if idx is not None:
            await self.querynodes[idx].sync_channel(await self.channel_view(c, channel))

    async def sync_collection(self, collection_id: int) -> None:
        c = self._collections.get(collection_id)
        if c is not None and collection_id in self._loads:
            for ch in c.channels:
                await self._sync(c, ch)

    async def release(self, c: CollectionInfo, partition_ids: list[int]) -> None:
        async with self._lock:
            current = self._loads.get(c.collection_id)
            if current is None:
                return
            if partition_ids and current:
                rest = sorted(set(current) - set(partition_ids))
                if rest:
                    await self.catalog.save_load(c.collection_id, rest, 1)
                    self._loads[c.collection_id] = rest
                    return
            elif partition_ids and not current:
                all_ids = [p.partition_id for p in c.partitions]
                rest = sorted(set(all_ids) - set(partition_ids))
                if rest:
                    await self.catalog.save_load(c.collection_id, rest, 1)
                    self._loads[c.collection_id] = rest
                    return
            await self.catalog.delete_load(c.collection_id)
            del self._loads[c.collection_id]
        await self._release(c)

    async def _release(self, c: CollectionInfo) -> None:
        for ch in c.channels:
            idx = self._leaders.pop(ch, None)
            if idx is not None:
                await self.querynodes[idx].release_channel(ch)

    async def load_state(self, c: CollectionInfo, partition_ids: list[int]) -> LoadState:
        loaded = self._loads.get(c.collection_id)
        if loaded is None:
            return LoadState.NOT_LOAD
        if partition_ids and loaded and not set(partition_ids) <= set(loaded):
            return LoadState.NOT_LOAD
        for ch in c.channels:
            idx = self._leaders.get(ch)
            if idx is None or not await self.querynodes[idx].channel_ready(ch):
                return LoadState.LOADING
        return LoadState.LOADED

    async def loading_progress(self, c: CollectionInfo, partition_ids: list[int]) -> int:
        if self._loads.get(c.collection_id) is None:
            return 0
        ready = 0
        for ch in c.channels:
            idx = self._leaders.get(ch)
            if idx is not None and await self.querynodes[idx].channel_ready(ch):
                ready += 1
        return 100 * ready // max(1, len(c.channels))
