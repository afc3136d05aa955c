"""Sealed segments: write to objects, load only what is asked, apply deletes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from pelagos.errors import InvalidArgumentError, SchemaMismatchError, SegmentFormatError
from pelagos.schema.types import CollectionSchema, DataType, FieldSchema
from pelagos.segments import layout
from pelagos.segments.columns import read_columns
from pelagos.segments.deltas import DeleteLog
from pelagos.segments.manifest import SegmentManifest
from pelagos.segments.segment import SealedSegmentData
from pelagos.segments.stats import column_stats
from tests.segments.data import all_types_schema, make_rows


class Store:
    """An in-memory object store that records which keys were fetched."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.fetched: list[str] = []

    async def fetch(self, key: str) -> bytes:
        self.fetched.append(key)
        return self.objects[key]


def write(table: pa.Table, schema: CollectionSchema, segment_id: int = 3) -> tuple[SegmentManifest, Store]:
    manifest, blobs = SealedSegmentData.from_table(
        table, schema, collection_id=1, partition_id=2, segment_id=segment_id, channel="ch0", schema_version=4
    )
    store = Store(blobs)
    store.objects[manifest.key] = manifest.encode()
    return manifest, store


@pytest.mark.parametrize("pk", [DataType.INT64, DataType.VARCHAR])
async def test_write_then_load_everything(pk: DataType) -> None:
    schema = all_types_schema(pk)
    table = make_rows(schema, 80, seed=21)
    manifest, store = write(table, schema)
    # the manifest the caller uploads decodes to the same manifest
    assert SegmentManifest.decode(store.objects[manifest.key]) == manifest
    seg = await SealedSegmentData.load(manifest, store.fetch)
    assert seg.table.schema.equals(table.schema)
    assert seg.table.equals(table)
    assert manifest.row_count == 80 and manifest.schema_version == 4 and manifest.channel == "ch0"
    ts = table.column("_ts").to_pylist()
    assert (manifest.min_ts, manifest.max_ts) == (min(ts), max(ts))
    pks = table.column("id").to_pylist()
    assert (manifest.pk_min, manifest.pk_max) == (min(pks), max(pks))
    f = schema.field("json_null")
    assert f is not None and manifest.field("json_null").field_id == f.field_id
    assert manifest.field("json_null").stats.min is None  # JSON has no order
    assert manifest.field("varchar_req").stats == column_stats(table.column("varchar_req"), DataType.VARCHAR)
    # one file per column, keyed by field ID, or by name for system columns
    fvec = schema.field("fvec")
    assert fvec is not None and manifest.file_of("fvec").key == layout.column_key(1, 2, 3, fvec.field_id)
    assert manifest.file_of("fvec").compression is None and manifest.file_of("id").compression == "zstd"
    assert manifest.file_of("_ts").key == layout.column_key(1, 2, 3, "_ts")
    assert manifest.file_of("$meta").key == layout.column_key(1, 2, 3, "$meta")
    assert len({f.key for f in manifest.files}) == len(manifest.fields) == table.num_columns


async def test_load_fetches_only_the_requested_fields() -> None:
    schema = all_types_schema()
    table = make_rows(schema, 20, seed=22)
    manifest, store = write(table, schema)
    seg = await SealedSegmentData.load(manifest, store.fetch, {"fvec"})
    assert store.fetched == [manifest.file_of("fvec").key]
    assert seg.table.column_names == ["fvec"]
    assert seg.table.column("fvec").equals(table.column("fvec"))
    with pytest.raises(InvalidArgumentError, match="not loaded"):
        seg.alive()
    seg2 = await SealedSegmentData.load(manifest, store.fetch, ["_ts", "int8_null", "id"])
    assert seg2.table.column_names == ["id", "int8_null", "_ts"]  # manifest order
    with pytest.raises(InvalidArgumentError, match="no field"):
        await SealedSegmentData.load(manifest, store.fetch, {"nope"})


async def test_empty_segment() -> None:
    schema = all_types_schema(DataType.VARCHAR)
    table = make_rows(schema, 0)
    manifest, store = write(table, schema)
    assert (manifest.row_count, manifest.min_ts, manifest.max_ts, manifest.pk_min, manifest.pk_max) == (
        0,
        0,
        0,
        None,
        None,
    )
    seg = await SealedSegmentData.load(manifest, store.fetch)
    assert seg.table.num_rows == 0 and seg.table.schema.equals(table.schema)
    assert seg.add_deletes(DeleteLog.of(["x"], [5])) == 0
    assert seg.alive().tolist() == []
    assert len(seg.pk_index) == 0


async def test_deletes_and_pk_index() -> None:
    schema = CollectionSchema(
        [
            FieldSchema("pk", DataType.INT64, field_id=100, is_primary=True),
            FieldSchema("v", DataType.FLOAT_VECTOR, field_id=101, dim=2),
        ]
    )
    table = pa.table(
        {
            "pk": pa.array([1, 2, 3, 2], pa.int64()),
            "v": pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(8, np.float32)), 2),
            "_ts": pa.array([10, 10, 10, 20], pa.uint64()),  # pk 2 upserted at ts 20
        }
    )
    manifest, store = write(table, schema)
    seg = await SealedSegmentData.load(manifest, store.fetch)
    assert seg.alive().tolist() == [True] * 4
    # the upsert's delete (ts 20) kills the old pk-2 row only; pk 99 is outside [1, 3] and dropped
    assert seg.add_deletes(DeleteLog.of([2, 99], [20, 20])) == 1
    assert seg.add_deletes(DeleteLog.of([3], [15])) == 1
    assert seg.alive().tolist() == [True, False, False, True]
    assert seg.alive(as_of_ts=15).tolist() == [True, True, False, True]
    assert seg.deletes.pks.to_pylist() == [2, 3]
    offsets, found = seg.pk_index.lookup([2, 3, 4])
    assert offsets.tolist() == [3, 2, -1] and found.tolist() == [True, True, False]


async def test_corrupt_objects_are_detected() -> None:
    schema = all_types_schema()
    manifest, store = write(make_rows(schema, 10, seed=23), schema)
    key = manifest.file_of("id").key
    store.objects[key] = store.objects[key][:-8]
    with pytest.raises(SegmentFormatError, match="truncated"):
        await SealedSegmentData.load(manifest, store.fetch, {"id"})
    # same size, but another segment's object (different row count)
    other, other_store = write(make_rows(schema, 11, seed=23), schema, segment_id=4)
    store.objects[manifest.file_of("_ts").key] = other_store.objects[other.file_of("_ts").key]
    lying = SegmentManifest.from_json(
        {
            **manifest.to_json(),
            "files": [{**f.to_json(), "size": len(store.objects[f.key])} for f in manifest.files],
        }
    )
    with pytest.raises(SegmentFormatError, match="rows"):
        await SealedSegmentData.load(lying, store.fetch, {"_ts"})


def test_rows_that_do_not_fit_the_schema_are_refused() -> None:
    schema = all_types_schema()
    table = make_rows(schema, 5, seed=24)
    ids: dict[str, Any] = {"collection_id": 1, "partition_id": 2, "segment_id": 3, "channel": "c"}
    with pytest.raises(SchemaMismatchError, match="missing"):
        SealedSegmentData.from_table(table.drop_columns(["_ts"]), schema, **ids)
    with pytest.raises(SchemaMismatchError, match="unknown"):
        SealedSegmentData.from_table(table.append_column("extra", pa.array([1] * 5)), schema, **ids)
    bad_type = table.set_column(
        table.schema.get_field_index("int8_req"), "int8_req", pa.array([1] * 5, pa.int16())
    )
    with pytest.raises(SchemaMismatchError, match="int8_req"):
        SealedSegmentData.from_table(bad_type, schema, **ids)
    nulls = table.set_column(
        table.schema.get_field_index("int8_req"), "int8_req", pa.array([1, None, 1, 1, 1], pa.int8())
    )
    with pytest.raises(SchemaMismatchError, match="not nullable"):
        SealedSegmentData.from_table(nulls, schema, **ids)
    # column order and field nullability flags come from the schema, not the input
    shuffled = table.select(list(reversed(table.column_names)))
    loose = pa.Table.from_arrays(shuffled.columns, names=shuffled.column_names)
    m, blobs = SealedSegmentData.from_table(loose, schema, **ids)
    assert m.field_names == table.column_names
    assert not read_columns(blobs[m.file_of("id").key]).schema.field("id").nullable
