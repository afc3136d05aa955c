"""The proxy's API: what a wire adapter calls.

One method per user-visible operation. Names are resolved by the proxy
(databases, aliases); every error is a pelagos.errors.EngineError subclass
whose message is meant for the user. No protocol types cross this boundary:
only the plain data of pelagos.interfaces.types.
"""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from pelagos.interfaces.types import (
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
    SearchRequest,
    SearchResult,
)
from pelagos.schema import CollectionSchema


class ProxyAPI(Protocol):
    # --- time -----------------------------------------------------------------
    async def allocate_timestamp(self) -> int: ...

    # --- databases --------------------------------------------------------------
    async def create_database(self, name: str, properties: dict[str, str]) -> None: ...
    async def drop_database(self, name: str) -> None: ...
    async def list_databases(self) -> list[DatabaseInfo]: ...
    async def describe_database(self, name: str) -> DatabaseInfo: ...
    async def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None: ...

    # --- collections ------------------------------------------------------------
    async def create_collection(
        self,
        db: str,
        name: str,
        schema: CollectionSchema,
        *,
        shards_num: int = 0,  # 0: the configured default
        consistency_level: ConsistencyLevel = ConsistencyLevel.BOUNDED,
        properties: dict[str, str] | None = None,
        num_partitions: int = 0,  # with a partition key: 0 means the default (16)
    ) -> None: ...

    async def drop_collection(self, db: str, name: str) -> None: ...
    async def has_collection(self, db: str, name: str) -> bool: ...

    async def describe_collection(self, db: str, name: str) -> CollectionInfo:
        """By name or alias; CollectionNotFoundError when neither exists."""
        ...

    async def list_collections(self, db: str) -> list[CollectionInfo]: ...
    async def rename_collection(self, db: str, old: str, new: str, new_db: str | None = None) -> None: ...
    async def alter_collection(
        self, db: str, name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None: ...
    async def truncate_collection(self, db: str, name: str) -> None: ...
    async def collection_row_count(self, db: str, name: str) -> int: ...

    # --- partitions -------------------------------------------------------------
    async def create_partition(self, db: str, collection: str, partition: str) -> None: ...
    async def drop_partition(self, db: str, collection: str, partition: str) -> None: ...
    async def has_partition(self, db: str, collection: str, partition: str) -> bool: ...
    async def list_partitions(self, db: str, collection: str) -> list[PartitionInfo]: ...
    async def partition_row_count(self, db: str, collection: str, partition: str) -> int: ...

    # --- aliases ----------------------------------------------------------------
    async def create_alias(self, db: str, alias: str, collection: str) -> None: ...
    async def drop_alias(self, db: str, alias: str) -> None: ...
    async def alter_alias(self, db: str, alias: str, collection: str) -> None: ...
    async def describe_alias(self, db: str, alias: str) -> AliasInfo: ...
    async def list_aliases(self, db: str, collection: str | None) -> list[AliasInfo]: ...

    # --- load -------------------------------------------------------------------
    async def load(self, db: str, collection: str, partitions: list[str], replicas: int = 1) -> None:
        """Start loading (returns at once); poll loading_progress / load_state."""
        ...

    async def release(self, db: str, collection: str, partitions: list[str]) -> None: ...
    async def load_state(self, db: str, collection: str, partitions: list[str]) -> LoadState: ...
    async def loading_progress(self, db: str, collection: str, partitions: list[str]) -> int: ...

    # --- writes -----------------------------------------------------------------
    async def insert(self, db: str, collection: str, partition: str | None, rows: pa.Table) -> MutationResult:
        """`rows` holds user fields by name (and `$meta` JSON text for dynamic keys)."""
        ...

    async def upsert(
        self, db: str, collection: str, partition: str | None, rows: pa.Table
    ) -> MutationResult: ...

    async def delete(
        self,
        db: str,
        collection: str,
        partition: str | None,
        filter: str,
        filter_params: dict[str, object] | None = None,
        consistency_level: ConsistencyLevel | None = None,
    ) -> MutationResult: ...

    async def flush(self, db: str, collections: list[str]) -> list[FlushInfo]: ...
    async def flush_state(self, db: str, collection: str, flush_ts: int) -> bool: ...

    # --- reads ------------------------------------------------------------------
    async def query(self, request: QueryRequest) -> QueryResult: ...
    async def search(self, request: SearchRequest) -> SearchResult: ...
    async def hybrid_search(self, request: HybridSearchRequest) -> SearchResult: ...

    # --- indexes ----------------------------------------------------------------
    async def create_index(
        self, db: str, collection: str, field_name: str, index_name: str, params: dict[str, str]
    ) -> None:
        """Returns promptly; building goes on in the background."""
        ...

    async def describe_index(
        self, db: str, collection: str, field_name: str = "", index_name: str = ""
    ) -> list[IndexInfo]:
        """Empty names: every index of the collection. IndexNotFoundError when none match."""
        ...

    async def drop_index(self, db: str, collection: str, field_name: str, index_name: str) -> None: ...
    async def alter_index(
        self, db: str, collection: str, index_name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None: ...
