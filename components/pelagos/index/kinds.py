"""Index types and metric types, with the facts every other index module needs.

Invariants:
- Scores are reported as Milvus reports them: L2 is the *squared* Euclidean
  distance, IP and COSINE are similarities, HAMMING is the number of
  differing bits, JACCARD is 1 - |a & b| / |a | b| (0 when both are empty).
- `MetricType.larger_is_better` is the single source of the sort direction;
  `sort_key` turns any score array into one where smaller is better.
- A missing result slot carries id -1 and `MetricType.pad_score` (+inf for
  distances, -inf for similarities), so it always sorts last.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt


class MetricType(enum.StrEnum):
    L2 = "L2"
    IP = "IP"
    COSINE = "COSINE"
    HAMMING = "HAMMING"
    JACCARD = "JACCARD"

    @property
    def larger_is_better(self) -> bool:
        return self in (MetricType.IP, MetricType.COSINE)

    @property
    def for_binary(self) -> bool:
        return self in (MetricType.HAMMING, MetricType.JACCARD)

    @property
    def pad_score(self) -> float:
        return float("-inf") if self.larger_is_better else float("inf")

    def sort_key(self, scores: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Scores mapped so that smaller is better and missing (non-finite or NaN) sorts last."""
        key = np.asarray(scores, dtype=np.float64)
        key = -key if self.larger_is_better else key.copy()
        key[~np.isfinite(key)] = np.inf
        return key

    @classmethod
    def of(cls, value: str | MetricType) -> MetricType:
        return value if isinstance(value, MetricType) else cls(str(value).upper())


class IndexType(enum.StrEnum):
    FLAT = "FLAT"
    IVF_FLAT = "IVF_FLAT"
    IVF_SQ8 = "IVF_SQ8"
    IVF_PQ = "IVF_PQ"
    HNSW = "HNSW"
    BIN_FLAT = "BIN_FLAT"
    BIN_IVF_FLAT = "BIN_IVF_FLAT"

    @property
    def for_binary(self) -> bool:
        return self in (IndexType.BIN_FLAT, IndexType.BIN_IVF_FLAT)

    @property
    def is_ivf(self) -> bool:
        return self in (IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_PQ, IndexType.BIN_IVF_FLAT)

    @property
    def is_exact(self) -> bool:
        return self in (IndexType.FLAT, IndexType.BIN_FLAT)


FLOAT_INDEX_TYPES: tuple[IndexType, ...] = tuple(t for t in IndexType if not t.for_binary)
BINARY_INDEX_TYPES: tuple[IndexType, ...] = tuple(t for t in IndexType if t.for_binary)
FLOAT_METRICS: tuple[MetricType, ...] = tuple(m for m in MetricType if not m.for_binary)
BINARY_METRICS: tuple[MetricType, ...] = tuple(m for m in MetricType if m.for_binary)

#: What Milvus clients send to ask the server to choose.
AUTOINDEX = "AUTOINDEX"
