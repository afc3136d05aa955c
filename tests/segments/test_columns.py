"""Column files: exact round trips of every column type, zero-copy vectors, bad bytes refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from pelagos.errors import SegmentFormatError
from pelagos.schema.arrow import vectors_of
from pelagos.schema.types import DataType
from pelagos.segments.columns import (
    COLUMN_FORMAT,
    FORMAT_METADATA_KEY,
    MappedColumns,
    default_compression,
    is_vector_type,
    read_columns,
    read_columns_file,
    write_column,
    write_columns,
    write_columns_file,
)
from tests.segments.data import DIM, all_types_schema, make_rows


def assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.schema.equals(b.schema, check_metadata=True), (a.schema, b.schema)
    assert a.equals(b)
    for name in a.column_names:
        assert a.column(name).null_count == b.column(name).null_count
        assert a.column(name).to_pylist() == b.column(name).to_pylist()


@pytest.mark.parametrize("pk", [DataType.INT64, DataType.VARCHAR])
def test_every_column_round_trips_alone(pk: DataType) -> None:
    table = make_rows(all_types_schema(pk), 50, seed=1)
    for name in table.column_names:
        one = table.select([name])
        assert_same(read_columns(write_columns(one)), one)


def test_whole_table_round_trips_with_nullability_and_metadata() -> None:
    table = make_rows(all_types_schema(), 40, seed=2).replace_schema_metadata({"who": "test"})
    back = read_columns(write_columns(table))
    assert_same(back, table)
    assert [f.nullable for f in back.schema] == [f.nullable for f in table.schema]
    assert FORMAT_METADATA_KEY not in (back.schema.metadata or {})


def test_empty_table_round_trips() -> None:
    table = make_rows(all_types_schema(), 0)
    back = read_columns(write_columns(table))
    assert back.num_rows == 0
    assert back.schema.equals(table.schema)


def test_chunked_and_sliced_input_reads_back_as_one_batch() -> None:
    table = make_rows(all_types_schema(), 30, seed=3)
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7, 11), table.slice(18)])
    sliced = table.slice(5, 20)
    for t in (chunked, sliced):
        back = read_columns(write_columns(t))
        assert back.equals(t)
        assert all(back.column(n).num_chunks == 1 for n in back.column_names)


def test_vectors_are_uncompressed_and_read_zero_copy() -> None:
    table = make_rows(all_types_schema(), 64, seed=4).select(["fvec"])
    assert default_compression(table.schema) is None
    data = write_columns(table)
    buf = pa.py_buffer(data)
    back = read_columns(buf)
    values = back.column("fvec").chunk(0).values
    addr = values.buffers()[1].address
    assert buf.address <= addr < buf.address + buf.size  # a view of the fetched bytes, not a copy
    assert np.array_equal(
        vectors_of(back.column("fvec"), DataType.FLOAT_VECTOR, DIM),
        vectors_of(table.column("fvec"), DataType.FLOAT_VECTOR, DIM),
    )


def test_scalar_columns_are_compressed() -> None:
    col = pa.array(np.zeros(10_000, dtype=np.int64))
    assert default_compression(pa.schema([("x", pa.int64())])) == "zstd"
    assert len(write_column("x", col)) < 10_000 * 8 // 10
    assert is_vector_type(pa.list_(pa.float32(), 4)) and is_vector_type(pa.binary(2))
    assert not is_vector_type(pa.list_(pa.int64())) and not is_vector_type(pa.string())


def test_read_selected_columns_only() -> None:
    table = make_rows(all_types_schema(), 10, seed=5)
    back = read_columns(write_columns(table), ["fvec", "id"])
    assert back.column_names == ["fvec", "id"]
    assert back.column("id").equals(table.column("id"))
    with pytest.raises(SegmentFormatError, match="no column"):
        read_columns(write_columns(table), ["nope"])


def test_memory_mapped_file_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = make_rows(all_types_schema(), 25, seed=6)
    path = tmp_path / "seg.arrow"
    path.write_bytes(write_columns(table))
    assert_same(read_columns_file(path), table)


def test_garbage_and_truncated_bytes_are_refused() -> None:
    data = write_columns(make_rows(all_types_schema(), 10, seed=7))
    for bad in (b"", b"not arrow at all", data[: len(data) // 2], data[:-10]):
        with pytest.raises(SegmentFormatError):
            read_columns(bad)


def _raw_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_foreign_and_newer_files_are_refused() -> None:
    t = pa.table({"x": [1, 2]})
    with pytest.raises(SegmentFormatError, match="not a Pelagos column file"):
        read_columns(_raw_ipc(t))
    newer = t.replace_schema_metadata({FORMAT_METADATA_KEY: str(COLUMN_FORMAT + 1).encode()})
    with pytest.raises(SegmentFormatError, match="newer than this Pelagos"):
        read_columns(_raw_ipc(newer))


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_mapped_columns_hand_pages_back_and_still_read_right(tmp_path: Path) -> None:
    dim, n = 128, 100_000  # 51 MB of vectors
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    path = tmp_path / "vectors.arrow"
    column = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)
    write_columns_file(pa.table({"v": column}), path)
    checksum = float(x.sum(dtype=np.float64))
    del x, column
    with MappedColumns(path, ["v"]) as mapped:
        v = np.asarray(mapped.table.column("v").chunk(0).flatten()).reshape(n, dim)
        before = _rss_bytes()
        total = float(v.sum(dtype=np.float64))  # touches every page
        touched = _rss_bytes()
        mapped.release(v, 0, n)
        released = _rss_bytes()
        assert total == checksum
        assert touched - before > 40e6 and touched - released > 40e6
        assert float(v.sum(dtype=np.float64)) == checksum  # faulted back in from the page cache
        del v
