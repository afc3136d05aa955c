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

from pelagos.interfaces.types import CollectionInfo, IndexInfo


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


@dataclass(slots=True)
class ShardSearchResult:
    """Per query: up to `limit` hits sorted best first."""

    topks: np.ndarray
    pks: pa.Array
    scores: np.ndarray
    fields: pa.Table
    group_values: pa.Array | None = None


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
