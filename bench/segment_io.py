"""Segment column files: write/read throughput of Arrow IPC (the chosen format) vs Parquet.

One sealed segment of 100k rows: a 128-d float32 vector column plus int64 pk,
uint64 `_ts`, float32, varchar and JSON columns, each written as a file of its
own (as `SealedSegmentData.from_table` does): Arrow IPC with zstd scalars
(chosen), Arrow IPC with lz4 scalars, Parquet (zstd scalars). For each format the bench
reports bytes, write time, full-read time, the time to get the vector column
as a (n, 128) float32 matrix (what an index node or a brute-force search
needs), and the time to read the scalar columns only.

Run: `.venv/bin/python bench/segment_io.py [--rows 100000] [--dim 128] [--repeat 5]`
Figures are best-of-`repeat` wall times on the machine that runs it. On the
2-core dev machine (pyarrow 26):

    format     total MB  write ms   read ms scalars ms  vec->numpy ms  write MB/s  read MB/s
    arrow-ipc     52.94      45.6       5.3        5.3           0.03        1261      10818
    ipc-lz4       54.21      40.2       3.3        3.3           0.02        1432      17559
    parquet       53.43     128.1      82.5       11.1          72.21         449        697

(MB/s are of the in-memory Arrow size, 57.5 MB; an IPC vector read is a view
of the fetched bytes, hence the huge read figure.)
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pelagos.schema.types import DataType
from pelagos.segments.columns import read_columns, write_columns

VECTOR = "vec"


def make_table(rows: int, dim: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((rows, dim), dtype=np.float32)
    base_ts = (1_700_000_000_000 << 18) + np.arange(rows, dtype=np.uint64) * 3
    words = np.array(["red", "green", "blue", "cyan", "magenta", "yellow"])
    tags = words[rng.integers(0, len(words), rows)]
    titles = pa.array([f"{t}-{i}" for i, t in enumerate(tags)])
    meta = pa.array([json.dumps({"tag": str(t), "n": int(i % 97)}) for i, t in enumerate(tags)])
    return pa.table(
        {
            "pk": pa.array(np.arange(rows, dtype=np.int64) + 451_000_000_000_000_000),
            "_ts": pa.array(base_ts),
            "price": pa.array(rng.random(rows, dtype=np.float32)),
            "title": titles,
            "$meta": meta,
            VECTOR: pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim),
        }
    )


def split(table: pa.Table) -> dict[str, pa.Table]:
    return {name: table.select([name]) for name in table.column_names}


# --- the two formats ---------------------------------------------------------


def ipc_write(t: pa.Table) -> bytes:
    return write_columns(t)


def ipc_read(data: bytes) -> pa.Table:
    return read_columns(data)


def ipc_lz4_write(t: pa.Table) -> bytes:
    vector = any(pa.types.is_fixed_size_list(f.type) for f in t.schema)
    return write_columns(t, compression=None if vector else "lz4")


def parquet_write(t: pa.Table) -> bytes:
    sink = io.BytesIO()
    vector = any(pa.types.is_fixed_size_list(f.type) for f in t.schema)
    pq.write_table(
        t,
        sink,
        compression="none" if vector else "zstd",
        use_dictionary=not vector,
        write_statistics=not vector,
    )
    return sink.getvalue()


def parquet_read(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def as_matrix(t: pa.Table, dim: int) -> np.ndarray:
    col = t.column(VECTOR)
    arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    flat = arr.flatten() if arr.offset == 0 else arr.values.slice(arr.offset * dim, len(arr) * dim)
    return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)


def read_matrix(read: Callable[[bytes], pa.Table], data: bytes, dim: int) -> np.ndarray:
    return as_matrix(read(data), dim)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(rows: int, dim: int, repeat: int) -> None:
    table = make_table(rows, dim)
    parts = split(table)
    vec_bytes = rows * dim * 4
    print(f"segment: {rows} rows, {dim}-d float32 vectors ({vec_bytes / 1e6:.1f} MB raw) + 5 scalar columns")
    print(f"{'format':<10}{'file':<8}{'MB':>9}{'write ms':>10}{'read ms':>10}{'read MB/s':>11}")
    formats: dict[str, tuple[Callable[[pa.Table], bytes], Callable[[bytes], pa.Table]]] = {
        "arrow-ipc": (ipc_write, ipc_read),
        "ipc-lz4": (ipc_lz4_write, ipc_read),
        "parquet": (parquet_write, parquet_read),
    }
    summary: dict[str, dict[str, float]] = {}
    for fmt, (write, read) in formats.items():
        files = {name: write(t) for name, t in parts.items()}
        for name, data in files.items():
            assert read(data).equals(parts[name]), f"{fmt} round trip of {name} changed the column"
        total = {"MB": 0.0, "write": 0.0, "read": 0.0, "scalar_read": 0.0}
        for name, t in parts.items():
            data = files[name]
            w = best(partial(write, t), repeat)
            r = best(partial(read, data), repeat)
            mb = len(data) / 1e6
            total["MB"] += mb
            total["write"] += w
            total["read"] += r
            if name != VECTOR:
                total["scalar_read"] += r
            raw = parts[name].nbytes / 1e6
            print(f"{fmt:<10}{name:<8}{mb:>9.2f}{w * 1e3:>10.2f}{r * 1e3:>10.2f}{raw / r:>11.0f}")
        vec_data = files[VECTOR]
        total["matrix"] = best(partial(read_matrix, read, vec_data, dim), repeat)
        summary[fmt] = total
    print()
    print(
        f"{'format':<10}{'total MB':>9}{'write ms':>10}{'read ms':>10}{'scalars ms':>11}"
        f"{'vec->numpy ms':>15}{'write MB/s':>12}{'read MB/s':>11}"
    )
    raw_total = table.nbytes / 1e6
    for fmt, s in summary.items():
        print(
            f"{fmt:<10}{s['MB']:>9.2f}{s['write'] * 1e3:>10.1f}{s['read'] * 1e3:>10.1f}"
            f"{s['scalar_read'] * 1e3:>11.1f}{s['matrix'] * 1e3:>15.2f}"
            f"{raw_total / s['write']:>12.0f}{raw_total / s['read']:>11.0f}"
        )
    _ = DataType  # the column types above are those of schema/arrow.py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    run(a.rows, a.dim, a.repeat)


if __name__ == "__main__":
    main()
