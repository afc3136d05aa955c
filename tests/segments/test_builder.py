"""SegmentBuilder: rows appended message by message come back as one table, vector columns
contiguous and copied out of the messages, other columns copied too."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pyarrow as pa
import pytest

from pelagos.errors import SchemaMismatchError
from pelagos.segments.builder import SegmentBuilder


def message(start: int, n: int, dim: int = 4, null_vector_at: int | None = None) -> pa.Table:
    v = np.arange(start * dim, (start + n) * dim, dtype=np.float32).reshape(n, dim)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), dim)
    if null_vector_at is not None:
        mask = np.zeros(n, bool)
        mask[null_vector_at] = True
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), dim, mask=pa.array(mask))
    bits = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2), n, [None, pa.py_buffer(np.arange(2 * start, 2 * (start + n), dtype=np.uint8).tobytes())]
    )
    return pa.table(
        {
            "pk": pa.array(np.arange(start, start + n), pa.int64()),
            "vec": vectors,
            "bits": bits,
            "tag": pa.array([f"t{i}" for i in range(start, start + n)]),
        }
    )


def test_appended_rows_come_back_in_order_with_contiguous_vectors() -> None:
    b = SegmentBuilder(max_bytes=1 << 20)
    parts = [message(0, 5), message(5, 3).slice(1, 2), message(8, 7)]
    for p in parts:
        b.append(p)
    expected = pa.concat_tables(parts).combine_chunks()
    got = b.table()
    assert got.equals(expected)
    assert b.num_rows == 14 and got.column("vec").num_chunks == 1 and got.column("bits").num_chunks == 1


def test_the_reservation_grows_past_its_size() -> None:
    b = SegmentBuilder(max_bytes=64)  # room for ~4 rows of 16-byte vectors
    for i in range(0, 100, 10):
        b.append(message(i, 10))
    assert b.table().column("pk").to_pylist() == list(range(100))
    flat = np.asarray(b.table().column("vec").combine_chunks().flatten())
    assert np.array_equal(flat, np.arange(400, dtype=np.float32))


def test_release_empties_the_builder_and_tables_given_out_keep_their_rows() -> None:
    b = SegmentBuilder(max_bytes=1 << 20)
    b.append(message(0, 20))
    given = b.table()
    b.release()
    assert b.num_rows == 0 and b.nbytes == 0 and b.table().num_rows == 0
    gc.collect()
    assert given.equals(message(0, 20).combine_chunks())
    b.append(message(100, 3))  # usable again, with a fresh schema
    assert b.table().column("pk").to_pylist() == [100, 101, 102]


def test_messages_are_not_kept_alive() -> None:
    b = SegmentBuilder(max_bytes=1 << 20)
    m = message(0, 50)
    buf = m.column("vec").chunk(0).values.buffers()[1]
    ref = weakref.ref(buf)
    b.append(m)
    del m, buf
    gc.collect()
    assert ref() is None
    assert b.table().column("pk").to_pylist() == list(range(50))


def test_a_vector_column_with_nulls_is_kept_as_it_is() -> None:
    b = SegmentBuilder(max_bytes=1 << 20)
    parts = [message(0, 4), message(4, 4, null_vector_at=2), message(8, 2)]
    for p in parts:
        b.append(p)
    assert b.table().equals(pa.concat_tables(parts))
    assert b.table().column("vec").null_count == 1


def test_rows_of_another_schema_are_refused() -> None:
    b = SegmentBuilder(max_bytes=1 << 20)
    b.append(message(0, 2))
    with pytest.raises(SchemaMismatchError):
        b.append(message(2, 2).drop_columns(["tag"]))
