"""RecordingProxy: a test double of the ProxyAPI boundary for the Milvus adapter tests.

It records every call with its arguments and keeps just enough state
(schemas, inserted rows, indexes, load flags) for pymilvus's own call
sequences to proceed; searches and queries answer from the stored rows and
keep the exact result they returned, so a test can compare what the client
decoded with what the "engine" said. `fail[name] = exc` makes the next call
of `name` raise `exc` (once). It proves translation only: the end-to-end
tests with the real proxy live elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.errors import (
    AliasNotFoundError,
    CollectionNotFoundError,
    DatabaseNotFoundError,
    IndexNotFoundError,
    PartitionNotFoundError,
)
from pelagos.interfaces.types import (
    DEFAULT_PARTITION,
    AliasInfo,
    CollectionInfo,
    ConsistencyLevel,
    DatabaseInfo,
    FlushInfo,
    HybridSearchRequest,
    IndexInfo,
    IndexState,
    LoadState,
    MutationResult,
    PartitionInfo,
    QueryRequest,
    QueryResult,
    SearchRequest,
    SearchResult,
)
from pelagos.schema import DYNAMIC_FIELD_NAME, FIRST_USER_FIELD_ID, CollectionSchema

TS0 = 450_000_000_000 << 18  # a plausible hybrid timestamp


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class _Collection:
    info: CollectionInfo
    rows: list[pa.Table] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)
    loaded: bool = False


class RecordingProxy:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.fail: dict[str, BaseException] = {}
        self.dbs: dict[str, DatabaseInfo] = {"default": DatabaseInfo("default", 1, TS0)}
        self.colls: dict[tuple[str, str], _Collection] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.last_search: SearchResult | None = None
        self.last_query: QueryResult | None = None
        self._ts = TS0
        self._next_id = 1000

    # --- recording --------------------------------------------------------------------
    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(name, args, kwargs))
        exc = self.fail.pop(name, None)
        if exc is not None:
            raise exc

    def calls_of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def _tick(self) -> int:
        self._ts += 1
        return self._ts

    def _coll(self, db: str, name: str) -> _Collection:
        name = self.aliases.get((db, name), name)
        c = self.colls.get((db, name))
        if c is None:
            raise CollectionNotFoundError(f"collection {name} does not exist in database {db}")
        return c

    def table(self, db: str, name: str) -> pa.Table:
        c = self._coll(db, name)
        return pa.concat_tables(c.rows, promote_options="permissive") if c.rows else pa.table({})

    # --- time / databases -------------------------------------------------------------
    async def allocate_timestamp(self) -> int:
        self._record("allocate_timestamp")
        return self._tick()

    async def create_database(self, name: str, properties: dict[str, str]) -> None:
        self._record("create_database", name, properties)
        self.dbs[name] = DatabaseInfo(name, len(self.dbs) + 1, self._tick(), dict(properties))

    async def drop_database(self, name: str) -> None:
        self._record("drop_database", name)
        self.dbs.pop(name)

    async def list_databases(self) -> list[DatabaseInfo]:
        self._record("list_databases")
        return list(self.dbs.values())

    async def describe_database(self, name: str) -> DatabaseInfo:
        self._record("describe_database", name)
        if name not in self.dbs:
            raise DatabaseNotFoundError(f"database {name} does not exist")
        return self.dbs[name]

    async def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        self._record("alter_database", name, properties, delete_keys)
        props = self.dbs[name].properties
        props.update(properties)
        for k in delete_keys:
            props.pop(k, None)

    # --- collections ------------------------------------------------------------------
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
        self._record(
            "create_collection",
            db,
            name,
            schema,
            shards_num=shards_num,
            consistency_level=consistency_level,
            properties=properties,
            num_partitions=num_partitions,
        )
        fields = [replace(f, field_id=FIRST_USER_FIELD_ID + i) for i, f in enumerate(schema.fields)]
        ts = self._tick()
        info = CollectionInfo(
            db=db,
            name=name,
            collection_id=len(self.colls) + 7,
            schema=replace(schema, fields=fields),
            shards_num=shards_num or 1,
            channels=[f"ch-{name}-0"],
            consistency_level=consistency_level,
            properties=dict(properties or {}),
            aliases=[],
            partitions=[PartitionInfo(DEFAULT_PARTITION, 1, ts)],
            created_ts=ts,
            updated_ts=ts,
        )
        self.colls[(db, name)] = _Collection(info)

    async def drop_collection(self, db: str, name: str) -> None:
        self._record("drop_collection", db, name)
        self._coll(db, name)
        del self.colls[(db, name)]

    async def has_collection(self, db: str, name: str) -> bool:
        self._record("has_collection", db, name)
        return (db, self.aliases.get((db, name), name)) in self.colls

    async def describe_collection(self, db: str, name: str) -> CollectionInfo:
        self._record("describe_collection", db, name)
        return self._coll(db, name).info

    async def list_collections(self, db: str) -> list[CollectionInfo]:
        self._record("list_collections", db)
        return [c.info for (d, _), c in self.colls.items() if d == db]

    async def rename_collection(self, db: str, old: str, new: str, new_db: str | None = None) -> None:
        self._record("rename_collection", db, old, new, new_db)
        c = self.colls.pop((db, old))
        c.info.name = new
        self.colls[(new_db or db, new)] = c

    async def alter_collection(
        self, db: str, name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        self._record("alter_collection", db, name, properties, delete_keys)
        props = self._coll(db, name).info.properties
        props.update(properties)
        for k in delete_keys:
            props.pop(k, None)

    async def truncate_collection(self, db: str, name: str) -> None:
        self._record("truncate_collection", db, name)
        self._coll(db, name).rows.clear()

    async def collection_row_count(self, db: str, name: str) -> int:
        self._record("collection_row_count", db, name)
        return sum(t.num_rows for t in self._coll(db, name).rows)

    # --- partitions -------------------------------------------------------------------
    async def create_partition(self, db: str, collection: str, partition: str) -> None:
        self._record("create_partition", db, collection, partition)
        c = self._coll(db, collection)
        c.info.partitions.append(PartitionInfo(partition, len(c.info.partitions) + 1, self._tick()))

    async def drop_partition(self, db: str, collection: str, partition: str) -> None:
        self._record("drop_partition", db, collection, partition)
        c = self._coll(db, collection)
        c.info.partitions = [p for p in c.info.partitions if p.name != partition]

    async def has_partition(self, db: str, collection: str, partition: str) -> bool:
        self._record("has_partition", db, collection, partition)
        return any(p.name == partition for p in self._coll(db, collection).info.partitions)

    async def list_partitions(self, db: str, collection: str) -> list[PartitionInfo]:
        self._record("list_partitions", db, collection)
        return list(self._coll(db, collection).info.partitions)

    async def partition_row_count(self, db: str, collection: str, partition: str) -> int:
        self._record("partition_row_count", db, collection, partition)
        if not any(p.name == partition for p in self._coll(db, collection).info.partitions):
            raise PartitionNotFoundError(f"partition {partition} does not exist")
        return 3

    # --- aliases ----------------------------------------------------------------------
    async def create_alias(self, db: str, alias: str, collection: str) -> None:
        self._record("create_alias", db, alias, collection)
        self._coll(db, collection).info.aliases.append(alias)
        self.aliases[(db, alias)] = collection

    async def drop_alias(self, db: str, alias: str) -> None:
        self._record("drop_alias", db, alias)
        if (db, alias) not in self.aliases:
            raise AliasNotFoundError(f"alias {alias} does not exist")
        self.aliases.pop((db, alias))

    async def alter_alias(self, db: str, alias: str, collection: str) -> None:
        self._record("alter_alias", db, alias, collection)
        self.aliases[(db, alias)] = collection

    async def describe_alias(self, db: str, alias: str) -> AliasInfo:
        self._record("describe_alias", db, alias)
        if (db, alias) not in self.aliases:
            raise AliasNotFoundError(f"alias {alias} does not exist")
        return AliasInfo(db, alias, self.aliases[(db, alias)])

    async def list_aliases(self, db: str, collection: str | None) -> list[AliasInfo]:
        self._record("list_aliases", db, collection)
        return [
            AliasInfo(d, a, c) for (d, a), c in self.aliases.items() if d == db and collection in (None, c)
        ]

    # --- load -------------------------------------------------------------------------
    async def load(self, db: str, collection: str, partitions: list[str], replicas: int = 1) -> None:
        self._record("load", db, collection, partitions, replicas)
        self._coll(db, collection).loaded = True

    async def release(self, db: str, collection: str, partitions: list[str]) -> None:
        self._record("release", db, collection, partitions)
        self._coll(db, collection).loaded = False

    async def load_state(self, db: str, collection: str, partitions: list[str]) -> LoadState:
        self._record("load_state", db, collection, partitions)
        if (db, collection) not in self.colls:
            return LoadState.NOT_EXIST
        return LoadState.LOADED if self._coll(db, collection).loaded else LoadState.NOT_LOAD

    async def loading_progress(self, db: str, collection: str, partitions: list[str]) -> int:
        self._record("loading_progress", db, collection, partitions)
        return 100 if self._coll(db, collection).loaded else 0

    # --- writes -----------------------------------------------------------------------
    def _write(self, db: str, collection: str, rows: pa.Table) -> pa.Array:
        c = self._coll(db, collection)
        pk = c.info.schema.primary_field
        if pk.name not in rows.column_names:
            ids = pa.array(np.arange(self._next_id, self._next_id + rows.num_rows, dtype=np.int64))
            self._next_id += rows.num_rows
            rows = rows.append_column(pk.name, ids)
        c.rows.append(rows)
        return rows.column(pk.name).combine_chunks()

    async def insert(self, db: str, collection: str, partition: str | None, rows: pa.Table) -> MutationResult:
        self._record("insert", db, collection, partition, rows)
        ids = self._write(db, collection, rows)
        return MutationResult(ids=ids, timestamp=self._tick(), insert_count=len(ids))

    async def upsert(self, db: str, collection: str, partition: str | None, rows: pa.Table) -> MutationResult:
        self._record("upsert", db, collection, partition, rows)
        ids = self._write(db, collection, rows)
        return MutationResult(ids=ids, timestamp=self._tick(), upsert_count=len(ids))

    async def delete(
        self,
        db: str,
        collection: str,
        partition: str | None,
        filter: str,
        filter_params: dict[str, object] | None = None,
        consistency_level: ConsistencyLevel | None = None,
    ) -> MutationResult:
        self._record("delete", db, collection, partition, filter, filter_params, consistency_level)
        return MutationResult(ids=pa.array([1, 2], pa.int64()), timestamp=self._tick(), delete_count=2)

    async def flush(self, db: str, collections: list[str]) -> list[FlushInfo]:
        self._record("flush", db, collections)
        return [
            FlushInfo(n, self._coll(db, n).info.collection_id, self._tick(), [11, 12], [11])
            for n in collections
        ]

    async def flush_state(self, db: str, collection: str, flush_ts: int) -> bool:
        self._record("flush_state", db, collection, flush_ts)
        return True

    # --- reads ------------------------------------------------------------------------
    def _project(self, db: str, collection: str, table: pa.Table, wanted: list[str]) -> pa.Table:
        schema = self._coll(db, collection).info.schema
        cols: list[str] = []
        for name in wanted:
            if name == "*":
                cols += [c for c in table.column_names if c not in cols]
            elif name in table.column_names:
                cols.append(name)
            elif schema.enable_dynamic_field and DYNAMIC_FIELD_NAME in table.column_names:
                cols.append(DYNAMIC_FIELD_NAME)
        return table.select(list(dict.fromkeys(cols)))

    async def query(self, request: QueryRequest) -> QueryResult:
        self._record("query", request)
        table = self.table(request.db, request.collection)
        if request.output_fields == ["count(*)"]:
            result = QueryResult(pa.table({"count(*)": pa.array([table.num_rows], pa.int64())}), self._ts)
        else:
            pk = self._coll(request.db, request.collection).info.schema.primary_field.name
            out = self._project(request.db, request.collection, table, [pk, *request.output_fields])
            if request.limit is not None:
                out = out.slice(request.offset, request.limit)
            result = QueryResult(out, session_ts=self._ts)
        self.last_query = result
        return result

    async def search(self, request: SearchRequest) -> SearchResult:
        self._record("search", request)
        table = self.table(request.db, request.collection)
        info = self._coll(request.db, request.collection).info
        pk = info.schema.primary_field.name
        k = min(request.limit, table.num_rows)
        nq = len(request.vectors)
        take = pa.array(np.tile(np.arange(k, dtype=np.int64), nq))
        hits = table.take(take)
        # a score derived from the query so each query's hits differ: q-th row sum minus rank
        scores = (
            np.repeat(request.vectors.sum(axis=1).astype(np.float32), k) - np.tile(np.arange(k), nq)
        ).astype(np.float32)
        fields = self._project(request.db, request.collection, hits, request.output_fields)
        result = SearchResult(
            num_queries=nq,
            top_k=request.limit,
            topks=np.full(nq, k, dtype=np.int64),
            ids=hits.column(pk).combine_chunks(),
            scores=scores,
            fields=fields,
            primary_field=pk,
            output_fields=list(request.output_fields),
            session_ts=self._ts,
        )
        self.last_search = result
        return result

    async def hybrid_search(self, request: HybridSearchRequest) -> SearchResult:
        self._record("hybrid_search", request)
        first = replace(request.requests[0], limit=request.limit, output_fields=request.output_fields)
        result = await self.search(first)
        return result

    # --- indexes ----------------------------------------------------------------------
    async def create_index(
        self, db: str, collection: str, field_name: str, index_name: str, params: dict[str, str]
    ) -> None:
        self._record("create_index", db, collection, field_name, index_name, params)
        c = self._coll(db, collection)
        c.indexes.append(
            IndexInfo(
                collection, field_name, index_name, len(c.indexes) + 1, dict(params), IndexState.FINISHED
            )
        )

    async def describe_index(
        self, db: str, collection: str, field_name: str = "", index_name: str = ""
    ) -> list[IndexInfo]:
        self._record("describe_index", db, collection, field_name, index_name)
        found = [
            i
            for i in self._coll(db, collection).indexes
            if (not field_name or i.field_name == field_name)
            and (not index_name or i.index_name == index_name)
        ]
        if not found:
            raise IndexNotFoundError(f"there is no index on collection {collection}")
        return found

    async def drop_index(self, db: str, collection: str, field_name: str, index_name: str) -> None:
        self._record("drop_index", db, collection, field_name, index_name)
        c = self._coll(db, collection)
        c.indexes = [i for i in c.indexes if i.index_name != index_name]

    async def alter_index(
        self, db: str, collection: str, index_name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        self._record("alter_index", db, collection, index_name, properties, delete_keys)


def dynamic_meta(table: pa.Table) -> list[dict[str, Any]]:
    """The `$meta` column as dicts (helper for assertions)."""
    return [json.loads(x) for x in pc.fill_null(table.column(DYNAMIC_FIELD_NAME), "{}").to_pylist()]
