"""SegmentBuilder: the rows of one growing segment, gathered column by column as they arrive.

A data node buffers up to a segment's worth of rows (1 GiB by default),
then writes them out. Buffering the arriving tables as they are would keep
every message alive and force a copy of the whole vector column at sealing
(a segment file holds one contiguous matrix): at 1M x 128 that was 0.5 GB
buffered, 0.5 GB concatenated and 1 GB more in serialisation, all at once.

Invariants:
- a vector column (fixed_size_list<float>, fixed_size_binary) without nulls
  is copied as it arrives into one array per column, reserved for the rows
  a full segment holds but backed by memory only where written (the kernel
  commits an anonymous mapping page by page on first touch); appending past
  the reservation grows it by doubling;
- every other column, and a vector column holding nulls, is copied out of
  its message (so the message can be freed) and kept as chunks;
- `table()` gives the rows appended so far, in order, with the schema of the
  first table; its vector columns are views of the builder's arrays (valid
  while the builder lives, and not to be appended to meanwhile).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pelagos.errors import SchemaMismatchError
from pelagos.segments.columns import is_vector_type


class _Matrix:
    """A contiguous, growable (rows, width) matrix of one vector column."""

    def __init__(self, t: pa.DataType, capacity_rows: int) -> None:
        self.type = t
        if pa.types.is_fixed_size_binary(t):
            self.width, self.dtype = t.byte_width, np.dtype(np.uint8)
        else:
            self.width, self.dtype = t.list_size, np.dtype(t.value_type.to_pandas_dtype())
        self.rows = 0
        self.data: npt.NDArray[np.generic] = np.empty((max(1, capacity_rows), self.width), self.dtype)

    def append(self, column: pa.ChunkedArray) -> None:
        n = len(column)
        if self.rows + n > len(self.data):
            grown = np.empty((max(2 * len(self.data), self.rows + n), self.width), self.dtype)
            grown[: self.rows] = self.data[: self.rows]
            self.data = grown
        at = self.rows
        for chunk in column.chunks:
            m = len(chunk)
            self.data[at : at + m] = _matrix_of(chunk, self.width, self.dtype)
            at += m
        self.rows = at

    def array(self) -> pa.Array:
        flat = self.data[: self.rows].reshape(-1)
        if pa.types.is_fixed_size_binary(self.type):
            return pa.FixedSizeBinaryArray.from_buffers(self.type, self.rows, [None, pa.py_buffer(flat)])
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=self.type.value_type), self.width)


def _matrix_of(chunk: pa.Array, width: int, dtype: np.dtype[np.generic]) -> npt.NDArray[np.generic]:
    n = len(chunk)
    if isinstance(chunk, pa.FixedSizeBinaryArray):
        raw = np.frombuffer(chunk.buffers()[1], dtype=np.uint8)
        return raw[chunk.offset * width : (chunk.offset + n) * width].reshape(n, width)
    values = np.asarray(chunk.flatten().to_numpy(zero_copy_only=False), dtype=dtype)
    return values.reshape(n, width)


class SegmentBuilder:
    def __init__(self, max_bytes: int, max_rows: int | None = None) -> None:
        """Sized for a segment sealed at `max_bytes` (or `max_rows`): vector columns reserve that
        many rows (address space only) when the first rows arrive."""
        self._max_bytes = max(1, max_bytes)
        self._max_rows = max_rows
        self._schema: pa.Schema | None = None
        self._matrices: dict[str, _Matrix] = {}
        self._chunks: dict[str, list[pa.Array]] = {}
        self.num_rows = 0
        self.nbytes = 0

    def append(self, table: pa.Table) -> None:
        if self._schema is None:
            self._schema = table.schema
            vector_bytes = sum(
                table.column(f.name).nbytes for f in table.schema if is_vector_type(f.type)
            ) / max(1, table.num_rows)
            capacity = int(self._max_bytes // max(1.0, vector_bytes)) + table.num_rows
            if self._max_rows is not None:
                capacity = min(capacity, self._max_rows + table.num_rows)
            for f in table.schema:
                if is_vector_type(f.type) and not table.column(f.name).null_count:
                    self._matrices[f.name] = _Matrix(f.type, capacity)
                else:
                    self._chunks[f.name] = []
        elif not table.schema.equals(self._schema):
            raise SchemaMismatchError(
                f"rows of one segment must share a schema: got {table.schema}, expected {self._schema}"
            )
        for name, matrix in list(self._matrices.items()):
            column = table.column(name)
            if column.null_count:  # nulls in a vector column after all: keep it as chunks from now
                self._chunks[name] = [matrix.array()]
                del self._matrices[name]
        for name, matrix in self._matrices.items():
            matrix.append(table.column(name))
        for name, chunks in self._chunks.items():
            column = table.column(name)
            if len(column):
                chunks.append(pa.concat_arrays(column.chunks))  # a copy: the message can go
        self.num_rows += table.num_rows
        self.nbytes += table.nbytes

    def release(self) -> None:
        """Drop the rows (tables given out before keep theirs alive); the builder is empty after."""
        self._matrices.clear()
        self._chunks.clear()
        self._schema = None
        self.num_rows = 0
        self.nbytes = 0

    def table(self) -> pa.Table:
        if self._schema is None:
            return pa.table({})
        columns: list[pa.Array | pa.ChunkedArray] = []
        for f in self._schema:
            if f.name in self._matrices:
                columns.append(self._matrices[f.name].array())
            else:
                columns.append(pa.chunked_array(self._chunks[f.name], type=f.type))
        return pa.Table.from_arrays(columns, schema=self._schema)
