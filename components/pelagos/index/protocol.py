"""VectorIndex: what a query node needs from the index of one segment.

Invariants every implementation keeps:
- Ids are row offsets within the segment (0 .. count-1); mapping them to
  primary keys is the caller's business (see reduce.reduce_topk).
- `build` trains (if the type needs it) and adds all rows; it never fails
  for a small segment: an IVF index with fewer rows than nlist clamps nlist
  (and PQ's nbits) and says so in `info`; zero rows make an empty index.
- `search` returns (scores float32 (nq, k), ids int64 (nq, k)), best first,
  padded with id -1 and the metric's pad score; many queries are one faiss
  call. `allowed` (bool, one per row) restricts which rows may be returned;
  see filtering.py for how recall is kept up under selective filters.
- `range_search` returns every row whose score is in range with Milvus
  semantics (L2/HAMMING/JACCARD: range_filter <= d < radius; IP/COSINE:
  radius < s <= range_filter), as a CSR `RangeResult` sorted best first.
  For approximate index types "every row" means every row the index visits.
- `serialize` / `factory.load_index(spec, data)` round-trip to an index that
  answers every search identically.
- Searches are safe from several threads at once; `build` is not safe
  concurrently with anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pelagos.index.results import RangeResult, TopK
from pelagos.index.search_params import SearchParams
from pelagos.index.spec import IndexSpec


@runtime_checkable
class VectorIndex(Protocol):
    @property
    def spec(self) -> IndexSpec: ...

    @property
    def count(self) -> int:
        """Rows indexed."""
        ...

    @property
    def info(self) -> Mapping[str, Any]:
        """Effective build parameters and notes (e.g. clamped nlist), JSON-able."""
        ...

    def build(self, vectors: npt.NDArray[Any], release: Callable[[int, int], None] | None = None) -> None:
        """Index the rows; `release(lo, hi)` (when given) is called once rows lo..hi are no longer
        read from `vectors`."""
        ...

    def search(
        self,
        queries: npt.NDArray[Any],
        k: int,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> TopK: ...

    def range_search(
        self,
        queries: npt.NDArray[Any],
        radius: float,
        range_filter: float | None = None,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> RangeResult: ...

    def serialize(self) -> bytes: ...


@runtime_checkable
class DerivesSubsets(Protocol):
    """An index that can make an index of its kind over some of its rows from its own structure,
    cheaper than building one (an HNSW's graph restricted to the rows, see hnsw_subgraph.py)."""

    def subset_index(
        self, rows: npt.NDArray[np.int64], vectors: npt.NDArray[Any], probes: npt.NDArray[Any] | None = None
    ) -> VectorIndex | None:
        """Row i of the result is rows[i] (ascending) here; None when it would serve them (and the
        queries `probes`, when given) worse than a fresh build."""
        ...
