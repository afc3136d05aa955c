"""Result shapes and the vectorised top-k kernels every index shares.

Invariants:
- A top-k result is a pair (scores float32 (nq, k), ids int64 (nq, k)), each
  row sorted best first; a missing slot has id -1 and the metric's pad score
  (+inf for distances, -inf for similarities). Equal scores are ordered by
  smaller id.
- A range result is CSR: `lims` (nq + 1,) int64 offsets into flat `scores`
  (float32) and `ids` (int64); query i owns [lims[i], lims[i+1]), sorted
  best first. `result[i]` gives that (scores, ids) pair.
- No kernel here loops over rows or queries in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pelagos.index.faiss_api import faiss
from pelagos.index.kinds import MetricType

Scores = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]
TopK = tuple[Scores, Ids]


def padded(nq: int, k: int, metric: MetricType) -> TopK:
    """An all-missing top-k result."""
    return np.full((nq, k), metric.pad_score, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def pad_missing(scores: npt.NDArray[np.generic], ids: npt.NDArray[np.generic], metric: MetricType) -> TopK:
    """Normalise a faiss result: float32 scores, int64 ids, pad score where the id is -1."""
    out_scores: Scores = scores if scores.dtype == np.float32 else scores.astype(np.float32)  # type: ignore[assignment]
    out_ids: Ids = ids if ids.dtype == np.int64 else ids.astype(np.int64)  # type: ignore[assignment]
    if out_ids.size and out_ids.min() < 0:  # one reduction: most results are full
        out_scores = out_scores.copy()
        out_scores[out_ids < 0] = metric.pad_score
    return out_scores, out_ids


def smallest_k(keys: npt.NDArray[np.float64], k: int, tiebreak: npt.NDArray[np.int64] | None = None) -> Ids:
    """Column indices of the k smallest keys of each row, sorted ascending.

    Among the chosen columns ties go to the smaller tiebreak; which of several columns tied at the
    k-th key is chosen is argpartition's (deterministic) choice.

    Returns (nq, min(k, ncols)). `tiebreak` (same shape as keys) defaults to the column index.
    """
    nq, ncols = keys.shape
    take = min(k, ncols)
    if take == 0:
        return np.empty((nq, 0), dtype=np.int64)
    if take < ncols:
        part = np.argpartition(keys, take - 1, axis=1)[:, :take]
    else:
        part = np.broadcast_to(np.arange(ncols, dtype=np.int64), (nq, ncols))
    sub = np.take_along_axis(keys, part, axis=1)
    second = part if tiebreak is None else np.take_along_axis(tiebreak, part, axis=1)
    order = np.lexsort((second, sub), axis=1)[:, :take]
    return np.take_along_axis(part, order, axis=1).astype(np.int64, copy=False)


def topk_from_matrix(
    scores: npt.NDArray[np.floating], k: int, metric: MetricType, row_ids: Ids | None = None
) -> TopK:
    """Top-k of a dense (nq, n) score matrix; ids are column indices, or row_ids[column]."""
    nq, n = scores.shape
    out_scores, out_ids = padded(nq, k, metric)
    if n == 0 or nq == 0:
        return out_scores, out_ids
    if scores.dtype == np.float32 and bool(np.isfinite(scores).all()):
        # faiss's heaps select in C++: (100, 42k) scores in ~1.4 ms where argpartition took ~56;
        # rows come back sorted, ties to the smaller column, as below
        take = min(k, n)
        select = faiss.kmax if metric.larger_is_better else faiss.kmin
        chosen, cols = select(np.ascontiguousarray(scores), take)
        out_scores[:, :take] = chosen
        out_ids[:, :take] = cols if row_ids is None else row_ids[cols]
        return out_scores, out_ids
    keys = metric.sort_key(scores)
    cols = smallest_k(keys, k)
    chosen = np.take_along_axis(keys, cols, axis=1)
    valid = np.isfinite(chosen)
    width = cols.shape[1]
    out_scores[:, :width] = np.where(valid, np.take_along_axis(scores, cols, axis=1), metric.pad_score)
    ids = cols if row_ids is None else row_ids[cols]
    out_ids[:, :width] = np.where(valid, ids, -1)
    return out_scores, out_ids


def merge_topk(a: TopK, b: TopK, k: int, metric: MetricType) -> TopK:
    """Merge two top-k results over disjoint id sets (ties: smaller id first)."""
    scores = np.concatenate([a[0], b[0]], axis=1)
    ids = np.concatenate([a[1], b[1]], axis=1)
    keys = metric.sort_key(scores)
    tiebreak = np.where(ids < 0, np.iinfo(np.int64).max, ids)
    cols = smallest_k(keys, k, tiebreak=tiebreak)
    return pad_missing(
        np.take_along_axis(scores, cols, axis=1), np.take_along_axis(ids, cols, axis=1), metric
    )


def grouped_topk(
    qidx: Ids, scores: npt.NDArray[np.floating], ids: Ids, nq: int, k: int, metric: MetricType
) -> TopK:
    """Top-k per query from flat (query, score, id) triples (any order, any count per query)."""
    out_scores, out_ids = padded(nq, k, metric)
    if len(qidx) == 0:
        return out_scores, out_ids
    keys = metric.sort_key(scores)
    order = np.lexsort((ids, keys, qidx))
    q_sorted = qidx[order]
    starts = np.searchsorted(q_sorted, np.arange(nq), side="left")
    rank = np.arange(len(order)) - starts[q_sorted]
    keep = (rank < k) & np.isfinite(keys[order])
    rows, cols = q_sorted[keep], rank[keep]
    out_scores[rows, cols] = np.asarray(scores, dtype=np.float32)[order][keep]
    out_ids[rows, cols] = ids[order][keep]
    return out_scores, out_ids


@dataclass(frozen=True, slots=True)
class RangeResult:
    lims: Ids
    scores: Scores
    ids: Ids
    metric: MetricType

    @property
    def nq(self) -> int:
        return len(self.lims) - 1

    def __len__(self) -> int:
        return self.nq

    def __getitem__(self, i: int) -> TopK:
        lo, hi = int(self.lims[i]), int(self.lims[i + 1])
        return self.scores[lo:hi], self.ids[lo:hi]

    def __iter__(self) -> Iterator[TopK]:
        return (self[i] for i in range(self.nq))

    def counts(self) -> Ids:
        return np.diff(self.lims)

    def topk(self, k: int) -> TopK:
        """The first k results per query as a padded top-k result (ready for reduce_topk)."""
        qidx = np.repeat(np.arange(self.nq, dtype=np.int64), self.counts())
        rank = np.arange(len(self.ids)) - self.lims[qidx]
        keep = rank < k
        out_scores, out_ids = padded(self.nq, k, self.metric)
        out_scores[qidx[keep], rank[keep]] = self.scores[keep]
        out_ids[qidx[keep], rank[keep]] = self.ids[keep]
        return out_scores, out_ids

    @classmethod
    def empty(cls, nq: int, metric: MetricType) -> RangeResult:
        return cls(
            np.zeros(nq + 1, dtype=np.int64),
            np.empty(0, dtype=np.float32),
            np.empty(0, dtype=np.int64),
            metric,
        )

    @classmethod
    def from_triples(
        cls, qidx: Ids, scores: npt.NDArray[np.floating], ids: Ids, nq: int, metric: MetricType
    ) -> RangeResult:
        """CSR from flat (query, score, id) triples in any order; sorts each query best first."""
        keys = metric.sort_key(scores)
        order = np.lexsort((ids, keys, qidx))
        lims = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(np.bincount(qidx, minlength=nq), out=lims[1:])
        return cls(lims, np.asarray(scores, dtype=np.float32)[order], ids[order].astype(np.int64), metric)


def in_range(
    scores: npt.NDArray[np.floating], radius: float, range_filter: float | None, metric: MetricType
) -> npt.NDArray[np.bool_]:
    """Milvus range semantics.

    Distances: range_filter <= d < radius; similarities: radius < s <= range_filter.
    """
    if metric.larger_is_better:
        mask = scores > radius
        if range_filter is not None:
            mask &= scores <= range_filter
    else:
        mask = scores < radius
        if range_filter is not None:
            mask &= scores >= range_filter
    return np.asarray(mask, dtype=np.bool_)
