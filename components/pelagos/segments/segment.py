"""A sealed segment in memory: write it to objects, load (some of) it back.

Writing (data node, compaction): `SealedSegmentData.from_table(table, schema,
...)` checks the rows against the collection schema and returns the manifest
plus `{object key: bytes}` of the column files -- one file per column
(vectors uncompressed, everything else zstd; see columns.py). The caller
uploads every file first, then `manifest.encode()` to `manifest.key`, then
records the segment in the meta store: a manifest that exists always names
files that exist.

Reading (query node, index node): `await SealedSegmentData.load(manifest,
fetch, fields)` fetches only the column files of the requested fields,
concurrently, checks their sizes and row counts against the manifest, and
decodes them off the event loop.

Invariants:
- the column order of a written segment is `schema/arrow.arrow_schema(schema)`
  (user fields, `$meta` when dynamic, `_ts`), and every column has exactly
  the Arrow type and nullability that schema gives;
- a loaded `table` has exactly the requested fields, in manifest order;
- deletes are applied by `alive()` using the rule of deltas.py (delete_ts >
  row_ts strictly kills); they need the pk and `_ts` columns loaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pelagos.errors import InvalidArgumentError, SchemaMismatchError, SegmentFormatError
from pelagos.schema.arrow import arrow_schema
from pelagos.schema.types import ROW_TIMESTAMP_COLUMN, CollectionSchema, DataType
from pelagos.segments.columns import default_compression, read_columns, write_columns, write_columns_file
from pelagos.segments.deltas import DeleteLog, alive_mask
from pelagos.segments.layout import column_key
from pelagos.segments.manifest import ColumnFile, FieldEntry, SegmentManifest
from pelagos.segments.pk_index import PrimaryKeyIndex, in_pk_range
from pelagos.segments.stats import column_stats

Fetch = Callable[[str], Awaitable[bytes]]


def _check_rows(table: pa.Table, schema: CollectionSchema) -> pa.Table:
    """`table` with exactly the columns, order, types and nullability of the schema."""
    expected = arrow_schema(schema)
    missing = [n for n in expected.names if n not in table.column_names]
    extra = [n for n in table.column_names if expected.get_field_index(n) < 0]
    if missing or extra:
        raise SchemaMismatchError(
            f"segment rows do not match the schema: missing columns {missing}, unknown columns {extra}"
        )
    for f in expected:
        have = table.schema.field(f.name)
        if have.type != f.type:
            raise SchemaMismatchError(f"column {f.name!r} is {have.type}, the schema says {f.type}")
        if not f.nullable and table.column(f.name).null_count:
            raise SchemaMismatchError(f"column {f.name!r} is not nullable but holds nulls")
    return pa.Table.from_arrays([table.column(n) for n in expected.names], schema=expected)


@dataclass(eq=False)
class SealedSegmentData:
    """Loaded columns of one sealed segment, its manifest, and the deletes that reached it."""

    manifest: SegmentManifest
    table: pa.Table
    _deletes: list[DeleteLog] = field(default_factory=list, init=False, repr=False)
    _pk_index: PrimaryKeyIndex | None = field(default=None, init=False, repr=False)

    # --- writing --------------------------------------------------------------

    @staticmethod
    def from_table(
        table: pa.Table,
        schema: CollectionSchema,
        *,
        collection_id: int,
        partition_id: int,
        segment_id: int,
        channel: str,
        schema_version: int = 0,
        created_at: int | None = None,
    ) -> tuple[SegmentManifest, dict[str, bytes]]:
        """The manifest and the column files (key -> bytes) of a segment holding `table`."""
        blobs: dict[str, bytes] = {}

        def keep(key: str, one: pa.Table) -> int:
            blobs[key] = write_columns(one)
            return len(blobs[key])

        manifest = _written(table, schema, keep, collection_id, partition_id, segment_id, channel,
                            schema_version, created_at)  # fmt: skip
        return manifest, blobs

    @staticmethod
    def write_files(
        table: pa.Table,
        schema: CollectionSchema,
        directory: Path,
        *,
        collection_id: int,
        partition_id: int,
        segment_id: int,
        channel: str,
        schema_version: int = 0,
        created_at: int | None = None,
    ) -> tuple[SegmentManifest, dict[str, Path]]:
        """Like `from_table`, writing each column file into `directory` (key -> path): the bytes of
        a big segment are never all in memory at once."""
        paths: dict[str, Path] = {}

        def write(key: str, one: pa.Table) -> int:
            path = directory / f"{len(paths)}.arrow"
            paths[key] = path
            return write_columns_file(one, path)

        manifest = _written(table, schema, write, collection_id, partition_id, segment_id, channel,
                            schema_version, created_at)  # fmt: skip
        return manifest, paths

    # --- reading --------------------------------------------------------------

    @classmethod
    async def load(
        cls, manifest: SegmentManifest, fetch: Fetch, fields: Iterable[str] | None = None
    ) -> SealedSegmentData:
        """Fetch and decode the columns of `fields` (all when None), nothing else."""
        names = manifest.field_names if fields is None else list(dict.fromkeys(fields))
        unknown = [n for n in names if n not in manifest.field_names]
        if unknown:
            raise InvalidArgumentError(
                f"segment {manifest.segment_id} has no field {unknown}; it has {manifest.field_names}"
            )
        wanted = set(names)
        needed = [f for f in manifest.files if wanted.intersection(f.fields)]
        blobs = await asyncio.gather(*(fetch(f.key) for f in needed))
        for f, data in zip(needed, blobs, strict=True):
            if len(data) != f.size:
                raise SegmentFormatError(
                    f"object {f.key} has {len(data)} bytes, its segment manifest says {f.size}: "
                    "truncated upload or wrong object"
                )
        tables = await asyncio.gather(
            *(
                asyncio.to_thread(read_columns, data, [n for n in f.fields if n in wanted])
                for f, data in zip(needed, blobs, strict=True)
            )
        )
        columns: dict[str, pa.ChunkedArray] = {}
        schema_fields: dict[str, pa.Field] = {}
        for f, t in zip(needed, tables, strict=True):
            if t.num_rows != manifest.row_count:
                raise SegmentFormatError(
                    f"object {f.key} has {t.num_rows} rows, its segment manifest says {manifest.row_count}"
                )
            for n in t.column_names:
                columns[n] = t.column(n)
                schema_fields[n] = t.schema.field(n)
        order = [n for n in manifest.field_names if n in wanted]
        table = pa.Table.from_arrays(
            [columns[n] for n in order], schema=pa.schema([schema_fields[n] for n in order])
        )
        return cls(manifest, table)

    # --- using ----------------------------------------------------------------

    def _column(self, name: str) -> pa.ChunkedArray:
        if name not in self.table.column_names:
            raise InvalidArgumentError(
                f"column {name!r} of segment {self.manifest.segment_id} is not loaded; "
                f"load it with fields including {name!r}"
            )
        return self.table.column(name)

    def _row_ts(self) -> np.ndarray:
        ts = self._column(ROW_TIMESTAMP_COLUMN)
        return np.asarray(ts.to_numpy(), dtype=np.uint64)

    @property
    def pk_index(self) -> PrimaryKeyIndex:
        """Built on first use; needs the pk and `_ts` columns loaded."""
        if self._pk_index is None:
            self._pk_index = PrimaryKeyIndex(self._column(self.manifest.pk_field), self._row_ts())
        return self._pk_index

    def add_deletes(self, deletes: DeleteLog) -> int:
        """Keep the deletes whose pk may be in this segment (manifest pk range); how many were kept."""
        mask = in_pk_range(deletes.pks, self.manifest.pk_min, self.manifest.pk_max)
        kept = deletes if mask.all() else deletes.filter(mask)
        if len(kept):
            self._deletes.append(kept)
        return len(kept)

    @property
    def deletes(self) -> DeleteLog:
        """Every delete kept so far (merged)."""
        if len(self._deletes) > 1:
            self._deletes = [DeleteLog.concat(self._deletes)]
        if self._deletes:
            return self._deletes[0]
        return DeleteLog.empty(self._column(self.manifest.pk_field).type)

    def alive(self, as_of_ts: int | None = None) -> np.ndarray:
        """A bool per row: not killed by a delete (counting only deletes at or before `as_of_ts`)."""
        d = self.deletes
        return alive_mask(self._column(self.manifest.pk_field), self._row_ts(), d.pks, d.ts, as_of_ts)


def _pk_bound(v: object) -> int | str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise SchemaMismatchError(f"primary key bound {v!r} is neither int nor string")


def _written(
    table: pa.Table,
    schema: CollectionSchema,
    write: Callable[[str, pa.Table], int],
    collection_id: int,
    partition_id: int,
    segment_id: int,
    channel: str,
    schema_version: int,
    created_at: int | None,
) -> SegmentManifest:
    """Write every column with `write(key, one-column table) -> size`; the segment's manifest."""
    rows = _check_rows(table, schema)
    ids = {f.name: f.field_id for f in schema.fields}
    dtypes: dict[str, DataType] = {f.name: f.dtype for f in schema.fields}
    entries: list[FieldEntry] = []
    files: list[ColumnFile] = []
    for f in rows.schema:
        one = rows.select([f.name])
        fid = ids.get(f.name, 0)
        key = column_key(collection_id, partition_id, segment_id, fid or f.name)
        size = write(key, one)
        files.append(ColumnFile(key, size, (f.name,), default_compression(one.schema)))
        entries.append(FieldEntry(f.name, fid, column_stats(rows.column(f.name), dtypes.get(f.name), f.name)))
    by_name = {e.name: e.stats for e in entries}
    ts, pk = by_name[ROW_TIMESTAMP_COLUMN], by_name[schema.primary_field.name]
    manifest = SegmentManifest(
        collection_id=collection_id,
        partition_id=partition_id,
        segment_id=segment_id,
        channel=channel,
        row_count=rows.num_rows,
        min_ts=int(ts.min or 0),
        max_ts=int(ts.max or 0),
        pk_field=schema.primary_field.name,
        pk_min=_pk_bound(pk.min),
        pk_max=_pk_bound(pk.max),
        fields=tuple(entries),
        files=tuple(files),
        schema_version=schema_version,
        created_at=int(time.time() * 1000) if created_at is None else created_at,
    )
    return manifest
