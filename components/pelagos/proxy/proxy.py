"""The proxy: validates requests, routes writes into the log, fans reads out.

It implements pelagos.interfaces.proxy.ProxyAPI. DDL is checked here and
carried out by the coordinator; writes go through the ChannelWriter (the log
is the only way data enters); searches and queries go to the query node
leading each channel and are reduced here into the global result.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.errors import (
    CollectionNotLoadedError,
    InvalidArgumentError,
    PartitionNotFoundError,
)
from pelagos.expr import compile_filter
from pelagos.interfaces.messages import MessageKind
from pelagos.interfaces.roles import CoordinatorAPI, ShardQuery
from pelagos.interfaces.types import (
    DEFAULT_PARTITION,
    AliasInfo,
    CollectionInfo,
    ConsistencyLevel,
    DatabaseInfo,
    FlushInfo,
    HybridSearchRequest,
    IndexInfo,
    LoadState,
    MutationResult,
    PartitionInfo,
    QueryRequest,
    QueryResult,
    ReadOptions,
    SearchRequest,
    SearchResult,
)
from pelagos.proxy.hybrid import run_hybrid_search
from pelagos.proxy.metrics import DELETED_ROWS, INSERTED_ROWS, measured
from pelagos.proxy.outputs import COUNT_STAR, plan_outputs
from pelagos.proxy.routing import bucket_of, split_by_bucket
from pelagos.proxy.rows import prepare_rows
from pelagos.proxy.search import run_search
from pelagos.proxy.validation import MAX_SHARDS, assign_field_ids, check_name, check_schema
from pelagos.proxy.writer import ChannelWriter
from pelagos.schema import CollectionSchema, DataType

log = logging.getLogger("pelagos.proxy")

DEFAULT_BOUNDED_STALENESS_MS = 5000
#: how long Flush waits for the flush to be done before answering (then clients poll)
FLUSH_WAIT_S = 5.0
TS_LOGICAL_BITS = 18


def _ts_of_ms(ms: int) -> int:
    return ms << TS_LOGICAL_BITS


class Proxy:
    def __init__(
        self,
        coordinator: CoordinatorAPI,
        writer: ChannelWriter,
        *,
        bounded_staleness_ms: int = DEFAULT_BOUNDED_STALENESS_MS,
    ) -> None:
        self.coord = coordinator
        self.writer = writer
        self.bounded_staleness_ms = bounded_staleness_ms

    # --- time -----------------------------------------------------------------------
    async def allocate_timestamp(self) -> int:
        return await self.coord.allocate_timestamp()

    # --- databases -----------------------------------------------------------------
    async def create_database(self, name: str, properties: dict[str, str]) -> None:
        check_name(name, "database")
        await self.coord.create_database(name, properties)

    async def drop_database(self, name: str) -> None:
        await self.coord.drop_database(name)

    async def list_databases(self) -> list[DatabaseInfo]:
        return await self.coord.list_databases()

    async def describe_database(self, name: str) -> DatabaseInfo:
        return self.coord.database(name)

    async def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        await self.coord.alter_database(name, properties, delete_keys)

    # --- collections -------------------------------------------------------------
    @measured("create_collection")
    async def create_collection(
        self,
        db: str,
        name: str,
        schema: CollectionSchema,
        *,
        shards_num: int = 0,
        consistency_level: ConsistencyLevel = ConsistencyLevel.BOUNDED,
        properties: dict[str, str] | None = None,
        num_partitions: int = 0,
    ) -> None:
        check_name(name, "collection")
        check_schema(schema)
        if not 0 <= shards_num <= MAX_SHARDS:
            raise InvalidArgumentError(f"maximum shards's number should be limited to {MAX_SHARDS}")
        assign_field_ids(schema)
        if num_partitions and schema.partition_key_field is None:
            raise InvalidArgumentError(
                "num_partitions should only be specified with partition key field enabled"
            )
        info = await self.coord.create_collection(
            db,
            name,
            schema,
            shards_num=shards_num,
            consistency_level=consistency_level,
            properties=dict(properties or {}),
            num_partitions=num_partitions,
        )
        self.writer.track(info.channels)

    @measured("drop_collection")
    async def drop_collection(self, db: str, name: str) -> None:
        try:
            c = self.coord.collection(db, name)
        except Exception:
            c = None
        await self.coord.drop_collection(db, name)
        if c is not None and c.name == name:
            self.writer.untrack(c.channels)

    async def has_collection(self, db: str, name: str) -> bool:
        self.coord.database(db)
        try:
            self.coord.collection(db, name)
        except Exception:
            return False
        return True

    @measured("describe_collection")
    async def describe_collection(self, db: str, name: str) -> CollectionInfo:
        return self.coord.collection(db, name)

    async def list_collections(self, db: str) -> list[CollectionInfo]:
        return await self.coord.list_collections(db)

    async def rename_collection(self, db: str, old: str, new: str, new_db: str | None = None) -> None:
        check_name(new, "collection")
        await self.coord.rename_collection(db, old, new, new_db)

    async def alter_collection(
        self, db: str, name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        await self.coord.alter_collection(db, name, properties, delete_keys)

    async def truncate_collection(self, db: str, name: str) -> None:
        await self.coord.truncate_collection(db, name)

    async def collection_row_count(self, db: str, name: str) -> int:
        c = self.coord.collection(db, name)
        return await self._row_count(c, [])

    async def _row_count(self, c: CollectionInfo, partition_ids: list[int]) -> int:
        """Rows persisted in sealed segments (Milvus reports flushed rows here)."""
        segs = await self.coord.segments(c.collection_id)
        return sum(s.row_count for s in segs if not partition_ids or s.partition_id in partition_ids)

    # --- partitions --------------------------------------------------------------------
    async def create_partition(self, db: str, collection: str, partition: str) -> None:
        check_name(partition, "partition")
        await self.coord.create_partition(db, collection, partition)

    async def drop_partition(self, db: str, collection: str, partition: str) -> None:
        await self.coord.drop_partition(db, collection, partition)

    async def has_partition(self, db: str, collection: str, partition: str) -> bool:
        c = self.coord.collection(db, collection)
        return any(p.name == partition for p in c.partitions)

    async def list_partitions(self, db: str, collection: str) -> list[PartitionInfo]:
        return list(self.coord.collection(db, collection).partitions)

    async def partition_row_count(self, db: str, collection: str, partition: str) -> int:
        c = self.coord.collection(db, collection)
        return await self._row_count(c, self.coord.partition_ids(c, [partition]))

    # --- aliases -------------------------------------------------------------------------
    async def create_alias(self, db: str, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        await self.coord.create_alias(db, alias, collection)

    async def drop_alias(self, db: str, alias: str) -> None:
        await self.coord.drop_alias(db, alias)

    async def alter_alias(self, db: str, alias: str, collection: str) -> None:
        await self.coord.alter_alias(db, alias, collection)

    async def describe_alias(self, db: str, alias: str) -> AliasInfo:
        return await self.coord.describe_alias(db, alias)

    async def list_aliases(self, db: str, collection: str | None) -> list[AliasInfo]:
        return await self.coord.list_aliases(db, collection)

    # --- load ----------------------------------------------------------------------------
    @measured("load")
    async def load(self, db: str, collection: str, partitions: list[str], replicas: int = 1) -> None:
        c = self.coord.collection(db, collection)
        await self.coord.load(c, self.coord.partition_ids(c, partitions))

    async def release(self, db: str, collection: str, partitions: list[str]) -> None:
        c = self.coord.collection(db, collection)
        await self.coord.release(c, self.coord.partition_ids(c, partitions))

    async def load_state(self, db: str, collection: str, partitions: list[str]) -> LoadState:
        c = self.coord.collection(db, collection)
        return await self.coord.load_state(c, self.coord.partition_ids(c, partitions))

    async def loading_progress(self, db: str, collection: str, partitions: list[str]) -> int:
        c = self.coord.collection(db, collection)
        return await self.coord.loading_progress(c, self.coord.partition_ids(c, partitions))

    # --- writes -----------------------------------------------------------------------------
    def _partition_id(self, c: CollectionInfo, partition: str | None) -> int | None:
        if c.schema.partition_key_field is not None:
            if partition:
                raise InvalidArgumentError(
                    "not support manually specifying the partition names if partition key mode is used"
                )
            return None
        name = partition or DEFAULT_PARTITION
        for p in c.partitions:
            if p.name == name:
                return p.partition_id
        raise PartitionNotFoundError(f"partition not found[partition={name}]")

    async def _write_rows(
        self, c: CollectionInfo, partition: str | None, rows: pa.Table, kind: MessageKind
    ) -> tuple[pa.Array, int]:
        schema = c.schema
        pk = schema.primary_field
        n = rows.num_rows
        if n == 0:
            raise InvalidArgumentError("the number of rows to insert must be greater than 0")
        auto_ids = None
        if pk.auto_id and kind == MessageKind.INSERT:
            first = await self.coord.allocate_ids(n)
            ids = np.arange(first, first + n, dtype=np.int64)
            auto_ids = pa.array(ids) if pk.dtype == DataType.INT64 else pa.array(ids.astype(str))
        table = prepare_rows(schema, rows, auto_ids=auto_ids, upsert=kind == MessageKind.UPSERT)
        pks = table.column(pk.name).combine_chunks()
        if pks.null_count:
            raise InvalidArgumentError(f"the primary key field {pk.name} must not contain null values")
        fixed_partition = self._partition_id(c, partition)
        if fixed_partition is None:
            key_field = schema.partition_key_field
            assert key_field is not None
            part_of_row = bucket_of(table.column(key_field.name), len(c.partitions))
        else:
            part_of_row = np.zeros(n, np.int64)
        shard_of_row = bucket_of(pks, len(c.channels))
        combined = shard_of_row * len(c.partitions) + part_of_row
        groups = split_by_bucket(table, combined, len(c.channels) * len(c.partitions))
        stamps = await asyncio.gather(
            *(
                self.writer.write(
                    c.channels[g // len(c.partitions)],
                    kind,
                    collection_id=c.collection_id,
                    partition_id=(
                        fixed_partition
                        if fixed_partition is not None
                        else c.partitions[g % len(c.partitions)].partition_id
                    ),
                    rows=part,
                )
                for g, part in groups
            )
        )
        return pks, max(stamps)

    @measured("insert")
    async def insert(self, db: str, collection: str, partition: str | None, rows: pa.Table) -> MutationResult:
        c = self.coord.collection(db, collection)
        pks, ts = await self._write_rows(c, partition, rows, MessageKind.INSERT)
        INSERTED_ROWS.inc(len(pks))
        return MutationResult(ids=pks, timestamp=ts, insert_count=len(pks))

    @measured("upsert")
    async def upsert(self, db: str, collection: str, partition: str | None, rows: pa.Table) -> MutationResult:
        c = self.coord.collection(db, collection)
        pk = c.schema.primary_field
        if pk.name not in rows.column_names:
            raise InvalidArgumentError(f"upsert needs the primary key field {pk.name} in the data")
        pks, ts = await self._write_rows(c, partition, rows, MessageKind.UPSERT)
        INSERTED_ROWS.inc(len(pks))
        return MutationResult(ids=pks, timestamp=ts, upsert_count=len(pks))

    @measured("delete")
    async def delete(
        self,
        db: str,
        collection: str,
        partition: str | None,
        filter: str,
        filter_params: dict[str, object] | None = None,
        consistency_level: ConsistencyLevel | None = None,
    ) -> MutationResult:
        c = self.coord.collection(db, collection)
        pk = c.schema.primary_field
        if not filter or not filter.strip():
            raise InvalidArgumentError("delete plan can't be empty or always true : " + repr(filter))
        plan = compile_filter(filter, c.schema, dict(filter_params or {}))
        lookup = plan.primary_key_lookup
        partition_id = 0
        if partition:
            partition_id = self.coord.partition_ids(c, [partition])[0]
        if lookup is not None and not partition:
            keys = pa.array(list(lookup), type=pa.int64() if pk.dtype == DataType.INT64 else pa.string())
            keys = pc.unique(keys)
        else:
            result = await self.query(
                QueryRequest(
                    db=db,
                    collection=collection,
                    filter=filter,
                    filter_params=dict(filter_params or {}),
                    output_fields=[pk.name],
                    options=ReadOptions(
                        partitions=[partition] if partition else [],
                        consistency_level=consistency_level or ConsistencyLevel.STRONG,
                    ),
                )
            )
            keys = result.table.column(pk.name).combine_chunks()
        if len(keys) == 0:
            return MutationResult(ids=keys, timestamp=await self.coord.allocate_timestamp(), delete_count=0)
        table = pa.table({pk.name: keys})
        shard_of_row = bucket_of(keys, len(c.channels))
        stamps = await asyncio.gather(
            *(
                self.writer.write(
                    c.channels[g],
                    MessageKind.DELETE,
                    collection_id=c.collection_id,
                    partition_id=partition_id,
                    rows=part,
                )
                for g, part in split_by_bucket(table, shard_of_row, len(c.channels))
            )
        )
        DELETED_ROWS.inc(len(keys))
        return MutationResult(ids=keys, timestamp=max(stamps), delete_count=len(keys))

    @measured("flush")
    async def flush(self, db: str, collections: list[str]) -> list[FlushInfo]:
        out = []
        for name in collections:
            c = self.coord.collection(db, name)
            # every write acknowledged before now has a smaller ts, and each channel's FLUSH
            # is stamped after it: a channel is flushed once its checkpoint reaches flush_ts
            flush_ts = await self.coord.allocate_timestamp()
            await asyncio.gather(
                *(
                    self.writer.write(ch, MessageKind.FLUSH, collection_id=c.collection_id)
                    for ch in c.channels
                )
            )
            # a flush is usually done in well under a second: answering once it is saves the
            # client a poll and a sleep (pymilvus sleeps 0.5 s after a "not yet")
            await self.coord.wait_flushed(c, flush_ts, FLUSH_WAIT_S)
            segs = await self.coord.segments(c.collection_id)
            out.append(
                FlushInfo(
                    collection=name,
                    collection_id=c.collection_id,
                    flush_ts=flush_ts,
                    segment_ids=[s.segment_id for s in segs],
                    flushed_segment_ids=[s.segment_id for s in segs],
                )
            )
        return out

    async def flush_state(self, db: str, collection: str, flush_ts: int) -> bool:
        c = self.coord.collection(db, collection)
        return all(ts >= flush_ts for ts in await self.coord.checkpoints(c))

    # --- reads ----------------------------------------------------------------------------------
    def _loaded(self, c: CollectionInfo, partitions: list[str]) -> list[int]:
        loaded = self.coord.loaded_partitions(c.collection_id)
        if loaded is None:
            raise CollectionNotLoadedError(f"collection not loaded[collection={c.name}]")
        wanted = self.coord.partition_ids(c, partitions)
        if wanted:
            if loaded and not set(wanted) <= set(loaded):
                raise CollectionNotLoadedError(
                    f"partition not loaded[collection={c.name}][partitions={partitions}]"
                )
            return wanted
        return list(loaded)

    async def _guarantee(self, c: CollectionInfo, options: ReadOptions) -> tuple[int, int]:
        """(read_ts, guarantee_ts) for the request's consistency level."""
        now = await self.coord.allocate_timestamp()
        level = options.consistency_level if options.consistency_level is not None else c.consistency_level
        if level == ConsistencyLevel.STRONG:
            return now, now
        if level == ConsistencyLevel.SESSION:
            return now, options.guarantee_ts if options.guarantee_ts > 1 else 1
        if level == ConsistencyLevel.BOUNDED:
            return now, max(1, now - _ts_of_ms(self.bounded_staleness_ms))
        if level == ConsistencyLevel.CUSTOMIZED:
            return now, options.guarantee_ts or 1
        return now, 1

    @measured("query")
    async def query(self, request: QueryRequest) -> QueryResult:
        c = self.coord.collection(request.db, request.collection)
        partition_ids = self._loaded(c, request.options.partitions)
        outputs = plan_outputs(c.schema, request.output_fields, for_query=True)
        if (request.limit is not None and request.limit < 0) or request.offset < 0:
            raise InvalidArgumentError("limit and offset must not be negative")
        if outputs.count_only and (request.limit is not None or request.offset):
            raise InvalidArgumentError("count entities with pagination is not allowed")
        if not (request.filter or "").strip() and request.limit is None and not outputs.count_only:
            raise InvalidArgumentError("empty expression should be used with limit")
        compile_filter(request.filter or "", c.schema, request.filter_params)  # errors before fan-out
        read_ts, guarantee = await self._guarantee(c, request.options)
        limit = None if request.limit is None else request.limit + request.offset
        parts = await asyncio.gather(
            *(
                self.coord.leader(ch).query(
                    ShardQuery(
                        collection_id=c.collection_id,
                        channel=ch,
                        partition_ids=partition_ids,
                        filter=request.filter or "",
                        filter_params=request.filter_params,
                        output_fields=outputs.columns,
                        limit=limit,
                        read_ts=read_ts,
                        guarantee_ts=guarantee,
                        count_only=outputs.count_only,
                        ignore_growing=request.options.ignore_growing,
                    )
                )
                for ch in c.channels
            )
        )
        if outputs.count_only:
            total = sum(int(p.column(0)[0].as_py()) for p in parts)
            return QueryResult(
                table=pa.table({COUNT_STAR: pa.array([total], pa.int64())}), session_ts=read_ts
            )
        table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        if request.offset or request.limit is not None:
            end = None if request.limit is None else request.offset + request.limit
            table = table.slice(request.offset, None if end is None else end - request.offset)
        return QueryResult(table=table, session_ts=read_ts)

    @measured("search")
    async def search(self, request: SearchRequest) -> SearchResult:
        return await run_search(self, request)

    @measured("hybrid_search")
    async def hybrid_search(self, request: HybridSearchRequest) -> SearchResult:
        return await run_hybrid_search(self, request)

    # --- indexes ------------------------------------------------------------------------------------
    @measured("create_index")
    async def create_index(
        self, db: str, collection: str, field_name: str, index_name: str, params: dict[str, str]
    ) -> None:
        c = self.coord.collection(db, collection)
        if index_name:
            check_name(index_name, "index")
        await self.coord.create_index(c, field_name, index_name, params)

    @measured("describe_index")
    async def describe_index(
        self, db: str, collection: str, field_name: str = "", index_name: str = ""
    ) -> list[IndexInfo]:
        c = self.coord.collection(db, collection)
        return await self.coord.describe_index(c, field_name, index_name)

    async def drop_index(self, db: str, collection: str, field_name: str, index_name: str) -> None:
        c = self.coord.collection(db, collection)
        await self.coord.drop_index(c, field_name, index_name)

    async def alter_index(
        self, db: str, collection: str, index_name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        c = self.coord.collection(db, collection)
        await self.coord.describe_index(c, "", index_name)  # IndexNotFoundError when absent
        unknown = [k for k in [*properties, *delete_keys] if k != "mmap.enabled"]
        if unknown:
            raise InvalidArgumentError(
                f"{unknown[0]} is not a configable index property; only mmap.enabled is"
            )
