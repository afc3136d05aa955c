"""The APIs the coordinator and the worker nodes offer each other.

Standalone wires them in-process; the cluster mode carries the same calls
over internal gRPC (pelagos.rpc). Only plain data crosses: the dataclasses
below and those of pelagos.interfaces.types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from pelagos.interfaces.hit_keys import HitKeys
from pelagos.interfaces.types import (
    AliasInfo,
    CollectionInfo,
    ConsistencyLevel,
    DatabaseInfo,
    IndexInfo,
    LoadState,
)
from pelagos.schema import CollectionSchema


@dataclass(slots=True)
class SegmentInfo:
    """A sealed segment as the coordinator records it (the manifest is in objects)."""

    segment_id: int
    collection_id: int
    partition_id: int
    channel: str
    row_count: int
    manifest_key: str
    #: channel positions the segment covers (inclusive)
    start_position: int
    end_position: int
    max_ts: int
    size_bytes: int = 0


@dataclass(slots=True)
class DeltaInfo:
    """A delete log of one channel flush (Milvus's L0 segment)."""

    log_id: int
    collection_id: int
    channel: str
    key: str
    row_count: int
    end_position: int
    max_ts: int


@dataclass(slots=True)
class ChannelCheckpoint:
    channel: str
    #: last channel position whose effects are persisted in segments/deltas
    position: int
    ts: int


@dataclass(slots=True)
class FlushCommit:
    """What a data node persisted in one channel flush, committed atomically."""

    channel: str
    collection_id: int
    segments: list[SegmentInfo]
    deltas: list[DeltaInfo]
    checkpoint: ChannelCheckpoint


@dataclass(slots=True)
class SegmentIndexInfo:
    collection_id: int
    segment_id: int
    index_id: int
    build_id: int
    field_name: str
    key: str
    params: dict[str, str]


@dataclass(slots=True)
class ChannelView:
    """Everything a query node needs to serve one channel: the sealed state
    and where to resume the log."""

    collection: CollectionInfo
    channel: str
    segments: list[SegmentInfo]
    deltas: list[DeltaInfo]
    checkpoint: ChannelCheckpoint
    indexes: list[SegmentIndexInfo] = field(default_factory=list)
    index_specs: list[IndexInfo] = field(default_factory=list)


@dataclass(slots=True)
class ShardSearch:
    """A search routed to the query node that leads one channel."""

    collection_id: int
    channel: str
    partition_ids: list[int]
    vectors: np.ndarray
    field_name: str
    limit: int  # already includes offset
    metric_type: str
    params: dict[str, Any]
    filter: str
    filter_params: dict[str, Any]
    output_fields: list[str]
    read_ts: int
    guarantee_ts: int
    ignore_growing: bool = False
    group_by_field: str | None = None
    group_size: int = 1
    strict_group_size: bool = False
    #: a search iterator page: hits ordered by (score, pk), ties included whole
    iterator: bool = False
    #: search iterator: only hits after (iterator_bound, iterator_after_pk) in (score, pk) order,
    #: ties at the bound broken by primary key (iterator_after_pk None: no hit at the bound is after it)
    iterator_bound: float | None = None
    iterator_after_pk: Any = None
    #: hits the iterator returned so far: how far past the bound each segment must look at least
    iterator_skip: int = 0


@dataclass(slots=True)
class ShardSearchResult:
    """Per query: up to `limit` hits sorted best first.

    Grouping search: up to `limit` groups of up to `group_size` hits, by group (best group first),
    then best first, with each hit's group value in `group_values`."""

    topks: np.ndarray
    #: int64 keys as numpy, string keys as Arrow (hit_keys.py)
    pks: HitKeys
    scores: np.ndarray
    #: the requested output columns, never the primary key: that is `pks`
    fields: pa.Table
    group_values: pa.Array | None = None
    #: grouping search, per query, as a sort key (smaller is better; +inf: nothing unseen): every
    #: hit of the shard not returned has a key at least this large, or its group was returned with
    #: `group_size` hits at least as good
    unseen_bound: np.ndarray | None = None


@dataclass(slots=True)
class ShardQuery:
    collection_id: int
    channel: str
    partition_ids: list[int]
    filter: str
    filter_params: dict[str, Any]
    output_fields: list[str]
    limit: int | None  # already includes offset
    read_ts: int
    guarantee_ts: int
    count_only: bool = False
    ignore_growing: bool = False


class DataNodeAPI(Protocol):
    async def watch_channel(self, collection: CollectionInfo, channel: str) -> None:
        """Start consuming `channel` from its checkpoint into segments."""
        ...

    async def release_channel(self, channel: str) -> None: ...


class QueryNodeAPI(Protocol):
    async def serve_channel(self, view: ChannelView) -> None:
        """Lead `channel`: load its sealed segments, then tail the log."""
        ...

    async def release_channel(self, channel: str) -> None: ...

    async def sync_channel(self, view: ChannelView) -> None:
        """New sealed state of a served channel (after a flush or index build)."""
        ...

    async def channel_ready(self, channel: str) -> bool:
        """True once the channel's sealed segments are loaded."""
        ...

    async def search(self, request: ShardSearch) -> ShardSearchResult: ...

    async def query(self, request: ShardQuery) -> pa.Table: ...


class CoordinatorAPI(Protocol):
    """What the proxy asks of the coordinator.

    The synchronous lookups answer from the coordinator's catalog cache (in
    cluster mode: the proxy's meta cache, kept fresh by catalog watches).
    """

    async def allocate_timestamp(self, count: int = 1) -> int: ...
    async def allocate_ids(self, count: int) -> int: ...

    async def create_database(self, name: str, properties: dict[str, str]) -> None: ...
    async def drop_database(self, name: str) -> None: ...
    async def list_databases(self) -> list[DatabaseInfo]: ...
    def database(self, name: str) -> DatabaseInfo: ...
    async def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None: ...

    def collection(self, db: str, name: str) -> CollectionInfo: ...
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
    ) -> CollectionInfo: ...
    async def drop_collection(self, db: str, name: str) -> None: ...
    async def list_collections(self, db: str) -> list[CollectionInfo]: ...
    async def truncate_collection(self, db: str, name: str) -> None: ...
    async def rename_collection(self, db: str, old: str, new: str, new_db: str | None) -> None: ...
    async def alter_collection(
        self, db: str, name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None: ...

    async def create_partition(self, db: str, collection: str, partition: str) -> None: ...
    async def drop_partition(self, db: str, collection: str, partition: str) -> None: ...
    def partition_ids(self, c: CollectionInfo, names: list[str]) -> list[int]: ...

    async def create_alias(self, db: str, alias: str, collection: str) -> None: ...
    async def drop_alias(self, db: str, alias: str) -> None: ...
    async def alter_alias(self, db: str, alias: str, collection: str) -> None: ...
    async def describe_alias(self, db: str, alias: str) -> AliasInfo: ...
    async def list_aliases(self, db: str, collection: str | None) -> list[AliasInfo]: ...

    async def segments(self, collection_id: int) -> list[SegmentInfo]: ...
    async def checkpoints(self, c: CollectionInfo) -> list[int]: ...
    async def wait_flushed(self, c: CollectionInfo, flush_ts: int, timeout: float) -> bool: ...

    async def load(self, c: CollectionInfo, partition_ids: list[int]) -> None: ...
    async def release(self, c: CollectionInfo, partition_ids: list[int]) -> None: ...
    async def load_state(self, c: CollectionInfo, partition_ids: list[int]) -> LoadState: ...
    async def loading_progress(self, c: CollectionInfo, partition_ids: list[int]) -> int: ...
    def loaded_partitions(self, collection_id: int) -> list[int] | None: ...
    def leader(self, channel: str) -> QueryNodeAPI: ...

    async def create_index(
        self, c: CollectionInfo, field_name: str, index_name: str, params: dict[str, str]
    ) -> None: ...
    async def describe_index(
        self, c: CollectionInfo, field_name: str, index_name: str
    ) -> list[IndexInfo]: ...
    async def drop_index(self, c: CollectionInfo, field_name: str, index_name: str) -> None: ...
    def index_metric(self, collection_id: int, field_name: str) -> str | None: ...


@dataclass(slots=True)
class IndexBuildTask:
    collection_id: int
    segment: SegmentInfo
    index_id: int
    build_id: int
    field_name: str
    #: index_type, metric_type and build params as the user gave them (strings)
    params: dict[str, str]
    dim: int
    is_binary: bool


class IndexNodeAPI(Protocol):
    async def build(self, task: IndexBuildTask) -> SegmentIndexInfo:
        """Build the index of one sealed segment, upload it, describe the result."""
        ...
