"""FaissBinaryIndex: BIN_FLAT and BIN_IVF_FLAT over packed binary vectors (dim in bits).

Invariants:
- faiss binary indexes compute HAMMING only. JACCARD is always computed
  exactly with numpy: over every row (BIN_FLAT, exact.exact_knn) or over the
  rows of the probed inverted lists (BIN_IVF_FLAT, whose coarse quantizer is
  faiss's Hamming k-means). Nothing approximates Jaccard by Hamming.
- BIN_FLAT HAMMING is faiss IndexBinaryFlat, with IDSelectorBitmap for
  filters (exact in every case).
- BIN_IVF_FLAT keeps, beside the faiss IndexBinaryIVF, the packed codes and
  each row's list, because faiss's binary IVF supports neither ID selectors
  nor per-call range search parameters. Unfiltered HAMMING top-k is the faiss
  search; filtered, JACCARD and range searches scan the probed lists' rows
  with numpy popcounts (vectorised over all query/candidate pairs, at most
  PAIR_BUDGET pairs at a time). Both read the same lists and compute exact
  distances on them, so they agree.
- nlist is clamped to the row count for small segments (noted in `info`);
  zero rows make an empty index. Filters widen nprobe as in filtering.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.errors import IndexParamError
from pelagos.index import container
from pelagos.index.exact import exact_knn, exact_range, pair_scores
from pelagos.index.faiss_api import faiss
from pelagos.index.filtering import FilterPlan, plan_filter, widened
from pelagos.index.inputs import as_vectors, check_k
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.results import Ids, RangeResult, TopK, grouped_topk, in_range, pad_missing, padded
from pelagos.index.search_params import SearchParams, check_range
from pelagos.index.spec import IndexSpec
from pelagos.index.threads import faiss_threads, threads_for_build, threads_for_search

KIND = "faiss_binary"
PAIR_BUDGET = 1 << 20

Codes = npt.NDArray[np.uint8]


class FaissBinaryIndex:
    def __init__(self, spec: IndexSpec) -> None:
        if not spec.is_binary:
            raise IndexParamError(f"{spec} is a float index; use FaissFloatIndex")
        self._spec = spec
        self._index: Any = None
        self._count = 0
        self._nlist = 0
        self._codes: Codes = np.empty((0, spec.code_size), dtype=np.uint8)
        self._labels: Ids = np.empty(0, dtype=np.int64)
        self._order: Ids = np.empty(0, dtype=np.int64)
        self._offsets: Ids = np.zeros(1, dtype=np.int64)
        self._info: dict[str, Any] = self._base_info(0)

    @property
    def spec(self) -> IndexSpec:
        return self._spec

    @property
    def count(self) -> int:
        return self._count

    @property
    def info(self) -> Mapping[str, Any]:
        return self._info

    # --- build -----------------------------------------------------------------

    def build(self, vectors: npt.NDArray[Any], release: Callable[[int, int], None] | None = None) -> None:
        codes = np.array(as_vectors(vectors, self._spec, "vectors"))  # a copy: the input can go
        n = len(codes)
        if release is not None:
            release(0, n)
        self._info = self._base_info(n)
        self._count = n
        self._codes = codes
        if n == 0:
            self._index, self._nlist = None, 0
            self._set_lists(np.empty(0, dtype=np.int64))
            return
        d = self._spec.dim
        with faiss_threads(threads_for_build(n, self._spec.dim)):
            if self._spec.index_type is IndexType.BIN_FLAT:
                index = faiss.IndexBinaryFlat(d)
                index.add(codes)
                self._codes = _flat_codes(index, n, self._spec.code_size)
            else:
                assert self._spec.nlist is not None
                nlist = min(self._spec.nlist, n)
                if nlist < self._spec.nlist:
                    self._info["notes"].append(
                        f"nlist clamped from {self._spec.nlist} to {nlist}: only {n} rows to train on"
                    )
                self._info["params"]["nlist"] = nlist
                index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(d), d, nlist)
                index.cp.min_points_per_centroid = 1
                index.train(codes)
                index.add(codes)
                self._nlist = nlist
                _, labels = index.quantizer.search(codes, 1)
                self._set_lists(labels[:, 0].astype(np.int64))
        self._index = index

    def _set_lists(self, labels: Ids) -> None:
        self._labels = labels
        self._order = np.argsort(labels, kind="stable").astype(np.int64)
        self._offsets = np.zeros(self._nlist + 1, dtype=np.int64)
        np.cumsum(np.bincount(labels, minlength=self._nlist), out=self._offsets[1:])

    # --- search ----------------------------------------------------------------

    def search(
        self,
        queries: npt.NDArray[Any],
        k: int,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> TopK:
        k = check_k(k)
        q = as_vectors(queries, self._spec, "queries")
        metric = self._spec.metric
        plan = plan_filter(allowed, self._count)
        if self._index is None or len(q) == 0 or plan.nothing:
            return padded(len(q), k, metric)
        params = params or SearchParams()
        if self._spec.index_type is IndexType.BIN_FLAT:
            if metric is MetricType.JACCARD:
                return self._exact(q, k, plan)
            with faiss_threads(threads_for_search(len(q))):
                sel = plan.selector()
                fparams = faiss.SearchParameters(sel=sel) if sel is not None else None
                scores, ids = self._index.search(q, k, params=fparams)
            return pad_missing(scores, ids, metric)
        nprobe = self._nprobe(params, plan)
        if metric is MetricType.HAMMING and plan.everything:
            with faiss_threads(threads_for_search(len(q))):
                scores, ids = self._index.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
            return pad_missing(scores, ids, metric)
        out_scores, out_ids = padded(len(q), k, metric)
        for lo, hi, qidx, rows in self._probe(q, nprobe, plan):
            s, i = grouped_topk(
                qidx, pair_scores(q[lo:hi][qidx], self._codes[rows], metric), rows, hi - lo, k, metric
            )
            out_scores[lo:hi], out_ids[lo:hi] = s, i
        return out_scores, out_ids

    def range_search(
        self,
        queries: npt.NDArray[Any],
        radius: float,
        range_filter: float | None = None,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> RangeResult:
        metric = self._spec.metric
        check_range(radius, range_filter, metric)
        q = as_vectors(queries, self._spec, "queries")
        plan = plan_filter(allowed, self._count)
        if self._index is None or len(q) == 0 or plan.nothing:
            return RangeResult.empty(len(q), metric)
        params = params or SearchParams()
        if self._spec.index_type is IndexType.BIN_FLAT:
            if metric is MetricType.JACCARD:
                rows = None if plan.everything else plan.allowed_rows()
                data = self._codes if rows is None else self._codes[rows]
                return exact_range(q, data, metric, radius, range_filter, row_ids=rows)
            # Hamming distances are integers: d < radius  <=>  d < ceil(radius).
            faiss_radius = max(0, math.ceil(radius))
            with faiss_threads(threads_for_search(len(q))):
                sel = plan.selector()
                fparams = faiss.SearchParameters(sel=sel) if sel is not None else None
                lims, scores, ids = self._index.range_search(q, faiss_radius, params=fparams)
            lims = np.asarray(lims, dtype=np.int64)
            qidx = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(lims))
            scores = np.asarray(scores, dtype=np.float32)
            keep = in_range(scores, radius, range_filter, metric)
            return RangeResult.from_triples(
                qidx[keep], scores[keep], ids[keep].astype(np.int64), len(q), metric
            )
        nprobe = self._nprobe(params, plan)
        qs, ss, rs = [], [], []
        for lo, hi, qidx, rows in self._probe(q, nprobe, plan):
            scores = pair_scores(q[lo:hi][qidx], self._codes[rows], metric)
            keep = in_range(scores, radius, range_filter, metric)
            qs.append(qidx[keep] + lo)
            ss.append(scores[keep])
            rs.append(rows[keep])
        return RangeResult.from_triples(
            np.concatenate(qs), np.concatenate(ss), np.concatenate(rs), len(q), metric
        )

    def _exact(self, q: Codes, k: int, plan: FilterPlan) -> TopK:
        if plan.everything:
            return exact_knn(q, self._codes, k, self._spec.metric)
        rows = plan.allowed_rows()
        return exact_knn(q, self._codes[rows], k, self._spec.metric, row_ids=rows)

    def _nprobe(self, params: SearchParams, plan: FilterPlan) -> int:
        nprobe = params.nprobe_for(self._nlist)
        return nprobe if plan.everything else widened(nprobe, plan.fraction, self._nlist)

    def _probe(self, q: Codes, nprobe: int, plan: FilterPlan) -> list[tuple[int, int, Ids, Ids]]:
        """Chunks of (query lo, query hi, query index in chunk, candidate row) over the probed lists.

        Only allowed rows are candidates; a chunk holds at most PAIR_BUDGET pairs (or one query).
        """
        with faiss_threads(threads_for_search(len(q))):
            _, assign = self._index.quantizer.search(q, nprobe)
        assign = np.asarray(assign, dtype=np.int64)
        valid = assign >= 0
        lists = np.where(valid, assign, 0)
        sizes = np.where(valid, self._offsets[lists + 1] - self._offsets[lists], 0)
        per_query = sizes.sum(axis=1)
        ends = np.cumsum(per_query)
        chunks: list[tuple[int, int, Ids, Ids]] = []
        lo = 0
        while lo < len(q):
            base = ends[lo - 1] if lo else 0
            hi = max(lo + 1, int(np.searchsorted(ends, base + PAIR_BUDGET, side="right")))
            hi = min(hi, len(q))
            flat_sizes = sizes[lo:hi].ravel()
            flat_starts = self._offsets[lists[lo:hi]].ravel()
            total = int(flat_sizes.sum())
            seg_begin = np.cumsum(flat_sizes) - flat_sizes
            positions = np.arange(total, dtype=np.int64) - np.repeat(seg_begin - flat_starts, flat_sizes)
            rows = self._order[positions]
            qidx = np.repeat(np.arange(hi - lo, dtype=np.int64), per_query[lo:hi])
            if not plan.everything:
                mask = plan.allowed_mask()[rows]
                qidx, rows = qidx[mask], rows[mask]
            chunks.append((lo, hi, qidx, rows))
            lo = hi
        return chunks

    # --- persistence -----------------------------------------------------------

    def serialize(self) -> bytes:
        header = {
            "kind": KIND,
            "spec": self._spec.to_dict(),
            "count": self._count,
            "info": self._info,
            "nlist": self._nlist,
        }
        blob = b"" if self._index is None else faiss.serialize_index_binary(self._index).tobytes()
        sections = {"faiss": blob}
        if self._spec.index_type is IndexType.BIN_IVF_FLAT:
            sections |= {"codes": self._codes.tobytes(), "labels": self._labels.astype("<i8").tobytes()}
        return container.pack(header, sections)

    @classmethod
    def load(cls, spec: IndexSpec, data: bytes) -> FaissBinaryIndex:
        header, sections = container.unpack(data)
        stored = IndexSpec.from_dict(header["spec"])
        if header.get("kind") != KIND or not stored.same_index(spec):
            raise IndexParamError(
                f"serialized index is {header.get('kind')} {stored}, not {spec}; rebuild it"
            )
        index = cls(spec)
        index._count = int(header["count"])
        index._info = dict(header["info"])
        index._nlist = int(header["nlist"])
        if index._count == 0:
            return index
        index._index = faiss.deserialize_index_binary(np.frombuffer(sections["faiss"], dtype=np.uint8))
        if spec.index_type is IndexType.BIN_IVF_FLAT:
            index._codes = np.frombuffer(sections["codes"], dtype=np.uint8).reshape(-1, spec.code_size).copy()
            index._set_lists(np.frombuffer(sections["labels"], dtype="<i8").astype(np.int64))
        else:
            index._codes = _flat_codes(index._index, index._count, spec.code_size)
        return index

    def _base_info(self, n: int) -> dict[str, Any]:
        return {
            "index_type": str(self._spec.index_type),
            "metric_type": str(self._spec.metric),
            "rows": n,
            "params": dict(self._spec.build_params()),
            "notes": [],
        }


def _flat_codes(index: Any, n: int, code_size: int) -> Codes:
    """Zero-copy view of an IndexBinaryFlat's codes (valid while the index lives and is not added to)."""
    flat = faiss.rev_swig_ptr(index.xb.data(), n * code_size)
    return np.asarray(flat, dtype=np.uint8).reshape(n, code_size)
