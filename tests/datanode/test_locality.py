"""Locality order: a sealed segment's rows grouped by where they lie in vector space, a random
skeleton first; every column taken by the same order; nothing done where it would not pay."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pelagos.datanode.locality import (
    SKELETON_FRACTION,
    centroid_count,
    in_locality_order,
    locality_order,
    reordered,
)
from pelagos.schema import CollectionSchema, DataType, FieldSchema

DIM = 8


def blobs(n_per: int, centres: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `centres` far-apart tight blobs, interleaved (row i is in blob i % centres)."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal((centres, DIM)).astype(np.float32) * 100
    label = np.arange(n_per * centres) % centres
    return (centre[label] + rng.standard_normal((len(label), DIM)).astype(np.float32)), label


def schema(*extra: FieldSchema) -> CollectionSchema:
    return CollectionSchema(
        fields=[
            FieldSchema("pk", DataType.INT64, is_primary=True),
            FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
            *extra,
        ]
    )


def table_of(vecs: np.ndarray, **extra: pa.Array) -> pa.Table:
    n = len(vecs)
    return pa.table(
        {
            "pk": pa.array(np.arange(n), pa.int64()),
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), DIM),
            **extra,
        }
    )


def test_order_is_a_deterministic_permutation_with_the_skeleton_first_then_groups() -> None:
    vecs, label = blobs(500)
    order = locality_order(vecs, 0)
    assert order is not None and order.dtype == np.int64
    assert np.array_equal(np.sort(order), np.arange(len(vecs)))
    assert np.array_equal(order, locality_order(vecs.copy(), 0))
    skeleton = int(len(vecs) * SKELETON_FRACTION)
    head, rest = order[:skeleton], order[skeleton:]
    assert np.all(np.diff(head) > 0)  # the skeleton in row order
    assert set(label[head].tolist()) == {0, 1, 2, 3}  # a sample of every region
    # the rest, grouped: k-means groups never mix blobs, so the blob changes along it at most once
    # per group (in insertion order it changes at every row), and row order restarts only there
    groups = centroid_count(len(vecs), DIM)
    assert 1 + np.count_nonzero(np.diff(label[rest])) <= groups
    assert 1 + np.count_nonzero(np.diff(rest) < 0) <= groups


def test_groups_grow_as_sqrt_of_rows_within_a_work_budget() -> None:
    assert centroid_count(10_000, 128) == 100
    assert centroid_count(1_000_000, 128) == 1_000
    assert centroid_count(64_000_000, 4) == 1_073  # 2^38 multiply-adds / (64M * 4)
    assert centroid_count(1 << 40, 1) == 1  # beyond the budget even for 2 groups: no order
    assert centroid_count(1, 8) == 1


def test_no_order_where_it_would_not_pay() -> None:
    vecs, _ = blobs(500)
    assert locality_order(vecs, vecs.nbytes + 1) is None  # small: it sits in cache anyway
    assert locality_order(vecs[:10], 0) is None  # too few rows to group
    t = table_of(vecs)
    assert in_locality_order(t, schema(), None) is t  # turned off
    binary_only = CollectionSchema(
        fields=[
            FieldSchema("pk", DataType.INT64, is_primary=True),
            FieldSchema("bits", DataType.BINARY_VECTOR, dim=16),
        ]
    )
    codes = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2), len(vecs), [None, pa.py_buffer(np.zeros(2 * len(vecs), np.uint8).tobytes())]
    )
    b = pa.table({"pk": pa.array(np.arange(len(vecs)), pa.int64()), "bits": codes})
    assert in_locality_order(b, binary_only, 0) is b  # no float vectors to order by
    with_null = t.set_column(
        1,
        "vec",
        pa.FixedSizeListArray.from_arrays(
            pa.array(vecs.reshape(-1)), DIM, mask=pa.array(np.arange(len(vecs)) == 3)
        ),
    )
    assert in_locality_order(with_null, schema(), 0) is with_null


def test_every_column_follows_the_order_with_types_and_nulls_kept() -> None:
    vecs, _ = blobs(300)
    n = len(vecs)
    other = np.random.default_rng(1).standard_normal((n, 4)).astype(np.float32)
    names = [None if i % 10 == 0 else f"r{i}" for i in range(n)]
    t = table_of(
        vecs,
        other=pa.FixedSizeListArray.from_arrays(pa.array(other.reshape(-1)), 4),
        bits=pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(2),
            n,
            [None, pa.py_buffer(np.arange(2 * n, dtype=np.uint16).astype(np.uint8).tobytes())],
        ),
        name=pa.array(names, pa.string()),
        tags=pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int64())),
    )
    s = schema(
        FieldSchema("other", DataType.FLOAT_VECTOR, dim=4),
        FieldSchema("bits", DataType.BINARY_VECTOR, dim=16),
        FieldSchema("name", DataType.VARCHAR, max_length=8, nullable=True),
        FieldSchema("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4),
    )
    out = in_locality_order(t, s, 0)
    order = locality_order(vecs, 0)
    assert order is not None
    assert out.schema == t.schema
    pks = out.column("pk").to_numpy()
    assert np.array_equal(pks, order)  # ordered by the first float vector field
    assert out.column("vec").to_pylist() == [t.column("vec")[int(i)].as_py() for i in pks]
    assert out.column("other").to_pylist() == [t.column("other")[int(i)].as_py() for i in pks]
    assert out.column("bits").to_pylist() == [t.column("bits")[int(i)].as_py() for i in pks]
    assert out.column("name").to_pylist() == [names[int(i)] for i in pks]
    assert out.column("tags").to_pylist() == [[int(i), int(i) + 1] for i in pks]


def test_reordered_takes_chunked_columns_whole() -> None:
    vecs, _ = blobs(100)
    t = table_of(vecs)
    chunked = pa.Table.from_batches(t.to_batches(max_chunksize=70))
    assert chunked.column("vec").num_chunks > 1
    order = np.arange(len(vecs))[::-1].copy()
    out = reordered(chunked, order)
    np.testing.assert_array_equal(
        np.asarray(out.column("vec").combine_chunks().flatten()).reshape(-1, DIM), vecs[order]
    )
    assert out.column("pk").to_pylist() == order.tolist()
