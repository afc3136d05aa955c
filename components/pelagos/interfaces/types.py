"""Plain data that crosses role boundaries: requests, results, descriptions.

Everything here is data (dataclasses, numpy arrays, Arrow tables), never a
live object of another role, so a later cluster mode can carry it over the
wire unchanged. The Milvus adapter translates protobuf to and from these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from pelagos.interfaces.hit_keys import HitKeys
from pelagos.schema import CollectionSchema

DEFAULT_DATABASE = "default"
DEFAULT_PARTITION = "_default"


class ConsistencyLevel(enum.IntEnum):
    """Milvus's consistency levels (same numbers as the protocol)."""

    STRONG = 0
    SESSION = 1
    BOUNDED = 2
    EVENTUALLY = 3
    CUSTOMIZED = 4


class LoadState(enum.IntEnum):
    NOT_EXIST = 0
    NOT_LOAD = 1
    LOADING = 2
    LOADED = 3


class IndexState(enum.IntEnum):
    NONE = 0
    UNISSUED = 1
    IN_PROGRESS = 2
    FINISHED = 3
    FAILED = 4
    RETRY = 5


@dataclass(slots=True)
class DatabaseInfo:
    name: str
    database_id: int
    created_ts: int
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PartitionInfo:
    name: str
    partition_id: int
    created_ts: int


@dataclass(slots=True)
class CollectionInfo:
    db: str
    name: str
    collection_id: int
    schema: CollectionSchema
    shards_num: int
    channels: list[str]
    consistency_level: ConsistencyLevel
    properties: dict[str, str]
    aliases: list[str]
    partitions: list[PartitionInfo]
    created_ts: int
    updated_ts: int
    #: bumped on every schema change; a client whose cached version differs gets SchemaMismatch
    schema_version: int = 0


@dataclass(slots=True)
class AliasInfo:
    db: str
    alias: str
    collection: str


@dataclass(slots=True)
class MutationResult:
    """What insert / upsert / delete report back."""

    #: primary keys of the rows written (int64 or string Arrow array)
    ids: pa.Array
    timestamp: int
    insert_count: int = 0
    upsert_count: int = 0
    delete_count: int = 0


@dataclass(slots=True)
class FlushInfo:
    collection: str
    collection_id: int
    flush_ts: int
    segment_ids: list[int]
    flushed_segment_ids: list[int]


@dataclass(slots=True)
class ReadOptions:
    """Consistency and scope common to search and query."""

    partitions: list[str] = field(default_factory=list)
    consistency_level: ConsistencyLevel | None = None  # None: the collection's default
    guarantee_ts: int = 0  # Session: the client's last write ts
    ignore_growing: bool = False


@dataclass(slots=True)
class QueryRequest:
    db: str
    collection: str
    filter: str
    filter_params: dict[str, Any] = field(default_factory=dict)
    output_fields: list[str] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    options: ReadOptions = field(default_factory=ReadOptions)
    #: query_iterator's "reduce_stop_for_best" / iterator flags, passed through
    is_iterator: bool = False


@dataclass(slots=True)
class QueryResult:
    #: one column per output field (user fields by name, dynamic keys expanded
    #: into `$meta` JSON unless asked individually), all the same length;
    #: `count(*)` comes back as one int64 column named "count(*)"
    table: pa.Table
    session_ts: int = 0


@dataclass(slots=True)
class SearchRequest:
    db: str
    collection: str
    #: (nq, dim) float32 for float vectors, (nq, dim // 8) uint8 for binary
    vectors: np.ndarray
    limit: int
    anns_field: str | None = None
    metric_type: str | None = None
    #: search params: ef, nprobe, radius, range_filter, ...
    params: dict[str, Any] = field(default_factory=dict)
    filter: str = ""
    filter_params: dict[str, Any] = field(default_factory=dict)
    output_fields: list[str] = field(default_factory=list)
    offset: int = 0
    round_decimal: int = -1
    group_by_field: str | None = None
    group_size: int = 1
    strict_group_size: bool = False
    options: ReadOptions = field(default_factory=ReadOptions)
    #: search iterator v2 (pymilvus `search_iterator`): pages in (distance, pk) order
    iterator_v2: bool = False
    #: the iterator's token ("" on its first page: the proxy makes one)
    iterator_token: str = ""
    #: the score of the last hit of the previous page (None on the first page)
    iterator_last_bound: float | None = None
    #: page size the client asked for (0: `limit`)
    iterator_batch_size: int = 0


#: a result's output columns when it has none: Arrow tables are immutable, so one serves every result
#: (making an empty table costs ~15 us on the cold caches a request meets)
NO_FIELDS = pa.table({})


@dataclass(slots=True)
class SearchResult:
    """Hits of every query, flat: query i owns hits [sum(topks[:i]), sum(topks[:i+1]))."""

    num_queries: int
    top_k: int
    topks: np.ndarray  # int64, one per query
    ids: HitKeys  # primary keys of the hits (int64 as numpy, string as Arrow: hit_keys.py)
    scores: np.ndarray  # float32, one per hit
    #: output field columns aligned with the hits, never the primary key (that is `ids`; whether
    #: the client asked for it, `output_fields` says)
    fields: pa.Table
    primary_field: str
    output_fields: list[str]
    session_ts: int = 0
    #: the search iterator v2 token, when asked for
    iterator_token: str = ""
    #: the search iterator v2: the score of this page's last hit
    iterator_last_bound: float | None = None
    #: grouping search: the group-by field and its value for every hit
    group_by_field: str = ""
    group_values: pa.Array | None = None


@dataclass(slots=True)
class RankerSpec:
    """Hybrid search reranking: RRF (k) or weighted (weights, normalize)."""

    kind: str  # "rrf" | "weighted"
    k: int = 60
    weights: list[float] = field(default_factory=list)
    normalize: bool = True


@dataclass(slots=True)
class HybridSearchRequest:
    db: str
    collection: str
    requests: list[SearchRequest]
    ranker: RankerSpec
    limit: int
    offset: int = 0
    output_fields: list[str] = field(default_factory=list)
    round_decimal: int = -1
    options: ReadOptions = field(default_factory=ReadOptions)


@dataclass(slots=True)
class IndexInfo:
    collection: str
    field_name: str
    index_name: str
    index_id: int
    #: index_type, metric_type and build params, as strings
    params: dict[str, str]
    state: IndexState
    total_rows: int = 0
    indexed_rows: int = 0
    pending_index_rows: int = 0
    fail_reason: str = ""
