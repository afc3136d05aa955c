"""Delete logs and the rule that decides which rows a delete kills.

A delete log is an Arrow table `(pk: int64 | string, ts: uint64)` stored as a
column file (see columns.py; zstd compressed). Every flush of deletes for a
segment is a new immutable object (layout.delta_key with a new log ID).

The visibility rule (the one place it is written down):

    a row (pk, row_ts) is DEAD when some delete (pk, delete_ts) of the same pk
    has  delete_ts > row_ts  (strictly), and, when a read timestamp
    `as_of_ts` is given, delete_ts <= as_of_ts.

Consequences:
- an upsert is a delete and an insert of the same pk at the same ts T: the
  OLD row (ts < T) dies, the NEW row (ts == T) survives, because T > T is
  false. This is why the comparison is strict;
- a delete that happened before an insert (delete_ts < row_ts, or equal)
  never kills the later row: re-inserting a deleted pk brings it back;
- only the latest delete of each pk matters (`max delete_ts > row_ts` is the
  same as "some delete_ts > row_ts"), so many deletes of one pk cost nothing
  extra once grouped;
- `alive_mask` says nothing about whether the row itself is visible at
  `as_of_ts` (row_ts <= as_of_ts); that is a separate filter, see
  `visible_mask`.

Everything is vectorised: deletes are grouped by pk with an Arrow hash
aggregate, rows are matched to the groups with `pyarrow.compute.index_in`
(a hash table of the distinct deleted pks), and the comparison is numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.errors import SchemaMismatchError, SegmentFormatError
from pelagos.segments.columns import read_columns, write_columns

PK_COLUMN = "pk"
TS_COLUMN = "ts"


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return values.chunk(0)
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values


def normalise_pks(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Primary keys as int64 or string (any integer or large_string is cast); no nulls."""
    arr = _as_array(values)
    t = arr.type
    if pa.types.is_integer(t) and t != pa.int64():
        arr = arr.cast(pa.int64())
    elif pa.types.is_large_string(t):
        arr = arr.cast(pa.string())
    elif t not in (pa.int64(), pa.string()):
        raise SchemaMismatchError(f"primary keys must be int64 or string, not {t}")
    if arr.null_count:
        raise SchemaMismatchError("primary keys must not be null")
    return arr


@dataclass(frozen=True, slots=True)
class DeleteLog:
    """Deletes as parallel columns: `pks` (int64 or string Arrow array), `ts` (uint64 numpy)."""

    pks: pa.Array
    ts: np.ndarray

    def __post_init__(self) -> None:
        if len(self.pks) != len(self.ts):
            raise SchemaMismatchError(f"{len(self.pks)} deleted pks but {len(self.ts)} timestamps")

    @classmethod
    def of(
        cls, pks: pa.Array | pa.ChunkedArray | Sequence[int] | Sequence[str], ts: Sequence[int] | np.ndarray
    ) -> DeleteLog:
        arr = pks if isinstance(pks, pa.Array | pa.ChunkedArray) else pa.array(pks)
        return cls(normalise_pks(arr), np.asarray(ts, dtype=np.uint64))

    @classmethod
    def empty(cls, pk_type: pa.DataType | None = None) -> DeleteLog:
        return cls(pa.array([], pk_type or pa.int64()), np.empty(0, np.uint64))

    def __len__(self) -> int:
        return len(self.pks)

    def to_table(self) -> pa.Table:
        schema = pa.schema(
            [pa.field(PK_COLUMN, self.pks.type, False), pa.field(TS_COLUMN, pa.uint64(), False)]
        )
        return pa.Table.from_arrays([self.pks, pa.array(self.ts, pa.uint64())], schema=schema)

    def to_bytes(self) -> bytes:
        return write_columns(self.to_table(), compression="zstd")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview | pa.Buffer) -> DeleteLog:
        table = read_columns(data)
        if table.column_names != [PK_COLUMN, TS_COLUMN] or table.schema.field(TS_COLUMN).type != pa.uint64():
            raise SegmentFormatError(
                f"not a delete log: expected columns (pk, ts: uint64), got {table.schema}"
            )
        ts = _as_array(table.column(TS_COLUMN)).to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
        return cls(normalise_pks(table.column(PK_COLUMN)), ts)

    @classmethod
    def concat(cls, logs: Sequence[DeleteLog]) -> DeleteLog:
        if not logs:
            return cls.empty()
        types = {log.pks.type for log in logs}
        if len(types) > 1:
            raise SchemaMismatchError(f"delete logs mix primary key types {sorted(map(str, types))}")
        pks = pa.concat_arrays([log.pks for log in logs])
        return cls(pks, np.concatenate([log.ts for log in logs]).astype(np.uint64, copy=False))

    def filter(self, mask: np.ndarray) -> DeleteLog:
        return DeleteLog(self.pks.filter(pa.array(mask, pa.bool_())), self.ts[mask])

    def latest_per_pk(self) -> DeleteLog:
        """One entry per distinct pk: its latest (maximum) delete ts."""
        if not len(self):
            return self
        grouped = self.to_table().group_by(PK_COLUMN).aggregate([(TS_COLUMN, "max")])
        pks = _as_array(grouped.column(PK_COLUMN))
        ts = _as_array(grouped.column(f"{TS_COLUMN}_max")).to_numpy(zero_copy_only=False)
        return DeleteLog(pks, ts.astype(np.uint64, copy=False))


def alive_mask(
    row_pks: pa.Array | pa.ChunkedArray,
    row_ts: np.ndarray,
    delete_pks: pa.Array | pa.ChunkedArray,
    delete_ts: np.ndarray,
    as_of_ts: int | None = None,
) -> np.ndarray:
    """A bool per row, False where a delete kills the row (rule in the module docstring)."""
    rows = len(row_pks)
    rts = np.asarray(row_ts, dtype=np.uint64)
    if len(rts) != rows:
        raise SchemaMismatchError(f"{rows} row pks but {len(rts)} row timestamps")
    deletes = DeleteLog(normalise_pks(delete_pks), np.asarray(delete_ts, dtype=np.uint64))
    if as_of_ts is not None:
        in_view = deletes.ts <= np.uint64(as_of_ts)
        if not in_view.all():
            deletes = deletes.filter(in_view)
    alive = np.ones(rows, dtype=bool)
    if not rows or not len(deletes):
        return alive
    pks = normalise_pks(row_pks)
    if pks.type != deletes.pks.type:
        raise SchemaMismatchError(f"row pks are {pks.type} but deleted pks are {deletes.pks.type}")
    latest = deletes.latest_per_pk()
    idx = pc.index_in(pks, value_set=latest.pks).fill_null(-1).to_numpy(zero_copy_only=False)
    hit = idx >= 0
    alive[hit] = ~(latest.ts[idx[hit]] > rts[hit])
    return alive


def visible_mask(row_ts: np.ndarray, as_of_ts: int) -> np.ndarray:
    """A bool per row: the row was written at or before `as_of_ts`."""
    return np.asarray(row_ts, dtype=np.uint64) <= np.uint64(as_of_ts)
