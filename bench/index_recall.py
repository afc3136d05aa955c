"""Recall@10, build time and QPS of every Pelagos index type on clustered data.

Data: a seeded Gaussian mixture of ~1,000 anisotropic clusters (per-cluster
axis scales, log-uniform, under one of 16 random rotations), ROWS x DIM
float32, plus held-out queries from the same mixture; binary types use 128-bit
codes from random hyperplanes of the same data. Ground truth is exact
(BruteForceIndex); binary recall is tie-aware (a returned row counts when it
is at least as close as the true 10th).

For each type and each point of a small ef / nprobe sweep it reports recall@10,
QPS for single-query calls (the per-call overhead included) and for batches
of 100 queries, and for the faiss-backed types the single-query QPS of the
bare faiss index with the same parameters (the wrapper's overhead). A
filtered section repeats HNSW and IVF_FLAT with 10% and 50% of rows allowed.

Run: .venv/bin/python bench/index_recall.py [--rows 100000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.index import IndexSpec, SearchParams, VectorIndex, create_index, exact_index
from pelagos.index.faiss_api import faiss
from pelagos.index.threads import faiss_threads, max_threads, set_max_threads

K = 10
SINGLE_QUERIES = 200
BATCH = 100
BINARY_BITS = 128

FLOAT_CONFIGS: list[tuple[str, dict[str, int], str, list[int]]] = [
    ("FLAT", {}, "", [0]),
    ("IVF_FLAT", {"nlist": 1024}, "nprobe", [1, 4, 8, 16, 32, 64]),
    ("IVF_SQ8", {"nlist": 1024}, "nprobe", [1, 4, 8, 16, 32, 64]),
    ("IVF_PQ", {"nlist": 1024, "m": 32, "nbits": 8}, "nprobe", [1, 4, 8, 16, 32, 64]),
    ("HNSW", {"M": 16, "efConstruction": 200}, "ef", [16, 32, 64, 128, 256]),
    ("HNSW", {"M": 18, "efConstruction": 240}, "ef", [16, 32, 64, 128, 256]),
]
BINARY_CONFIGS: list[tuple[str, dict[str, int], str, list[int]]] = [
    ("BIN_FLAT", {}, "", [0]),
    ("BIN_IVF_FLAT", {"nlist": 1024}, "nprobe", [1, 8, 32, 128]),
]


def mixture(n: int, dim: int, clusters: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    scales = np.exp(rng.uniform(np.log(0.05), np.log(0.6), (clusters, dim)))
    rotations = [np.linalg.qr(rng.standard_normal((dim, dim)))[0] for _ in range(16)]
    rotation_of = rng.integers(0, len(rotations), clusters)
    label = rng.integers(0, clusters, n)
    noise = rng.standard_normal((n, dim)) * scales[label]
    out = np.empty((n, dim), dtype=np.float32)
    for r, rot in enumerate(rotations):
        rows = rotation_of[label] == r
        out[rows] = centres[label[rows]] + noise[rows] @ rot
    return out


def binarize(x: npt.NDArray[np.float32], bits: int, seed: int = 11) -> npt.NDArray[np.uint8]:
    planes = np.random.default_rng(seed).standard_normal((x.shape[1], bits)).astype(np.float32)
    return np.packbits((x @ planes > 0).astype(np.uint8), axis=1)


def recall_at_k(ids: npt.NDArray[np.int64], truth_ids: npt.NDArray[np.int64]) -> float:
    """Set recall@k against the exact ids (float data: ties are negligible)."""
    return float((ids[:, :, None] == truth_ids[:, None, :]).any(axis=2).mean())


def tie_aware_recall(
    ids: npt.NDArray[np.int64],
    q: npt.NDArray[np.uint8],
    x: npt.NDArray[np.uint8],
    kth: npt.NDArray[np.float32],
    metric: str,
) -> float:
    """Binary recall@k: a returned row counts when its true distance is no worse than the true k-th."""
    qbits = np.unpackbits(q, axis=1)[:, None, :].astype(bool)
    xbits = np.unpackbits(x[np.maximum(ids, 0)], axis=2).astype(bool)
    if metric == "HAMMING":
        dist = (qbits != xbits).sum(axis=2).astype(np.float64)
    else:
        inter = (qbits & xbits).sum(axis=2)
        union = (qbits | xbits).sum(axis=2)
        dist = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
    return float(((dist <= kth[:, None].astype(np.float64) + 1e-6) & (ids >= 0)).mean())


def qps(run: Callable[[], Any], queries: int) -> float:
    start = time.perf_counter()
    run()
    return queries / (time.perf_counter() - start)


def _single(
    index: VectorIndex, q: npt.NDArray[Any], params: SearchParams, allowed: npt.NDArray[np.bool_] | None
) -> Callable[[], None]:
    def run() -> None:
        for i in range(SINGLE_QUERIES):
            index.search(q[i : i + 1], K, params, allowed)

    return run


def _batches(
    index: VectorIndex, q: npt.NDArray[Any], params: SearchParams, allowed: npt.NDArray[np.bool_] | None
) -> Callable[[], None]:
    def run() -> None:
        for i in range(0, len(q), BATCH):
            index.search(q[i : i + BATCH], K, params, allowed)

    return run


def raw_params(index: VectorIndex, key: str, value: int) -> Any:
    if key == "ef":
        return faiss.SearchParametersHNSW(efSearch=value)
    if key == "nprobe":
        return faiss.SearchParametersIVF(nprobe=value)
    return None


def bench_config(
    index_type: str,
    build: dict[str, int],
    key: str,
    sweep: list[int],
    x: npt.NDArray[Any],
    q: npt.NDArray[Any],
    measure: Callable[[npt.NDArray[np.int64]], float],
    metric: str,
    binary: bool,
) -> list[str]:
    dim = x.shape[1] * (8 if binary else 1)
    spec = IndexSpec.parse(index_type, metric, build, dim, binary)
    index = create_index(spec)
    start = time.perf_counter()
    index.build(x)
    build_s = time.perf_counter() - start
    lines = []
    faiss_index = getattr(index, "_index", None)
    for value in sweep:
        params = SearchParams.parse({key: value} if key else {}, spec, K)
        ids = index.search(q, K, params)[1]
        single = qps(_single(index, q, params, None), SINGLE_QUERIES)
        batch = qps(_batches(index, q, params, None), len(q))
        raw = float("nan")
        if faiss_index is not None and not (binary and metric == "JACCARD"):
            rp = raw_params(index, key, value)
            qq = q
            if metric == "COSINE":
                qq = q / np.linalg.norm(q, axis=1, keepdims=True)

            def bare(rp: Any = rp, qq: Any = qq) -> None:
                with faiss_threads(1):
                    for i in range(SINGLE_QUERIES):
                        faiss_index.search(qq[i : i + 1], K, params=rp)

            raw = qps(bare, SINGLE_QUERIES)
        label = ",".join(f"{k}={v}" for k, v in build.items())
        lines.append(
            f"| {index_type} | {metric} | {label} | {build_s:.1f} | {key or '-'}={value if key else '-'} | "
            f"{measure(ids):.3f} | {single:,.0f} | {raw:,.0f} | {batch:,.0f} |"
        )
        print(lines[-1], flush=True)
    return lines


def bench_filtered(x: npt.NDArray[np.float32], q: npt.NDArray[np.float32], metric: str) -> None:
    print(
        "\n| type | metric | allowed | width | recall@10 (vs exact over allowed) | QPS 1-query | QPS batch 100 |"
    )
    print("|---|---|---|---|---|---|---|")
    oracle = exact_index(metric, x.shape[1])
    oracle.build(x)
    rng = np.random.default_rng(5)
    for index_type, build, key, value in (
        ("HNSW", {"M": 18, "efConstruction": 240}, "ef", 64),
        ("IVF_FLAT", {"nlist": 1024}, "nprobe", 16),
    ):
        spec = IndexSpec.parse(index_type, metric, build, x.shape[1], False)
        index = create_index(spec)
        index.build(x)
        params = SearchParams.parse({key: value}, spec, K)
        for fraction in (1.0, 0.5, 0.1, 0.01):
            allowed = None if fraction == 1.0 else rng.random(len(x)) < fraction
            truth = oracle.search(q, K, allowed=allowed)[1]
            ids = index.search(q, K, params, allowed=allowed)[1]
            rec = recall_at_k(ids, truth)
            single = qps(_single(index, q, params, allowed), SINGLE_QUERIES)
            batch = qps(_batches(index, q, params, allowed), len(q))
            print(
                f"| {index_type} | {metric} | {fraction:.0%} | {key}={value} | {rec:.3f} | {single:,.0f} | {batch:,.0f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-binary", action="store_true")
    parser.add_argument("--skip-filtered", action="store_true")
    parser.add_argument("--metric", default="L2", choices=["L2", "IP", "COSINE"])
    parser.add_argument("--threads", type=int, default=None, help="cap faiss threads per call")
    args = parser.parse_args()
    if args.threads:
        set_max_threads(args.threads)
    print(f"cores: {os.cpu_count()}, faiss threads per batch call: {max_threads()}, load: {os.getloadavg()}")

    both = mixture(args.rows + args.queries, args.dim, args.clusters, seed=2024)
    x, q = both[: args.rows], both[args.rows :]
    print(f"data: {args.rows} x {args.dim} float32, {args.clusters} clusters, {args.queries} queries, k={K}")
    start = time.perf_counter()
    oracle = exact_index(args.metric, args.dim)
    oracle.build(x)
    truth = oracle.search(q, K)[1]
    print(f"ground truth (BruteForceIndex, {args.metric}): {time.perf_counter() - start:.1f} s\n")

    print(
        "| type | metric | build params | build s | search | recall@10 | QPS 1-query | bare faiss 1-query | QPS batch 100 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for index_type, build, key, sweep in FLOAT_CONFIGS:
        bench_config(
            index_type, build, key, sweep, x, q, lambda ids: recall_at_k(ids, truth), args.metric, False
        )
    if not args.skip_binary:
        xb, qb = binarize(x, BINARY_BITS), binarize(q, BINARY_BITS)
        for metric in ("HAMMING", "JACCARD"):
            boracle = exact_index(metric, BINARY_BITS)
            boracle.build(xb)
            kth = boracle.search(qb, K)[0][:, -1]

            def measure(
                ids: npt.NDArray[np.int64], kth: npt.NDArray[np.float32] = kth, m: str = metric
            ) -> float:
                return tie_aware_recall(ids, qb, xb, kth, m)

            for index_type, build, key, sweep in BINARY_CONFIGS:
                bench_config(index_type, build, key, sweep, xb, qb, measure, metric, True)
    if not args.skip_filtered:
        bench_filtered(x, q, args.metric)


if __name__ == "__main__":
    main()
