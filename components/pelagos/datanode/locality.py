"""Locality order: the row order a sealed segment is written in, so that rows close in vector space
are close in memory.

Why: an HNSW search reads a few hundred to a few thousand rows per query, each a jump to another
part of the vector matrix and the graph. When the rows it reads sit together, the same pages and
cache neighbourhoods serve them. Measured with faiss HNSW (M=16, efConstruction=200) built over
the bench data set (bench/README.md) in each order, one query at a time with other work between
queries, as a server runs (per query, in place / back to back; recall@10):

                      insertion order                locality order
    1M x 128, ef=128  530-590 / 410-424 us, 0.982    420 / 353 us, 0.986
    1M x 128, ef=64   355 / 258 us, 0.941            281 / 221 us, 0.937
    100k x 128, ef=64 226 / 137 us, 0.952            214 / 136 us, 0.961

Through the server (pymilvus, ef=128, alternating restarts on the same two 1M data directories, 3
rounds): 1,493-1,558 searches/s from 8 client threads in insertion order, 1,690-1,735 in locality
order (+12 %); from one thread 826-840 and 827-922 (the client's share of each call dilutes it).

(The same graph permuted after the build, rows sorted purely by region, was faster still at 1M,
355 us at ef=128, but permuting a built index copies all of it, and building over rows sorted
purely by region loses recall, see below.)

Cost, at 1M x 128 on 2 cores: 6.7 s when the segment is sealed (k-means on 64k rows, assigning
every row, the gather), flush 3.2 -> 9.6 s, ingest-to-searchable 283 -> 286 s (the HNSW build over
ordered rows was no slower); the gathered copy of the vector column exists next to the buffered
one for a moment (peak RSS after the HNSW load 1,387 -> 1,445 MiB).

Indexes are built from a segment's rows in row order, and a loaded HNSW or FLAT index serves the
segment's vectors (VectorIndex.raw_vectors), so the order has to be the segment's own: ids stay
row offsets everywhere.

Order: a seeded sample of `SKELETON_FRACTION` of the rows first, in row order, then every other row
grouped by its nearest k-means centroid (about sqrt(rows) centroids, trained on a seeded sample),
in row order within a group. The skeleton matters to HNSW: an index is built by adding rows in
order, and a graph built from rows sorted purely by cluster links clusters poorly to each other
(recall@10 at 100k, ef=32: 0.899 in insertion order, 0.873 sorted by cluster, 0.905 with a 25 %
skeleton first; ef=64: 0.952, 0.951, 0.961).

Invariants:
- `locality_order` is a permutation of range(n) (new row i is old row order[i]), deterministic for
  the same vectors; None when it would not pay (vector bytes under `min_bytes`, too few rows)
  (the data node's default is datanode/sealing.LOCALITY_MIN_BYTES, 64 MiB);
- `reordered` takes every column by the same order (a vector column by a numpy gather: one copy
  of that column while it is made); nulls, types and the schema are kept;
- rows of other vector fields follow the first float vector field's order.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.index.faiss_api import faiss
from pelagos.index.float_index import training_rows
from pelagos.index.threads import faiss_threads, threads_for_build
from pelagos.schema.arrow import vectors_of
from pelagos.schema.types import CollectionSchema, DataType, FieldSchema

#: the share of rows, drawn at random, that come first and keep the HNSW graph well connected
SKELETON_FRACTION = 0.25
#: k-means training rows per centroid and iterations (grouping, not quantising: coarse is enough)
POINTS_PER_CENTROID = 64
KMEANS_ITERATIONS = 8
MAX_CENTROIDS = 4096
#: at most this many multiply-adds to assign every row to a centroid (rows * centroids * dim): a
#: 1M x 128 segment gets its sqrt(n) = 1,000 centroids (k-means and assignment ~3 s here), a 1 GiB
#: segment of 4-d rows (67M of them) 1,024 instead of 4,096
ASSIGN_BUDGET = 1 << 38
#: the seed of the skeleton sample and of k-means (the training sample is index/float_index's)
ORDER_SEED = 20261203


def centroid_count(n: int, dim: int) -> int:
    """About sqrt(n) groups, fewer when assigning the rows would cost more than ASSIGN_BUDGET."""
    return max(1, min(MAX_CENTROIDS, round(math.sqrt(n)), ASSIGN_BUDGET // max(1, n * dim)))


def locality_order(vectors: npt.NDArray[np.float32], min_bytes: int) -> npt.NDArray[np.int64] | None:
    """The locality order of the rows of `vectors` (n, dim) float32, or None to keep them as they
    are (fewer than `min_bytes` of vectors, or too few rows to group)."""
    n, dim = vectors.shape
    k = centroid_count(n, dim)
    if vectors.nbytes < min_bytes or k < 2 or n < 4 * k:
        return None
    train = training_rows(vectors, POINTS_PER_CENTROID * k)
    if not np.isfinite(train).all():
        return None  # the data node seals what it was given; the index build reports bad rows
    with faiss_threads(threads_for_build(n, dim)):
        kmeans = faiss.Kmeans(
            dim,
            k,
            niter=KMEANS_ITERATIONS,
            seed=ORDER_SEED,
            max_points_per_centroid=POINTS_PER_CENTROID,
            min_points_per_centroid=1,
        )
        kmeans.train(np.ascontiguousarray(train))
        _, assign = kmeans.index.search(np.ascontiguousarray(vectors), 1)
    group = assign.ravel().astype(np.int64)
    skeleton = np.zeros(n, dtype=bool)
    skeleton[np.random.default_rng(ORDER_SEED).choice(n, int(n * SKELETON_FRACTION), replace=False)] = True
    # the skeleton sorts first (group -1), in row order; the rest by group, in row order within one
    group[skeleton] = -1
    return np.argsort(group, kind="stable").astype(np.int64)


def order_field(schema: CollectionSchema) -> FieldSchema | None:
    """The vector field whose rows decide the order: the first float vector field."""
    for f in schema.fields:
        if f.dtype == DataType.FLOAT_VECTOR and f.dim is not None:
            return f
    return None


def reordered(table: pa.Table, order: npt.NDArray[np.int64]) -> pa.Table:
    """Every column of `table` taken by `order`."""
    indices = pa.array(order, type=pa.int64())
    columns: list[pa.Array | pa.ChunkedArray] = []
    for f, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_fixed_size_list(f.type) and not column.null_count:
            # a numpy gather of whole rows: Arrow's take would go value by value
            whole = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            matrix = whole.flatten().to_numpy(zero_copy_only=False).reshape(len(whole), f.type.list_size)
            taken = pa.array(np.ascontiguousarray(matrix[order]).reshape(-1), type=f.type.value_type)
            columns.append(pa.FixedSizeListArray.from_arrays(taken, type=f.type))
        else:
            columns.append(pc.take(column, indices))
    return pa.Table.from_arrays(columns, schema=table.schema)


def in_locality_order(table: pa.Table, schema: CollectionSchema, min_bytes: int | None) -> pa.Table:
    """`table` (the rows of a segment about to be sealed) in locality order; as it is when the order
    is off (`min_bytes` None), there is no float vector field, it holds nulls, or it is small."""
    f = order_field(schema)
    if min_bytes is None or f is None or f.dim is None or f.name not in table.column_names:
        return table
    column = table.column(f.name)
    if column.null_count:
        return table
    order = locality_order(vectors_of(column, f.dtype, f.dim), min_bytes)
    return table if order is None else reordered(table, order)
