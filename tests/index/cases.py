"""The index configurations the tests exercise, and raw faiss built the same way as the baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.index import IndexSpec, SearchParams, VectorIndex, create_index
from pelagos.index.faiss_api import faiss
from pelagos.index.threads import faiss_threads

FLOAT_METRICS = ("L2", "IP", "COSINE")
BINARY_METRICS = ("HAMMING", "JACCARD")

#: (index type, build params, search params)
FLOAT_CASES: list[tuple[str, dict[str, int], dict[str, int]]] = [
    ("FLAT", {}, {}),
    ("IVF_FLAT", {"nlist": 64}, {"nprobe": 8}),
    ("IVF_SQ8", {"nlist": 64}, {"nprobe": 8}),
    ("IVF_PQ", {"nlist": 64, "m": 8, "nbits": 8}, {"nprobe": 8}),
    ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 32}),
]
BINARY_CASES: list[tuple[str, dict[str, int], dict[str, int]]] = [
    ("BIN_FLAT", {}, {}),
    ("BIN_IVF_FLAT", {"nlist": 64}, {"nprobe": 8}),
]
ALL_CASES = [(t, m, b, s) for t, b, s in FLOAT_CASES for m in FLOAT_METRICS] + [
    (t, m, b, s) for t, b, s in BINARY_CASES for m in BINARY_METRICS
]

_built: dict[tuple[str, str], VectorIndex] = {}


def build(index_type: str, metric: str, params: dict[str, int], data: npt.NDArray[Any]) -> VectorIndex:
    """Our index, built once per (type, metric) and shared by the tests (searches never mutate it)."""
    key = (index_type, metric)
    if key not in _built:
        binary = data.dtype == np.uint8
        spec = IndexSpec.parse(index_type, metric, params, data.shape[1] * (8 if binary else 1), binary)
        index = create_index(spec)
        index.build(data)
        _built[key] = index
    return _built[key]


def search_params(index: VectorIndex, params: dict[str, int]) -> SearchParams:
    return SearchParams.parse(params, index.spec, 10)


def raw_faiss_search(
    index_type: str,
    metric: str,
    build_params: dict[str, int],
    search: dict[str, int],
    x: npt.NDArray[Any],
    q: npt.NDArray[Any],
    k: int,
) -> npt.NDArray[np.int64]:
    """Ids from faiss used directly with the same parameters (COSINE: normalise, then IP)."""
    with faiss_threads(1):
        if index_type.startswith("BIN_"):
            d = x.shape[1] * 8
            if index_type == "BIN_FLAT":
                bindex = faiss.IndexBinaryFlat(d)
            else:
                bindex = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(d), d, build_params["nlist"])
                bindex.cp.min_points_per_centroid = 1  # only the warning threshold
                bindex.train(x)
                bindex.nprobe = search["nprobe"]
            bindex.add(x)
            return np.asarray(bindex.search(q, k)[1])
        d = x.shape[1]
        if metric == "COSINE":
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        fm = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
        index: Any
        if index_type == "FLAT":
            index = faiss.IndexFlat(d, fm)
        elif index_type == "HNSW":
            index = faiss.IndexHNSWFlat(d, build_params["M"], fm)
            index.hnsw.efConstruction = build_params["efConstruction"]
            index.hnsw.efSearch = search["ef"]
        else:
            quantizer = faiss.IndexFlat(d, fm)
            nlist = build_params["nlist"]
            if index_type == "IVF_FLAT":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, fm)
            elif index_type == "IVF_SQ8":
                index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, fm)
            else:
                index = faiss.IndexIVFPQ(quantizer, d, nlist, build_params["m"], build_params["nbits"], fm)
                index.pq.cp.min_points_per_centroid = 1  # only the warning threshold
            index.cp.min_points_per_centroid = 1
            index.train(x)
            index.nprobe = search["nprobe"]
        index.add(x)
        return np.asarray(index.search(q, k)[1])
