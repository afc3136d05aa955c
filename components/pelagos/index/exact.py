"""Exact scoring: dense kernels for every metric, blocked to bound memory.

Invariants:
- Float inputs are float32 (n, dim); COSINE data and queries are normalised
  by the caller (`normalize_rows`) and scored as IP. L2 is squared and
  clipped at 0 (the GEMM expansion |q|^2 + |x|^2 - 2 q.x can dip below).
- Float blocks are scored by numpy (BLAS GEMM), except a few queries without a
  mask, which faiss's SIMD scan scores (exact too: squared L2 summed directly).
- Binary inputs are uint8 (n, dim / 8), bits packed big-endian per byte as
  numpy's packbits and Milvus do. Hamming distances of a block come from
  faiss's raw `hammings` popcount kernel (not from any faiss index), those
  of candidate pairs from numpy popcounts. Jaccard distance is derived
  exactly from integers: H / |a | b| with |a | b| = (|a| + |b| + H) / 2, so
  both paths give bit-identical values; two empty vectors are at 0.
  Jaccard stays float64 until results are written (float32), so range
  bounds such as 0.4 are applied to the exact value, not a rounded one.
- A dense block never holds more than BLOCK_SCORES scores, whatever nq and n are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.index.faiss_api import faiss
from pelagos.index.kinds import MetricType
from pelagos.index.results import (
    Ids,
    RangeResult,
    TopK,
    in_range,
    merge_topk,
    pad_missing,
    padded,
    topk_from_matrix,
)
from pelagos.index.threads import faiss_threads, threads_for_search, use_faiss_threads

BLOCK_SCORES = 1 << 22
QUERY_CHUNK = 1024
#: below this many queries, float rows are scanned by faiss's SIMD kernel: a numpy GEMV with its
#: norms took 450 us for 10k x 128 rows, faiss 175 us (at 20 and more faiss switches to BLAS too)
FAISS_SCAN_MAX_NQ = 20
#: from this many queries on, a block's scores come from one GEMM laid out (queries, rows)
GEMM_MIN_NQ = 8
_FAISS_METRICS = {
    MetricType.L2: faiss.METRIC_L2,
    MetricType.IP: faiss.METRIC_INNER_PRODUCT,
    MetricType.COSINE: faiss.METRIC_INNER_PRODUCT,  # rows and queries are normalised by the caller
}

Floats = npt.NDArray[np.float32]
#: float32, except Jaccard kept in float64 so range bounds are applied before rounding
Scored = npt.NDArray[np.floating[Any]]
Codes = npt.NDArray[np.uint8]

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def normalize_rows(x: Floats) -> Floats:
    """Rows scaled to unit L2 norm (zero rows stay zero); always a new array."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: Floats = np.zeros_like(x, dtype=np.float32)
    np.divide(x, norms, out=out, where=norms > 0)
    return out


def popcount_rows(codes: Codes) -> npt.NDArray[np.int64]:
    """Number of set bits in each row of a packed uint8 matrix."""
    width = codes.shape[1]
    if hasattr(np, "bitwise_count"):
        words = codes.view(np.uint64) if width % 8 == 0 and codes.flags.c_contiguous else codes
        return np.bitwise_count(words).sum(axis=1, dtype=np.int64)  # type: ignore[no-any-return]
    return _POPCOUNT8[codes].sum(axis=1, dtype=np.int64)  # type: ignore[no-any-return]


def pair_scores(q_codes: Codes, x_codes: Codes, metric: MetricType) -> Scored:
    """Hamming or Jaccard distance of row i of q_codes to row i of x_codes."""
    hamming = popcount_rows(np.bitwise_xor(q_codes, x_codes))
    if metric is MetricType.HAMMING:
        return hamming.astype(np.float32)
    return jaccard_from_hamming(hamming, popcount_rows(q_codes), popcount_rows(x_codes))


def jaccard_from_hamming(
    hamming: npt.NDArray[np.integer[Any]],
    pop_a: npt.NDArray[np.integer[Any]],
    pop_b: npt.NDArray[np.integer[Any]],
) -> npt.NDArray[np.float64]:
    """Exact Jaccard distance 1 - |a & b| / |a | b| = 2H / (|a| + |b| + H), broadcasting; 0 when both are empty."""
    h = np.asarray(hamming, dtype=np.float64)
    twice_union = np.asarray(pop_a, dtype=np.float64) + np.asarray(pop_b, dtype=np.float64) + h
    out: npt.NDArray[np.float64] = np.zeros(np.broadcast(h, twice_union).shape, dtype=np.float64)
    np.divide(2.0 * h, twice_union, out=out, where=twice_union > 0)
    return out


class _Queries:
    """Queries prepared once for block scoring."""

    def __init__(self, queries: npt.NDArray[np.generic], metric: MetricType) -> None:
        self.metric = metric
        if metric.for_binary:
            self.codes = np.ascontiguousarray(queries, dtype=np.uint8)
            self.pop = popcount_rows(self.codes)
        else:
            self.vectors = np.asarray(queries, dtype=np.float32)
            self.sq = (self.vectors.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)

    def score(self, block: npt.NDArray[np.generic]) -> Scored:
        m = self.metric
        if m.for_binary:
            codes = np.ascontiguousarray(block, dtype=np.uint8)
            nq, (c, width) = len(self.codes), codes.shape
            hamming = np.empty((nq, c), dtype=np.int32)
            with faiss_threads(threads_for_search(nq)):
                faiss.hammings(
                    faiss.swig_ptr(self.codes), faiss.swig_ptr(codes), nq, c, width, faiss.swig_ptr(hamming)
                )
            if m is MetricType.HAMMING:
                return hamming.astype(np.float32)
            return jaccard_from_hamming(hamming, self.pop[:, None], popcount_rows(codes)[None, :])
        x = np.asarray(block, dtype=np.float32)
        # Few queries: (x @ q.T).T, so BLAS runs a GEMV over contiguous rows (measured 20x faster for
        # one query against 10,000 x 128). More: q @ x.T, a GEMM whose (nq, rows) result is
        # contiguous, so the L2 terms are added in place (100 x 42k: 29 -> ~12 ms a block).
        few = len(self.vectors) < GEMM_MIN_NQ
        dots = (x @ self.vectors.T).T if few else self.vectors @ x.T
        if m is MetricType.L2:
            xsq = np.einsum("ij,ij->i", x, x, dtype=np.float32)
            if few:
                d: Floats = self.sq[:, None] + xsq[None, :] - 2.0 * dots
            else:
                d = dots
                d *= -2.0
                d += xsq[None, :]
                d += self.sq[:, None]
            np.maximum(d, 0.0, out=d)
            return d
        out: Floats = dots.astype(np.float32, copy=False)
        return out


def _block_rows(nq: int) -> int:
    return max(256, BLOCK_SCORES // max(1, nq))


def exact_knn(
    queries: npt.NDArray[np.generic],
    data: npt.NDArray[np.generic],
    k: int,
    metric: MetricType,
    row_ids: Ids | None = None,
    mask: npt.NDArray[np.bool_] | None = None,
) -> TopK:
    """Exact top-k of queries against data rows.

    Ids are data row numbers, or `row_ids[row]` when given (data is then a gathered subset).
    Rows where `mask` is False are never returned.
    """
    nq, n = len(queries), len(data)
    result = padded(nq, k, metric)
    if nq == 0 or n == 0:
        return result
    if mask is None and nq < FAISS_SCAN_MAX_NQ and metric in _FAISS_METRICS and data.dtype == np.float32:
        return _faiss_scan(queries, data, k, metric, row_ids)
    if nq > QUERY_CHUNK:
        parts = [
            exact_knn(queries[i : i + QUERY_CHUNK], data, k, metric, row_ids, mask)
            for i in range(0, nq, QUERY_CHUNK)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    prepared = _Queries(queries, metric)
    step = _block_rows(nq)
    ids_all = np.arange(n, dtype=np.int64) if row_ids is None else row_ids
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        scores = prepared.score(data[lo:hi])
        if mask is not None:
            scores[:, ~mask[lo:hi]] = metric.pad_score
        block = topk_from_matrix(scores, k, metric, row_ids=ids_all[lo:hi])
        result = block if lo == 0 else merge_topk(result, block, k, metric)
    return result


def _faiss_scan(
    queries: npt.NDArray[np.generic],
    data: npt.NDArray[np.generic],
    k: int,
    metric: MetricType,
    row_ids: Ids | None,
) -> TopK:
    """A few float queries scored by faiss's SIMD scan (no GEMV, no norms to compute)."""
    use_faiss_threads(1)
    scores, ids = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(data),
        k,
        metric=_FAISS_METRICS[metric],
    )
    scores, ids = pad_missing(scores, ids, metric)
    if row_ids is not None:
        ids = np.where(ids >= 0, row_ids[np.maximum(ids, 0)], -1)
    return scores, ids


def exact_range(
    queries: npt.NDArray[np.generic],
    data: npt.NDArray[np.generic],
    metric: MetricType,
    radius: float,
    range_filter: float | None,
    row_ids: Ids | None = None,
    mask: npt.NDArray[np.bool_] | None = None,
) -> RangeResult:
    """Exact range search (Milvus semantics, see results.in_range)."""
    nq, n = len(queries), len(data)
    if nq == 0 or n == 0:
        return RangeResult.empty(nq, metric)
    ids_all = np.arange(n, dtype=np.int64) if row_ids is None else row_ids
    qs: list[Ids] = []
    ss: list[Scored] = []
    rs: list[Ids] = []
    for q0 in range(0, nq, QUERY_CHUNK):
        chunk = queries[q0 : q0 + QUERY_CHUNK]
        prepared = _Queries(chunk, metric)
        step = _block_rows(len(chunk))
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            scores = prepared.score(data[lo:hi])
            hit = in_range(scores, radius, range_filter, metric)
            if mask is not None:
                hit &= mask[lo:hi][None, :]
            qi, ci = np.nonzero(hit)
            qs.append(qi.astype(np.int64) + q0)
            ss.append(scores[qi, ci])
            rs.append(ids_all[lo:hi][ci])
    return RangeResult.from_triples(np.concatenate(qs), np.concatenate(ss), np.concatenate(rs), nq, metric)
