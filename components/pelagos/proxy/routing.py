"""Where rows go: primary key -> shard channel, partition key -> partition.

Hashes are computed on whole columns (numpy for int64, pyarrow's binary
view + numpy for strings); the same function routes inserts, upserts and
deletes, so a row and its delete always meet in the same channel.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a good avalanche for sequential ids."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64, copy=True) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _string_hash(col: pa.Array) -> np.ndarray:
    """FNV-1a-like hash of each string, vectorised over the values buffer."""
    col = col.cast(pa.large_string()) if not pa.types.is_large_string(col.type) else col
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int64)[col.offset : col.offset + len(col) + 1]
    data_buf = col.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    # polynomial hash per string via cumulative sums of position-weighted bytes
    if len(data) == 0:
        return _mix64(np.zeros(len(col), np.uint64))
    data = data[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    if len(data) == 0:
        return _mix64(np.zeros(len(col), np.uint64))
    with np.errstate(over="ignore"):
        # weight each byte by a hash of its position within its string
        pos_in_str = np.arange(len(data), dtype=np.int64) - np.repeat(offsets[:-1], np.diff(offsets))
        weights = _mix64(pos_in_str.astype(np.uint64))
        contrib = _mix64(data.astype(np.uint64) ^ weights)
        sums = np.add.reduceat(contrib, offsets[:-1].clip(max=len(data) - 1)) if len(col) else contrib[:0]
        empty = offsets[1:] == offsets[:-1]
        sums[empty] = 0
        return _mix64(sums ^ np.diff(offsets).astype(np.uint64))


def hash_keys(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 hash per key (int64 or string)."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if pa.types.is_integer(keys.type):
        return _mix64(keys.to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64))
    if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type):
        return _string_hash(keys)
    raise TypeError(f"cannot route keys of type {keys.type}")


def bucket_of(keys: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """Which of `buckets` each key falls in (int64 array)."""
    if buckets == 1:
        return np.zeros(len(keys), dtype=np.int64)
    return (hash_keys(keys) % np.uint64(buckets)).astype(np.int64)


def split_by_bucket(table: pa.Table, buckets: np.ndarray, count: int) -> list[tuple[int, pa.Table]]:
    """(bucket, rows) for every non-empty bucket, rows in their original order."""
    if count == 1:
        return [(0, table)] if table.num_rows else []
    order = np.argsort(buckets, kind="stable")
    sorted_b = buckets[order]
    bounds = np.searchsorted(sorted_b, np.arange(count + 1))
    out = []
    for b in range(count):
        lo, hi = bounds[b], bounds[b + 1]
        if hi > lo:
            out.append((b, table.take(pa.array(order[lo:hi]))))
    return out
