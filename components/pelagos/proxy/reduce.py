"""Merging the hits of several shards into the global top-k, vectorised."""

from __future__ import annotations

import numpy as np

SMALLER_IS_BETTER = {"L2", "HAMMING", "JACCARD"}


def larger_is_better(metric: str) -> bool:
    return metric.upper() not in SMALLER_IS_BETTER


def merge_hits(
    topks: list[np.ndarray], scores: list[np.ndarray], nq: int, limit: int, offset: int, larger_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pick, per query, hits offset..offset+limit of the union of the parts.

    Each part is flat: query i owns topks[i] consecutive hits. Returns the
    new topks and the indices of the chosen hits in the concatenation of the
    parts, grouped by query and best first.
    """
    if not topks:
        return np.zeros(nq, np.int64), np.zeros(0, np.int64)
    qidx = np.concatenate([np.repeat(np.arange(nq), t) for t in topks])
    s = np.concatenate(scores).astype(np.float64, copy=False)
    key = -s if larger_better else s
    order = np.lexsort((key, qidx))  # by query, then best first
    q_sorted = qidx[order]
    starts = np.searchsorted(q_sorted, np.arange(nq))
    rank = np.arange(len(order)) - starts[q_sorted]
    keep = (rank >= offset) & (rank < offset + limit)
    chosen = order[keep]
    new_topks = np.bincount(q_sorted[keep], minlength=nq).astype(np.int64)
    return new_topks, chosen
