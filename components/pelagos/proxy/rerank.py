"""Fusing the hit lists of a hybrid search into one ranking: RRF and weighted scores.

Invariants (Milvus's definitions):
- RRF: a hit's score is the sum over the lists that hold it of
  1 / (k + rank), rank counted from 1 within its query's list.
- Weighted: the sum of weight_i * s_i over the lists that hold it. With
  normalisation s_i maps every metric to [0, 1], larger is better: COSINE
  (1 + s) / 2, IP 1/2 + atan(s) / pi, distances (L2, HAMMING, JACCARD)
  1 - 2 atan(d) / pi. Without it, similarities are taken as they are and
  distances negated, so that larger is still better.
- The fused list of each query is ordered by fused score, larger first,
  equal scores by primary key; hits are identified by primary key, so a row
  found by several lists is one hit.
- Vectorised: one encode of (query, pk) pairs, one bincount, one sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.index.kinds import MetricType
from pelagos.interfaces.hit_keys import HitKeys, arrow_keys, key_ranks
from pelagos.interfaces.types import RankerSpec

Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class HitList:
    """One sub-search's hits, flat: query i owns topks[i] consecutive hits, best first."""

    topks: Ids
    pks: HitKeys
    scores: npt.NDArray[np.floating]
    metric: MetricType


@dataclass(slots=True)
class Fused:
    topks: Ids
    #: per fused hit: its index in the concatenation of the lists (its first occurrence)
    source: Ids
    scores: npt.NDArray[np.float32]


def normalized(scores: npt.NDArray[np.floating], metric: MetricType, normalize: bool) -> Floats:
    s = np.asarray(scores, dtype=np.float64)
    if not normalize:
        return s if metric.larger_is_better else -s
    if metric is MetricType.COSINE:
        return (1.0 + s) / 2.0
    if metric is MetricType.IP:
        return 0.5 + np.arctan(s) / np.pi
    return 1.0 - 2.0 * np.arctan(s) / np.pi


def _ranks(topks: Ids) -> Ids:
    """1-based rank of every hit within its query."""
    n = int(topks.sum())
    starts = np.repeat(np.cumsum(topks) - topks, topks)
    return np.arange(n, dtype=np.int64) - starts + 1


def fuse(lists: list[HitList], ranker: RankerSpec, nq: int, limit: int, offset: int) -> Fused:
    qidx = np.concatenate([np.repeat(np.arange(nq, dtype=np.int64), h.topks) for h in lists])
    if ranker.kind == "rrf":
        contrib = np.concatenate([1.0 / (ranker.k + _ranks(h.topks)) for h in lists])
    else:
        contrib = np.concatenate(
            [
                w * normalized(h.scores, h.metric, ranker.normalize)
                for w, h in zip(ranker.weights, lists, strict=True)
            ]
        )
    pks = pa.concat_arrays([arrow_keys(h.pks) for h in lists])
    if len(pks) == 0:
        return Fused(np.zeros(nq, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    encoded = pc.dictionary_encode(pks)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    pair = qidx * len(encoded.dictionary) + codes
    uniq, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    total = np.bincount(inverse.reshape(-1), weights=contrib, minlength=len(uniq))
    q_of = qidx[first]
    pk_rank = key_ranks(pks.take(pa.array(first)))
    order = np.lexsort((pk_rank, -total, q_of))
    q_sorted = q_of[order]
    starts = np.searchsorted(q_sorted, np.arange(nq))
    rank = np.arange(len(order)) - starts[q_sorted]
    chosen = order[(rank >= offset) & (rank < offset + limit)]
    return Fused(
        topks=np.bincount(q_of[chosen], minlength=nq).astype(np.int64),
        source=first[chosen].astype(np.int64),
        scores=total[chosen].astype(np.float32),
    )
