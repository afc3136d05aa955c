"""What a query node searches: one sealed or growing segment, read-only.

A view holds the segment's columns (an Arrow table with the pk, `_ts`,
vectors and scalar fields), the vector matrices (zero-copy numpy views of
the Arrow vector columns), the vector indexes built for it (if any) and the
partition it belongs to. Liveness (deletes) is computed by the channel,
which knows every delete that reached it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from pelagos.index.exact import normalize_rows
from pelagos.index.protocol import VectorIndex
from pelagos.schema import ROW_TIMESTAMP_COLUMN, CollectionSchema, DataType
from pelagos.schema.arrow import vectors_of


@dataclass(eq=False)
class SegmentView:
    segment_id: int  # 0 for the growing data of a channel
    partition_ids: np.ndarray  # int64 per row (growing data mixes partitions)
    table: pa.Table
    schema: CollectionSchema
    indexes: dict[str, VectorIndex] = field(default_factory=dict)
    #: min/max statistics of sealed segments, for pruning (expr FieldStats by name)
    stats: dict[str, Any] = field(default_factory=dict)
    #: derived structures built on first use (pk index, ...), kept for the segment's life
    cache: dict[str, Any] = field(default_factory=dict)
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)
    _pks: pa.Array | None = None
    _pk_numbers: np.ndarray | None = None
    _ts: np.ndarray | None = None
    _partitions: frozenset[int] | None = None

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def sealed(self) -> bool:
        return self.segment_id != 0

    def vectors(self, name: str) -> np.ndarray:
        m = self._vectors.get(name)
        if m is None:
            f = self.schema.field(name)
            assert f is not None and f.dim is not None
            m = vectors_of(self.table.column(name), f.dtype, f.dim)
            self._vectors[name] = m
        return m

    def normalized_vectors(self, name: str) -> np.ndarray:
        """Unit-length rows of a float vector field (COSINE search), computed once."""
        key = f"{name}#unit"
        m = self._vectors.get(key)
        if m is None:
            m = normalize_rows(self.vectors(name))
            self._vectors[key] = m
        return m

    def serve_vectors_from(self, name: str, vectors: np.ndarray) -> bool:
        """Replace the vector column `name` by `vectors` (an index's own copy of the same rows, e.g.
        VectorIndex.raw_vectors), so the segment holds its vectors once; False if they do not fit."""
        f = self.schema.field(name)
        if f is None or f.dtype != DataType.FLOAT_VECTOR or f.dim is None:
            return False
        if vectors.shape != (self.num_rows, f.dim) or vectors.dtype != np.float32:
            return False
        i = self.table.schema.get_field_index(name)
        if i < 0 or self.table.column(i).null_count:
            return False
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), f.dim)
        self.table = self.table.set_column(i, self.table.schema.field(i).with_type(column.type), column)
        self._vectors[name] = vectors
        self._vectors.pop(f"{name}#unit", None)
        return True

    @property
    def pks(self) -> pa.Array:
        if self._pks is None:
            col = self.table.column(self.schema.primary_field.name)
            self._pks = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        return self._pks

    @property
    def pk_numbers(self) -> np.ndarray | None:
        """The int64 primary keys as a zero-copy numpy array (None for string keys)."""
        if self._pk_numbers is None and pa.types.is_int64(self.pks.type) and not self.pks.null_count:
            self._pk_numbers = self.pks.to_numpy(zero_copy_only=True)
        return self._pk_numbers

    @property
    def row_ts(self) -> np.ndarray:
        if self._ts is None:
            self._ts = np.asarray(self.table.column(ROW_TIMESTAMP_COLUMN).to_numpy(), dtype=np.uint64)
        return self._ts

    def partition_mask(self, partition_ids: list[int]) -> np.ndarray | None:
        """None when every row is in one of `partition_ids` (or no restriction)."""
        if not partition_ids:
            return None
        present = self._partitions
        if present is None:
            present = self._partitions = frozenset(np.unique(self.partition_ids).tolist())
        if present.issubset(partition_ids):  # usually: a sealed segment is one partition
            return None
        if present.isdisjoint(partition_ids):
            return np.zeros(self.num_rows, dtype=bool)
        return np.isin(self.partition_ids, np.asarray(partition_ids, dtype=np.int64))
