"""Column files: one column (or a small group of columns) of a sealed segment as bytes.

Format: the Arrow IPC *file* format (the Feather v2 layout), one record batch
per file, with per-buffer compression chosen by column type:

- vector columns (fixed_size_list<float32>[dim], fixed_size_binary[n]) are
  stored uncompressed, so reading them is zero-copy: the (n, dim) float32
  matrix an index builder or a brute-force search needs is a view of the
  fetched bytes (or of a memory-mapped file), with no decode step at all.
  Random float32 data does not compress anyway (zstd saves ~8 % of it at a
  large CPU cost).
- every other column (scalars, strings, JSON text, arrays, `_ts`) is zstd
  compressed: primary keys, timestamps and text shrink several-fold, and
  zstd decodes at well over 1 GB/s.

Why not Parquet: bench/segment_io.py, 100k rows of 128-d float32 vectors
plus int64 pk, uint64 `_ts`, float32, varchar and JSON columns, one file per
column, on the 2-core dev machine (best of 5):

    format            total MB  write ms  read ms  vectors -> numpy ms
    IPC, zstd scalars    52.9      46        5         0.02
    IPC, lz4 scalars     54.2      41        3         0.02
    Parquet (zstd)       53.4     130       83        72

Parquet has to decode every page of the vector column and re-assemble the
fixed_size_list (~72 ms, ~700 MB/s), where the IPC read of vectors is a
view (no work at all); Parquet's dictionary encoding makes repetitive text
smaller (JSON 0.13 MB vs 0.60 MB), but ints come out larger (0.30 MB vs
0.10 MB) and scalars are ~3 % of a segment's bytes anyway. Vector loading is
the hot path (query nodes load sealed segments, index nodes read the vector
column only), so IPC wins. zstd over lz4: scalar files are 1.7x smaller
(1.7 MB vs 3.0 MB; pk and `_ts` 4x) for ~2 ms more decode per segment, a good
trade when the bytes cross the network from object storage.

Invariants:
- `read_columns(write_columns(t))` equals `t`: same column names and order,
  same Arrow types (including fixed-size lists, fixed-size binary, lists,
  strings holding JSON), same nulls, same field nullability and schema
  metadata. Chunking is not preserved: a file holds a single record batch.
- each file carries `pelagos.column_format` in its schema metadata; a file
  whose number is newer than `COLUMN_FORMAT` is refused with
  SegmentFormatError instead of being misread, and so are bytes that are not
  an Arrow IPC file at all (e.g. truncated uploads).
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from pelagos.errors import SegmentFormatError

#: Version of the column file layout; bump it when files change incompatibly.
COLUMN_FORMAT = 1
FORMAT_METADATA_KEY = b"pelagos.column_format"

Compression = Literal["zstd", "lz4"]


def is_vector_type(t: pa.DataType) -> bool:
    """Vector column types: stored uncompressed for zero-copy reads."""
    if pa.types.is_fixed_size_binary(t):
        return True
    return bool(pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type))


def default_compression(schema: pa.Schema) -> Compression | None:
    """None when every column is a vector column, else zstd."""
    if len(schema) and all(is_vector_type(f.type) for f in schema):
        return None
    return "zstd"


def write_columns(table: pa.Table, *, compression: Compression | Literal["auto"] | None = "auto") -> bytes:
    """Serialise the columns of `table` to one Arrow IPC file.

    `compression="auto"` picks `default_compression`: keep vector columns in
    files of their own so they stay uncompressed.
    """
    sink = pa.BufferOutputStream()
    _write(table, sink, compression)
    return bytes(sink.getvalue().to_pybytes())


def write_columns_file(
    table: pa.Table, path: str | Path, *, compression: Compression | Literal["auto"] | None = "auto"
) -> int:
    """`write_columns` straight into a file (no copy of the bytes in memory); the file's size."""
    with pa.OSFile(str(path), "wb") as sink:
        _write(table, sink, compression)
        return int(sink.tell())


def _write(table: pa.Table, sink: pa.NativeFile, compression: Compression | Literal["auto"] | None) -> None:
    codec = default_compression(table.schema) if compression == "auto" else compression
    metadata = dict(table.schema.metadata or {})
    metadata[FORMAT_METADATA_KEY] = str(COLUMN_FORMAT).encode()
    combined = table.combine_chunks().replace_schema_metadata(metadata)  # no copy for one chunk
    options = ipc.IpcWriteOptions(compression=codec)
    with ipc.new_file(sink, combined.schema, options=options) as writer:
        # one batch per file: a vector column reads back as one contiguous matrix
        writer.write_table(combined, max_chunksize=max(combined.num_rows, 1))


def write_column(name: str, column: pa.Array | pa.ChunkedArray, *, nullable: bool = True) -> bytes:
    """One named column to bytes (see `write_columns`)."""
    field = pa.field(name, column.type, nullable=nullable)
    return write_columns(pa.Table.from_arrays([column], schema=pa.schema([field])))


def _open(source: pa.Buffer | pa.NativeFile, columns: Sequence[str] | None) -> pa.Table:
    try:
        reader = ipc.open_file(source)
        schema = reader.schema
        _check_format(schema)
        if columns is None:
            table = reader.read_all()
        else:
            missing = [c for c in columns if schema.get_field_index(c) < 0]
            if missing:
                raise SegmentFormatError(f"column file has no column {missing!r}; it holds {schema.names!r}")
            if set(columns) != set(schema.names):  # a projection copies every buffer: only when needed
                wanted = [schema.get_field_index(c) for c in columns]
                reader = ipc.open_file(source, options=ipc.IpcReadOptions(included_fields=wanted))
            table = reader.read_all().select(list(columns))
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
        raise SegmentFormatError(f"not a readable Pelagos column file (truncated or corrupt?): {e}") from e
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != FORMAT_METADATA_KEY}
    return table.replace_schema_metadata(metadata or None)


def _check_format(schema: pa.Schema) -> None:
    raw = (schema.metadata or {}).get(FORMAT_METADATA_KEY)
    if raw is None:
        raise SegmentFormatError(
            "Arrow file without pelagos.column_format metadata: not a Pelagos column file"
        )
    try:
        found = int(raw)
    except ValueError:
        raise SegmentFormatError(f"bad pelagos.column_format {raw!r} in column file") from None
    if found > COLUMN_FORMAT:
        raise SegmentFormatError(
            f"column file format {found} is newer than this Pelagos understands ({COLUMN_FORMAT}); "
            "upgrade Pelagos to read segments written by a newer version"
        )


def read_columns(
    data: bytes | bytearray | memoryview | pa.Buffer, columns: Sequence[str] | None = None
) -> pa.Table:
    """The table stored by `write_columns`, optionally only `columns` (in that order).

    Uncompressed (vector) columns are views of `data`, which they keep alive.
    """
    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    return _open(buf, columns)


def read_columns_file(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Like `read_columns`, memory-mapping a local file (e.g. a segment cache)."""
    return _open(pa.memory_map(str(path), "r"), columns)


class MappedColumns:
    """A column file memory-mapped read-only, its columns zero-copy views of the mapping.

    `release(view, lo, hi)` hands the pages of rows lo..hi of a matrix view
    back to the kernel (MADV_DONTNEED): reading them again faults them in from
    the page cache, so a consumer that walks a big column once (an index
    build) keeps only what it is reading resident. Close (or leave the `with`)
    before deleting the file.
    """

    def __init__(self, path: str | Path, columns: Sequence[str] | None = None) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._file.close()
            raise
        self._base = np.frombuffer(self._map, dtype=np.uint8).ctypes.data
        self.table = _open(pa.py_buffer(self._map), columns)

    def release(self, view: np.ndarray, lo: int, hi: int) -> None:
        if hi <= lo or not hasattr(self._map, "madvise"):
            return
        row = view.strides[0]
        start = view.ctypes.data - self._base + lo * row
        end = view.ctypes.data - self._base + hi * row
        page = mmap.PAGESIZE
        start = (start + page - 1) // page * page
        end = end // page * page
        if 0 <= start < end <= len(self._map):
            self._map.madvise(mmap.MADV_DONTNEED, start, end - start)

    def close(self) -> None:
        self.table = pa.table({})
        try:
            self._map.close()
        except BufferError:  # views are still alive somewhere: the mapping goes with them
            pass
        self._file.close()

    def __enter__(self) -> MappedColumns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
