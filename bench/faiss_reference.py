"""Raw faiss in this process with the protocol's index parameters: the floor under every server.

HNSW: IndexHNSWFlat(dim, M=16), efConstruction=200, searched with
SearchParametersHNSW(efSearch=ef); the filtered sweep passes an
IDSelectorBitmap of `category == 3` in the same parameters, which is how a
server filters inside the graph walk. IVF_FLAT: IndexIVFFlat over an
IndexFlatL2 quantizer, trained on all rows, SearchParametersIVF(nprobe).

Invariants:
- timed by the same loops as the client targets (bench.measure), with faiss
  ids equal to pks because rows are added in pk order;
- `ingest.to_searchable_s` is the HNSW build (add with efConstruction=200);
  there is no insert, flush, load or scalar read to time;
- `memory.vectors_plus_index_bytes` = raw float32 vectors + the serialized
  HNSW index (which holds its own copy of the vectors): the yardstick of
  issue 6 for a server's peak RSS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faiss as _faiss
import numpy as np

from bench.dataset import FILTER_CATEGORY, Dataset
from bench.measure import F32, I64, sweep_metrics
from bench.plan import Plan, TargetResult, Tick

faiss: Any = _faiss  # its bundled stubs lack SearchParameters*: use it untyped


def _searcher(index: Any, k: int, params: Any) -> Callable[[F32], I64]:
    def search(queries: F32) -> I64:
        _, ids = index.search(queries, k, params=params)
        found: I64 = ids
        return found

    return search


class FaissReference:
    def __init__(self, plan: Plan, tick: Tick, name: str = "faiss") -> None:
        self.result = TargetResult(name)
        self._plan = plan
        self._tick = tick
        self._step = "start"

    def run(self, data: Dataset) -> TargetResult:
        try:
            self._run(data)
        except Exception as exc:
            self.result.error = f"{self._step}: {type(exc).__name__}: {exc}"[:600]
        return self.result

    def _mark(self, step: str) -> None:
        self._step = step
        self._tick(f"{self.result.name}: {step}")

    def _sweep(self, family: str, knob: str, cells: list[tuple[int, Any]], data: Dataset, truth: I64) -> None:
        self._step = f"{family} sweep"
        points = [(value, _searcher(self._index, data.spec.k, params)) for value, params in cells]
        self.result.metrics.update(
            sweep_metrics(
                family, knob, points, data.queries, truth, data.spec.k, self._plan.budget, self._mark
            )
        )

    def _run(self, data: Dataset) -> None:
        plan, m = self._plan, self.result.metrics
        dim = data.spec.dim
        vectors = np.ascontiguousarray(data.vectors)
        self._mark("ready")

        self._step = "build HNSW"
        hnsw = faiss.IndexHNSWFlat(dim, plan.hnsw_m, faiss.METRIC_L2)
        hnsw.hnsw.efConstruction = plan.ef_construction
        t = time.perf_counter()
        hnsw.add(vectors)
        m["ingest.index_s"] = m["ingest.to_searchable_s"] = time.perf_counter() - t
        m["memory.vectors_plus_index_bytes"] = float(vectors.nbytes + faiss.serialize_index(hnsw).nbytes)
        self._index: Any = hnsw
        self._mark("HNSW built")

        hnsw_cells = [(ef, faiss.SearchParametersHNSW(efSearch=ef)) for ef in plan.efs]
        self._sweep("hnsw", "ef", hnsw_cells, data, data.truth)

        mask = data.category == FILTER_CATEGORY
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(data.spec.n, faiss.swig_ptr(bitmap))
        filtered_cells = [(ef, faiss.SearchParametersHNSW(efSearch=ef, sel=selector)) for ef in plan.efs]
        self._sweep("filtered", "ef", filtered_cells, data, data.truth_filtered)
        del bitmap, selector, filtered_cells

        self._step = "build IVF_FLAT"
        del self._index, hnsw_cells, hnsw
        quantizer = faiss.IndexFlatL2(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, plan.nlist, faiss.METRIC_L2)
        t = time.perf_counter()
        ivf.train(vectors)
        ivf.add(vectors)
        m["ivf.build_s"] = time.perf_counter() - t
        self._index = ivf
        self._mark("IVF_FLAT built")
        ivf_cells = [(p, faiss.SearchParametersIVF(nprobe=p)) for p in plan.nprobes]
        self._sweep("ivf", "nprobe", ivf_cells, data, data.truth)
        self._mark("done")
