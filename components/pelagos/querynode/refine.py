"""Re-scoring the candidates of a quantised index (IVF_SQ8, IVF_PQ) with the segment's raw vectors.

A query node holds every column of the segments it serves, vectors included,
so the approximate distances of a quantised index can be replaced by exact
ones at the cost of a few dot products per candidate.

Invariants:
- Top-k: the index is asked for REFINE_FACTOR * k candidates, which are
  re-scored exactly and cut to the best k; every reported score is the true
  score of its row (as for FLAT, IVF_FLAT and HNSW).
- Range search: candidates the index found in range are re-scored and kept
  only if their true score is in range, so no hit violates the range.
- Candidate blocks are scored at most BLOCK_FLOATS floats at a time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.results import RangeResult, TopK, in_range, pad_missing

REFINE_FACTOR = 2
QUANTIZED = frozenset({IndexType.IVF_SQ8, IndexType.IVF_PQ})
BLOCK_FLOATS = 1 << 24


def needs_refine(index_type: IndexType) -> bool:
    return index_type in QUANTIZED


def pair_scores(
    queries: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    qidx: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    metric: MetricType,
) -> npt.NDArray[np.float32]:
    """The exact score of each (query qidx[i], row rows[i]) pair (COSINE: both already unit length)."""
    out = np.empty(len(rows), dtype=np.float32)
    step = max(1, BLOCK_FLOATS // max(1, vectors.shape[1]))
    for lo in range(0, len(rows), step):
        q = queries[qidx[lo : lo + step]]
        x = vectors[rows[lo : lo + step]]
        if metric is MetricType.L2:
            d = q - x
            out[lo : lo + step] = np.einsum("ij,ij->i", d, d)
        else:
            out[lo : lo + step] = np.einsum("ij,ij->i", q, x)
    return out


def refine_topk(
    candidates: TopK,
    queries: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    k: int,
    metric: MetricType,
) -> TopK:
    """The best k of the candidates by exact score."""
    _, ids = candidates
    nq, width = ids.shape
    valid = ids >= 0
    qidx = np.repeat(np.arange(nq, dtype=np.int64), width)
    scores = np.full(nq * width, metric.pad_score, dtype=np.float32)
    flat_ids = ids.reshape(-1)
    ok = valid.reshape(-1)
    scores[ok] = pair_scores(queries, vectors, qidx[ok], flat_ids[ok], metric)
    scores2 = scores.reshape(nq, width)
    keys = metric.sort_key(scores2)
    order = np.lexsort((np.where(valid, ids, np.iinfo(np.int64).max), keys), axis=1)[:, :k]
    top_scores = np.take_along_axis(scores2, order, axis=1)
    top_ids = np.take_along_axis(ids, order, axis=1)
    if top_ids.shape[1] < k:
        pad = k - top_ids.shape[1]
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=metric.pad_score)
        top_ids = np.pad(top_ids, ((0, 0), (0, pad)), constant_values=-1)
    return pad_missing(top_scores, top_ids, metric)


def refine_range(
    result: RangeResult,
    queries: npt.NDArray[np.float32],
    vectors: npt.NDArray[np.float32],
    radius: float,
    range_filter: float | None,
) -> RangeResult:
    """The candidates whose exact score is in range, re-sorted best first."""
    metric = result.metric
    qidx = np.repeat(np.arange(result.nq, dtype=np.int64), result.counts())
    scores = pair_scores(queries, vectors, qidx, result.ids, metric)
    keep = in_range(scores, radius, range_filter, metric)
    return RangeResult.from_triples(qidx[keep], scores[keep], result.ids[keep], result.nq, metric)
