"""BruteForceIndex: exact search with numpy for every metric; growing segments and the test oracle.

Invariants:
- Results are exact (up to float32 rounding and the order of tied scores) for
  L2, IP, COSINE, HAMMING and JACCARD, with or without an `allowed` bitset.
  It shares no search code with the faiss indexes (float scores are numpy
  BLAS; binary ones faiss's bare popcount kernel), which is why it can be
  the oracle; the tests check it against naive float64 scores.
- Rows can be appended (`add`) while other threads search: a search works on
  the (buffer, count) pair it read at its start, which `add` replaces as a
  whole, so it sees a consistent prefix of the rows. `add` itself is
  single-writer.
- COSINE rows are stored normalised; scores are IP of normalised vectors.
- With an `allowed` bitset of at most GATHER_FRACTION of the rows, the
  allowed rows are gathered and scanned; otherwise disallowed rows are masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.errors import IndexParamError
from pelagos.index import container
from pelagos.index.exact import exact_knn, exact_range, normalize_rows
from pelagos.index.filtering import plan_filter
from pelagos.index.inputs import as_vectors, check_k
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.results import RangeResult, TopK, padded
from pelagos.index.search_params import SearchParams, check_range
from pelagos.index.spec import IndexSpec

GATHER_FRACTION = 0.5
KIND = "brute_force"


class BruteForceIndex:
    def __init__(self, metric: MetricType | str, dim: int) -> None:
        metric = MetricType.of(metric)
        index_type = IndexType.BIN_FLAT if metric.for_binary else IndexType.FLAT
        self._spec = IndexSpec.parse(str(index_type), str(metric), None, dim, metric.for_binary)
        width = dim // 8 if metric.for_binary else dim
        dtype = np.uint8 if metric.for_binary else np.float32
        self._snapshot: tuple[npt.NDArray[Any], int] = (np.empty((0, width), dtype=dtype), 0)

    @property
    def spec(self) -> IndexSpec:
        return self._spec

    @property
    def count(self) -> int:
        return self._snapshot[1]

    @property
    def info(self) -> Mapping[str, Any]:
        return {"index_type": "BRUTE_FORCE", "metric_type": str(self._spec.metric), "rows": self.count}

    def vectors(self) -> npt.NDArray[Any]:
        """The stored rows (normalised for COSINE), read-only view."""
        data, n = self._snapshot
        view = data[:n]
        view.flags.writeable = False
        return view

    def build(self, vectors: npt.NDArray[Any], release: Callable[[int, int], None] | None = None) -> None:
        rows = np.array(self._prepare(vectors, "vectors"))  # a copy: the input can go
        self._snapshot = (rows, len(rows))
        if release is not None:
            release(0, len(rows))

    def add(self, vectors: npt.NDArray[Any]) -> None:
        """Append rows; their offsets continue from the current count."""
        rows = self._prepare(vectors, "vectors")
        data, n = self._snapshot
        if n + len(rows) > len(data):
            grown = np.empty((max(n + len(rows), 2 * len(data), 1024), data.shape[1]), dtype=data.dtype)
            grown[:n] = data[:n]
            data = grown
        data[n : n + len(rows)] = rows
        self._snapshot = (data, n + len(rows))

    def search(
        self,
        queries: npt.NDArray[Any],
        k: int,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> TopK:
        k = check_k(k)
        q = self._prepare(queries, "queries")
        data, n = self._snapshot
        plan = plan_filter(allowed, n)
        if plan.nothing:
            return padded(len(q), k, self._spec.metric)
        if plan.everything:
            return exact_knn(q, data[:n], k, self._spec.metric)
        if plan.fraction <= GATHER_FRACTION:
            rows = plan.allowed_rows()
            return exact_knn(q, data[rows], k, self._spec.metric, row_ids=rows)
        return exact_knn(q, data[:n], k, self._spec.metric, mask=allowed)

    def range_search(
        self,
        queries: npt.NDArray[Any],
        radius: float,
        range_filter: float | None = None,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> RangeResult:
        check_range(radius, range_filter, self._spec.metric)
        q = self._prepare(queries, "queries")
        data, n = self._snapshot
        plan = plan_filter(allowed, n)
        metric = self._spec.metric
        if plan.nothing:
            return RangeResult.empty(len(q), metric)
        if plan.everything:
            return exact_range(q, data[:n], metric, radius, range_filter)
        if plan.fraction <= GATHER_FRACTION:
            rows = plan.allowed_rows()
            return exact_range(q, data[rows], metric, radius, range_filter, row_ids=rows)
        return exact_range(q, data[:n], metric, radius, range_filter, mask=allowed)

    def serialize(self) -> bytes:
        data, n = self._snapshot
        header = {"kind": KIND, "spec": self._spec.to_dict(), "count": n, "info": dict(self.info)}
        return container.pack(header, {"vectors": np.ascontiguousarray(data[:n]).tobytes()})

    @classmethod
    def load(cls, spec: IndexSpec, data: bytes) -> BruteForceIndex:
        header, sections = container.unpack(data)
        index = cls(spec.metric, spec.dim)
        stored = IndexSpec.from_dict(header["spec"])
        if header.get("kind") != KIND or not stored.same_index(index.spec):
            raise IndexParamError(
                f"serialized index is {header.get('kind')} {stored}, not brute force {spec}"
            )
        empty = index._snapshot[0]
        rows = np.frombuffer(sections["vectors"], dtype=empty.dtype).reshape(-1, empty.shape[1]).copy()
        index._snapshot = (rows, len(rows))
        return index

    def _prepare(self, x: npt.NDArray[Any], what: str) -> npt.NDArray[Any]:
        rows = as_vectors(x, self._spec, what)
        if self._spec.metric is MetricType.COSINE:
            return normalize_rows(rows)
        return rows
