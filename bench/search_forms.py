"""Recall@10 and single-thread QPS per index type, through pymilvus against `pelagos standalone`.

    python -m bench.search_forms [--n 50000] [--nq 200] [--segment-mb 8]

The data is bench/dataset.py's seeded Gaussian mixture (dim 128) with its
exact L2 ground truth; binary indexes search 256-bit codes of the same rows
(random hyperplanes) against exact Hamming. One collection, one shard,
sealed into segments of `--segment-mb`. For each index type the index is
built (timed from create_index until describe_index says Finished), the
collection loaded, and the held-out queries searched one request at a time
from one thread (QPS), then all in one request (batch QPS). Raw faiss with
the same parameters on all rows gives the reference recall.

Figures measured on the development container (2 cores, nothing else
running), n=50000, nq=200, dim 128, 8 MiB segments (~28 MB of rows: about 4),
2026-11-25. "faiss" is one raw faiss index over all rows with the same
parameters; binary recall is tie-aware (Hamming distances tie a lot).

    index         params                  build s  recall  faiss  QPS  batch QPS
    FLAT          -                           0.5   1.000  1.000  253       1798
    IVF_FLAT      nlist=256 nprobe=16         0.5   0.852  0.834  285       6636
    IVF_SQ8       nlist=256 nprobe=16         0.5   0.852  0.831  261       5445
    IVF_PQ        nlist=256 m=32 nprobe=16   27.7   0.852  0.698  256       5114
    HNSW          M=16 efC=200 ef=64          8.1   0.965  0.957  283       5853
    AUTOINDEX     (HNSW M=18 efC=240, ef 64)  9.6   0.972      -  285       5731
    BIN_FLAT      HAMMING                     0.5   1.000  1.000  312      13405
    BIN_IVF_FLAT  HAMMING nlist=256 nprobe=16 1.0   0.659  0.684  305      18635

Single-request QPS is bound by the round trip (about 3.5 ms per search from
pymilvus, whatever the index). IVF_SQ8 / IVF_PQ equal IVF_FLAT because their
candidates are re-scored with the raw vectors (querynode/refine.py).
BIN_IVF_FLAT is below one faiss index over everything because every segment
is clustered on its own (nlist=256 lists of ~60 rows instead of ~200): raw
faiss on the same 4-way split gives 0.671, and our index equals faiss
segment by segment (checked: 0.6845 vs 0.6845 unsplit, 0.671 vs 0.671 split).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pymilvus import DataType, MilvusClient

from bench.dataset import DatasetSpec, load_or_build
from bench.targets import pelagos_standalone, scratch_dir

K = 10
BITS = 256
FLOAT_CASES: list[tuple[str, dict[str, int], dict[str, int]]] = [
    ("FLAT", {}, {}),
    ("IVF_FLAT", {"nlist": 256}, {"nprobe": 16}),
    ("IVF_SQ8", {"nlist": 256}, {"nprobe": 16}),
    ("IVF_PQ", {"nlist": 256, "m": 32, "nbits": 8}, {"nprobe": 16}),
    ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 64}),
    ("AUTOINDEX", {}, {}),
]
BINARY_CASES: list[tuple[str, dict[str, int], dict[str, int]]] = [
    ("BIN_FLAT", {}, {}),
    ("BIN_IVF_FLAT", {"nlist": 256}, {"nprobe": 16}),
]


def binarize(x: np.ndarray) -> np.ndarray:
    planes = np.random.default_rng(7).standard_normal((x.shape[1], BITS)).astype(np.float32)
    return np.packbits((x @ planes > 0).astype(np.uint8), axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def tie_aware_recall(found: np.ndarray, dist: np.ndarray) -> float:
    """Share of returned rows at least as close as the true k-th (Hamming has many ties)."""
    kth = np.sort(dist, axis=1)[:, K - 1]
    good = [(dist[i, f[f >= 0]] <= kth[i]).sum() for i, f in enumerate(found)]
    return float(sum(good) / (len(found) * K))


def faiss_ids(
    index_type: str, build: dict[str, int], search: dict[str, int], x: np.ndarray, q: np.ndarray
) -> np.ndarray:
    d = x.shape[1]
    index: Any
    if index_type == "FLAT":
        index = faiss.IndexFlatL2(d)
    elif index_type == "HNSW":
        index = faiss.IndexHNSWFlat(d, build["M"])
        index.hnsw.efConstruction = build["efConstruction"]
        index.hnsw.efSearch = search["ef"]
    elif index_type == "BIN_FLAT":
        index = faiss.IndexBinaryFlat(d * 8)
    elif index_type == "BIN_IVF_FLAT":
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(d * 8), d * 8, build["nlist"])
        index.train(x)
        index.nprobe = search["nprobe"]
    else:
        quantizer = faiss.IndexFlatL2(d)
        if index_type == "IVF_FLAT":
            index = faiss.IndexIVFFlat(quantizer, d, build["nlist"])
        elif index_type == "IVF_SQ8":
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, build["nlist"], faiss.ScalarQuantizer.QT_8bit)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, build["nlist"], build["m"], build["nbits"])
        index.train(x)
        index.nprobe = search["nprobe"]
    index.add(x)
    return np.asarray(index.search(q, K)[1])


def run_case(
    c: MilvusClient,
    name: str,
    field: str,
    metric: str,
    case: tuple[str, dict[str, int], dict[str, int]],
    queries: list[Any],
) -> tuple[float, np.ndarray, float, float]:
    index_type, build, search = case
    c.release_collection(name)
    for existing in c.list_indexes(name):
        c.drop_index(name, existing)
    params = c.prepare_index_params()
    params.add_index(field, index_type=index_type, metric_type=metric, **build)
    started = time.perf_counter()
    c.create_index(name, params)
    while c.describe_index(name, field)["state"] != "Finished":
        time.sleep(0.05)
    build_s = time.perf_counter() - started
    c.load_collection(name)
    sp = {"metric_type": metric, "params": search}
    c.search(name, data=queries[:1], anns_field=field, limit=K, search_params=sp)  # warm up
    ids = np.full((len(queries), K), -1, dtype=np.int64)
    started = time.perf_counter()
    for i, q in enumerate(queries):
        hits = c.search(name, data=[q], anns_field=field, limit=K, search_params=sp)[0]
        ids[i, : len(hits)] = [h["id"] for h in hits]
    qps = len(queries) / (time.perf_counter() - started)
    started = time.perf_counter()
    c.search(name, data=queries, anns_field=field, limit=K, search_params=sp)
    batch_qps = len(queries) / (time.perf_counter() - started)
    return build_s, ids, qps, batch_qps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--segment-mb", type=int, default=8)
    args = ap.parse_args()
    data, _ = load_or_build(DatasetSpec(n=args.n, nq=args.nq), Path(__file__).resolve().parent / ".cache")
    x, q = data.vectors, data.queries
    xb, qb = binarize(x), binarize(q)
    os.environ["PELAGOS_DATASET__SEGMENT_MAX_BYTES"] = str(args.segment_mb * 1024 * 1024)
    with scratch_dir() as work, pelagos_standalone(work) as endpoint:
        c = MilvusClient(uri=endpoint.uri, timeout=600)
        name = "search_forms"
        schema = MilvusClient.create_schema(enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=x.shape[1])
        schema.add_field("b", DataType.BINARY_VECTOR, dim=BITS)
        c.create_collection(name, schema=schema, consistency_level="Strong")
        for lo in range(0, len(x), 5000):
            hi = min(len(x), lo + 5000)
            c.insert(name, [{"id": i, "v": x[i], "b": xb[i].tobytes()} for i in range(lo, hi)])
        c.flush(name)
        hamming = np.unpackbits(qb[:, None, :] ^ xb[None, :, :], axis=2).sum(axis=2)
        print(f"{'index':13s} {'build s':>8s} {'recall':>7s} {'faiss':>7s} {'QPS':>7s} {'batch':>7s}")
        for case in FLOAT_CASES:
            build_s, ids, qps, batch = run_case(c, name, "v", "L2", case, q.tolist())
            ours = recall(ids, data.truth[:, :K])
            raw = (
                "-" if case[0] == "AUTOINDEX" else f"{recall(faiss_ids(*case, x, q), data.truth[:, :K]):.3f}"
            )
            print(f"{case[0]:13s} {build_s:8.1f} {ours:7.3f} {raw:>7s} {qps:7.0f} {batch:7.0f}", flush=True)
        for case in BINARY_CASES:
            build_s, ids, qps, batch = run_case(c, name, "b", "HAMMING", case, [r.tobytes() for r in qb])
            ours = tie_aware_recall(ids, hamming)
            raw_b = tie_aware_recall(faiss_ids(*case, xb, qb), hamming)
            print(
                f"{case[0]:13s} {build_s:8.1f} {ours:7.3f} {raw_b:7.3f} {qps:7.0f} {batch:7.0f}", flush=True
            )
        c.drop_collection(name)
        c.close()


if __name__ == "__main__":
    main()
