"""How a query node answers a query per segment: pruning by statistics,
primary-key lookups through the pk index, and counts without scans."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pyarrow as pa

from pelagos.expr import compile_filter
from pelagos.interfaces.roles import ChannelCheckpoint, ChannelView
from pelagos.interfaces.types import CollectionInfo, ConsistencyLevel
from pelagos.querynode.query import count_rows, matching_rows
from pelagos.querynode.segment_view import SegmentView
from pelagos.querynode.served_channel import ServedChannel
from pelagos.schema import CollectionSchema, DataType, FieldSchema
from pelagos.schema.arrow import vector_column
from pelagos.segments import ColumnStats
from pelagos.segments.deltas import DeleteLog

SCHEMA = CollectionSchema(
    [
        FieldSchema("id", DataType.INT64, is_primary=True, field_id=100),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=2, field_id=101),
        FieldSchema("n", DataType.INT64, field_id=102),
    ]
)


def channel() -> ServedChannel:
    info = CollectionInfo(
        db="default", name="c", collection_id=1, schema=SCHEMA, shards_num=1, channels=["ch"],
        consistency_level=ConsistencyLevel.STRONG, properties={}, aliases=[], partitions=[],
        created_ts=1, updated_ts=1,
    )  # fmt: skip
    view = ChannelView(info, "ch", [], [], ChannelCheckpoint("ch", 0, 0))
    # broker and objects are not touched before start(): these tests use no I/O
    return ServedChannel(view, broker=cast(Any, None), objects=cast(Any, None))


def segment(
    segment_id: int, ids: np.ndarray, n: np.ndarray, stats: dict[str, ColumnStats] | None = None
) -> SegmentView:
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "v": vector_column(np.zeros((len(ids), 2), np.float32), DataType.FLOAT_VECTOR, 2),
            "n": pa.array(n, pa.int64()),
            "_ts": pa.array(np.full(len(ids), 10, np.uint64)),
        }
    )
    return SegmentView(
        segment_id=segment_id,
        partition_ids=np.zeros(len(ids), np.int64),
        table=table,
        schema=SCHEMA,
        stats=dict(stats or {}),
    )


def test_statistics_prune_segments_that_cannot_match() -> None:
    ch = channel()
    # the stats claim n is in [0, 10]; the rows say otherwise: a pruned segment is never scanned
    seg = segment(7, np.arange(5), np.full(5, 50), {"n": ColumnStats(0, 10, 0, 5)})
    assert len(matching_rows(ch, seg, compile_filter("n > 20", SCHEMA), [])) == 0
    unpruned = segment(8, np.arange(5), np.full(5, 50), {"n": ColumnStats(0, 100, 0, 5)})
    assert matching_rows(ch, unpruned, compile_filter("n > 20", SCHEMA), []).tolist() == [0, 1, 2, 3, 4]


def test_pk_lookup_uses_the_pk_index_and_respects_deletes() -> None:
    ch = channel()
    seg = segment(3, np.array([10, 30, 20, 40]), np.arange(4))
    plan = compile_filter("id in [20, 40, 99]", SCHEMA)
    assert plan.primary_key_lookup is not None
    assert matching_rows(ch, seg, plan, []).tolist() == [2, 3]
    assert "pk_index" in seg.cache  # built once, kept for the sealed segment
    ch._base_alive[3] = np.array([True, True, True, False])  # row 3 (id 40) deleted
    ch._alive_cache.clear()
    assert matching_rows(ch, seg, plan, []).tolist() == [2]


def test_count_without_filter_counts_live_rows() -> None:
    ch = channel()
    a = segment(1, np.arange(10), np.arange(10))
    b = segment(2, np.arange(10, 15), np.arange(5))
    always = compile_filter("", SCHEMA)
    assert count_rows(ch, [a, b], always, []) == 15
    ch._growing_deletes.append(
        (1, DeleteLog.of(pa.array([3, 11], pa.int64()), np.array([20, 20], np.uint64)))
    )
    ch._version += 1
    assert count_rows(ch, [a, b], always, []) == 13
