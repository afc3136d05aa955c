"""FaissFloatIndex: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ and HNSW over float32 vectors.

Invariants:
- L2 uses faiss METRIC_L2 (squared distances); IP and COSINE use
  METRIC_INNER_PRODUCT, COSINE on vectors normalised at build and at query.
- Small segments never fail to build: IVF nlist is clamped to the row count,
  IVF_PQ nbits to floor(log2(rows)), and a single-row IVF_PQ segment is
  stored flat; each clamp is written to `info["notes"]`. Zero rows make an
  empty index that returns nothing.
- IVF kinds train on at most what faiss's k-means would keep (a seeded
  sample, `training_rows`), then add every row in chunks; a build is
  reproducible, and every row is checked for NaN/inf as it is added.
- Search widths come from SearchParams (ef for HNSW, nprobe for IVF, with
  Milvus's defaults) and are passed per call through faiss SearchParameters,
  never set on the shared index, so concurrent searches do not interfere.
- Filtered search follows filtering.py: faiss IDSelectorBitmap with widened
  ef / nprobe, or for HNSW under a selective filter an exact scan of the
  allowed rows by the index's flat storage (IndexHNSWFlat keeps the raw
  vectors there) with the same selector.
- Faiss calls run with threads.threads_for_search(nq) OpenMP threads.
- A loaded index asks for huge pages over its vectors and graph (hugepages.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from pelagos.errors import IndexParamError
from pelagos.index import container
from pelagos.index.exact import exact_knn, normalize_rows
from pelagos.index.faiss_api import faiss
from pelagos.index.filtering import FilterPlan, plan_filter, prefer_exact, subindex_width, widened
from pelagos.index.hnsw_subgraph import (
    CHECK_EF,
    CHECK_SLACK,
    WIDTH_SHARES,
    check_queries,
    derivable,
    derive_subgraph,
    mean_degree,
    recall_at,
)
from pelagos.index.hugepages import advise_index
from pelagos.index.inputs import as_vectors, check_k
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.results import RangeResult, TopK, in_range, pad_missing, padded
from pelagos.index.search_params import SearchParams, check_range
from pelagos.index.spec import IndexSpec
from pelagos.index.threads import faiss_threads, threads_for_build, threads_for_search, use_faiss_threads

KIND = "faiss_float"
#: rows added to faiss at a time when building (32 MiB of 128-d floats): a caller streaming its
#: vectors holds no more; HNSW recall and build time are the same as in one add (measured at 100k)
BUILD_CHUNK_ROWS = 65_536
#: What the built faiss index is, which may be simpler than the spec asks when rows are few.
STRUCTURES = ("empty", "flat", "hnsw", "ivf")


#: the filter plan of "every row" (its counts are never read but for `everything` / `nothing`)
_EVERY_ROW = FilterPlan(1, 1)


class _OwnedView(np.ndarray):  # type: ignore[type-arg]
    """A numpy view of memory another object owns; it (and every view of it) keeps `owner` alive."""

    owner: Any


#: the seed of the training sample (a build is reproducible)
TRAIN_SEED = 1234


def _training_limit(index: Any) -> int:
    """The most rows training can use: faiss's k-means keeps at most `max_points_per_centroid` per
    centroid (and samples the rest away itself), for the coarse quantizer and, for PQ, for each
    sub-quantizer's 2^nbits centroids."""
    limit = int(index.cp.max_points_per_centroid) * int(index.nlist)
    pq = getattr(index, "pq", None)
    if pq is not None:
        limit = max(limit, int(pq.cp.max_points_per_centroid) * int(pq.ksub))
    return limit


def training_rows(vectors: npt.NDArray[Any], limit: int) -> npt.NDArray[Any]:
    """At most `limit` rows of `vectors` to train on: all of them when they are few, else a seeded
    random sample in row order (a memory-mapped column is read forwards). At 1M x 128 with nlist
    1024 training copies and checks 262,144 rows (128 MiB) instead of the whole 512 MiB column, and
    faiss no longer samples its own copy; the IVF_FLAT build went from 6.4 to 5.9 s here. Every row
    is still checked when it is added."""
    n = len(vectors)
    if n <= limit:
        return vectors
    rows = np.sort(np.random.default_rng(TRAIN_SEED).choice(n, limit, replace=False))
    return vectors[rows]


class FaissFloatIndex:
    def __init__(self, spec: IndexSpec) -> None:
        if spec.is_binary:
            raise IndexParamError(f"{spec} is a binary index; use FaissBinaryIndex")
        self._spec = spec
        self._index: Any = None
        self._structure = "empty"
        self._count = 0
        self._nlist = 0
        self._info: dict[str, Any] = self._base_info(0)
        #: unfiltered faiss search parameters by search width (immutable, shared by concurrent searches)
        self._plain_params: dict[int, Any] = {}

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
        """Index `vectors`, added BUILD_CHUNK_ROWS at a time; `release(lo, hi)` is told after rows
        lo..hi are in (a caller streaming a memory-mapped column can let those pages go)."""
        n = len(vectors)
        self._info = self._base_info(n)
        self._count = n
        if n == 0:
            self._index, self._structure, self._nlist = None, "empty", 0
            return
        index = self._make(n)
        with faiss_threads(threads_for_build(n, self._spec.dim)):
            if not index.is_trained:
                index.train(self._prepare(training_rows(vectors, _training_limit(index)), "vectors"))
                if release is not None:
                    release(0, n)
            for lo in range(0, n, BUILD_CHUNK_ROWS):
                hi = min(n, lo + BUILD_CHUNK_ROWS)
                index.add(self._prepare(vectors[lo:hi], "vectors"))
                if release is not None:
                    release(lo, hi)
        self._index = index

    def _make(self, n: int) -> Any:
        spec, d = self._spec, self._spec.dim
        fm = faiss.METRIC_L2 if spec.metric is MetricType.L2 else faiss.METRIC_INNER_PRODUCT
        notes: list[str] = self._info["notes"]
        effective: dict[str, int] = self._info["params"]
        t = spec.index_type
        if t is IndexType.FLAT or (t is IndexType.IVF_PQ and n < 2):
            if t is not IndexType.FLAT:
                notes.append(f"{n} row is too few to train {t}; stored flat (exact)")
                effective.clear()
            self._structure = "flat"
            return faiss.IndexFlat(d, fm)
        if t is IndexType.HNSW:
            assert spec.hnsw_m is not None and spec.ef_construction is not None
            index = faiss.IndexHNSWFlat(d, spec.hnsw_m, fm)
            index.hnsw.efConstruction = spec.ef_construction
            self._structure = "hnsw"
            return index
        assert spec.nlist is not None
        nlist = min(spec.nlist, n)
        if nlist < spec.nlist:
            notes.append(f"nlist clamped from {spec.nlist} to {nlist}: only {n} rows to train on")
        effective["nlist"] = nlist
        quantizer = faiss.IndexFlat(d, fm)
        if t is IndexType.IVF_FLAT:
            index = faiss.IndexIVFFlat(quantizer, d, nlist, fm)
        elif t is IndexType.IVF_SQ8:
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, fm)
        else:
            assert spec.m is not None and spec.nbits is not None
            nbits = min(spec.nbits, math.floor(math.log2(n)))
            if nbits < spec.nbits:
                notes.append(f"nbits clamped from {spec.nbits} to {nbits}: only {n} rows to train on")
            effective["nbits"] = nbits
            index = faiss.IndexIVFPQ(quantizer, d, nlist, spec.m, nbits, fm)
            index.pq.cp.min_points_per_centroid = 1
        # Small segments: train on what there is without faiss's stderr warnings.
        index.cp.min_points_per_centroid = 1
        self._structure = "ivf"
        self._nlist = nlist
        return index

    def subset_index(
        self, rows: npt.NDArray[np.int64], vectors: npt.NDArray[Any], probes: npt.NDArray[Any] | None = None
    ) -> FaissFloatIndex | None:
        """An index of this one's kind over just `rows` (ascending row numbers, `vectors` their rows as
        given to `build`), derived from this HNSW's graph (hnsw_subgraph.py) when that serves them
        well: a rich enough neighbourhood to derive from, and answers as good as the filtered walk of
        this index it replaces, checked on held-out rows and on `probes` (queries it is for); None
        otherwise (build one afresh). Row i of it is rows[i] here; `info["walk_width_share"]` says how
        wide to search it (a share of the walk's width)."""
        if (
            self._structure != "hnsw"
            or self._spec.hnsw_m is None
            or len(rows) != len(vectors)
            or not self._count
            or not derivable(mean_degree(self._index), len(rows) / self._count)
        ):
            return None
        subset = FaissFloatIndex(self._spec)
        subset._info = subset._base_info(len(rows))
        subset._count = len(rows)
        subset._structure = "hnsw"
        # a background job of one core (querynode/filter_cache.py); only the check's batch searches
        # (~260 queries, a fraction of a second) take the cores a batch may use
        with faiss_threads(1):
            prepared = self._prepare(vectors, "vectors")
            subset._index = derive_subgraph(self._index, rows, prepared)
            asked = None if probes is None or not len(probes) else self._prepare(probes, "queries")
            checked = self._check_subset(subset, rows, prepared, check_queries(self._index, rows, asked))
        if checked is None:
            return None
        subset._info["walk_width_share"], note = checked
        subset._info["notes"].append(f"graph derived from an HNSW over {self._count} rows{note}")
        return subset

    def _check_subset(
        self,
        subset: FaissFloatIndex,
        rows: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
        queries: npt.NDArray[np.float32],
    ) -> tuple[float, str] | None:
        """How wide `subset` (derived for `rows`, whose stored form is `vectors`) must be searched, as
        a share of the width a filtered walk of this index at ef=CHECK_EF gets, to answer `queries`
        as well as that walk (less CHECK_SLACK): the smallest of WIDTH_SHARES that does, and what was
        measured; None if none."""
        if not len(queries) or len(rows) <= 10:
            return 1.0, ""
        allowed = np.zeros(self._count, dtype=bool)
        allowed[rows] = True
        truth = exact_knn(queries, vectors, 10, self._spec.metric)[1]
        found = self.search(queries, 10, SearchParams(ef=CHECK_EF), allowed)[1]
        walk = recall_at(np.where(found >= 0, np.searchsorted(rows, found), -1), truth)
        fraction = len(rows) / self._count
        width = subindex_width(CHECK_EF, fraction, len(rows), 1.0)
        for share in WIDTH_SHARES:
            ef = subindex_width(CHECK_EF, fraction, len(rows), share)
            ours = recall_at(subset.search(queries, 10, SearchParams(ef=ef))[1], truth)
            if ours >= walk - CHECK_SLACK:
                return share, (
                    f" (recall@10 {ours:.3f} at ef={ef} on {len(queries)} check queries; the filtered"
                    f" walk it replaces, at ef={width}: {walk:.3f})"
                )
        return None

    # --- search ----------------------------------------------------------------

    def search(
        self,
        queries: npt.NDArray[Any],
        k: int,
        params: SearchParams | None = None,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> TopK:
        k = check_k(k)
        q = self._prepare(queries, "queries")
        metric = self._spec.metric
        plan = _EVERY_ROW if allowed is None else plan_filter(allowed, self._count)
        if self._index is None or len(q) == 0 or plan.nothing or not self._count:
            return padded(len(q), k, metric)
        params = params or SearchParams()
        index, fparams = self._target(plan, params, k)
        n = len(q)
        scores = np.empty((n, k), dtype=np.float32)
        ids = np.empty((n, k), dtype=np.int64)
        use_faiss_threads(threads_for_search(n))
        index.search_c(n, faiss.swig_ptr(q), k, faiss.swig_ptr(scores), faiss.swig_ptr(ids), fparams)
        return pad_missing(scores, ids, metric)

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
        q = self._prepare(queries, "queries")
        plan = plan_filter(allowed, self._count)
        if self._index is None or len(q) == 0 or plan.nothing:
            return RangeResult.empty(len(q), metric)
        params = params or SearchParams()
        index, fparams = self._target(plan, params, 1)
        with faiss_threads(threads_for_search(len(q))):
            lims, scores, ids = index.range_search(q, radius, params=fparams)
        lims = np.asarray(lims, dtype=np.int64)
        qidx = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(lims))
        keep = in_range(scores, radius, range_filter, metric)
        return RangeResult.from_triples(
            qidx[keep], scores[keep], np.asarray(ids, dtype=np.int64)[keep], len(q), metric
        )

    def _target(self, plan: FilterPlan, params: SearchParams, k: int) -> tuple[Any, Any]:
        """The faiss index to ask and its per-call parameters.

        HNSW under a selective filter asks its flat storage (the raw vectors) with the bitmap selector:
        an exact scan that computes distances for allowed rows only (see filtering.prefer_exact).
        """
        if self._structure == "hnsw" and not plan.everything:
            assert self._spec.hnsw_m is not None
            ef = widened(params.ef_for(k), plan.fraction, max(params.ef_for(k), self._count))
            if prefer_exact(plan, ef, self._spec.hnsw_m, self._spec.metric):
                return self._index.storage, faiss.SearchParameters(sel=plan.selector())
        return self._index, self._faiss_params(plan, params, k)

    def _faiss_params(self, plan: FilterPlan, params: SearchParams, k: int) -> Any:
        if plan.everything and self._structure in ("hnsw", "ivf"):
            width = params.ef_for(k) if self._structure == "hnsw" else params.nprobe_for(self._nlist)
            found = self._plain_params.get(width)
            if found is None:
                found = self._faiss_params_for(plan, params, k)
                self._plain_params[width] = found
            return found
        return self._faiss_params_for(plan, params, k)

    def _faiss_params_for(self, plan: FilterPlan, params: SearchParams, k: int) -> Any:
        sel = plan.selector()
        if self._structure == "hnsw":
            ef = params.ef_for(k)
            if not plan.everything:
                ef = widened(ef, plan.fraction, max(ef, self._count))
            return faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
        if self._structure == "ivf":
            nprobe = params.nprobe_for(self._nlist)
            if not plan.everything:
                nprobe = widened(nprobe, plan.fraction, self._nlist)
            return faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
        return faiss.SearchParameters(sel=sel) if sel is not None else None

    # --- persistence -----------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "spec": self._spec.to_dict(),
            "count": self._count,
            "info": self._info,
            "structure": self._structure,
            "nlist": self._nlist,
        }

    def serialize(self) -> bytes:
        blob = b"" if self._index is None else faiss.serialize_index(self._index).tobytes()
        return container.pack(self._header(), {"faiss": blob})

    def save(self, path: str | Path) -> int:
        """Write what `serialize` returns to a file, streaming the faiss index; the file's size."""
        index = self._index

        def write_faiss(f: BinaryIO) -> None:
            if index is not None:
                faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))

        return container.write_file(path, self._header(), {"faiss": write_faiss})

    @classmethod
    def load(cls, spec: IndexSpec, data: bytes) -> FaissFloatIndex:
        header, sections = container.unpack(data)
        index = cls._from_header(spec, header)
        if index._structure != "empty":
            index._adopt(faiss.deserialize_index(np.frombuffer(sections["faiss"], dtype=np.uint8)))
        return index

    @classmethod
    def load_file(cls, spec: IndexSpec, path: str | Path) -> FaissFloatIndex:
        """What `save` wrote, read in a stream: the index never exists twice in memory."""
        with open(path, "rb") as f:
            header, sections = container.read_file_header(f)
            index = cls._from_header(spec, header)
            if index._structure != "empty":
                offset, _ = sections["faiss"]
                f.seek(offset)
                index._adopt(faiss.read_index(faiss.PyCallbackIOReader(f.read, 1 << 20)))
        return index

    @classmethod
    def _from_header(cls, spec: IndexSpec, header: Mapping[str, Any]) -> FaissFloatIndex:
        stored = IndexSpec.from_dict(header["spec"])
        if header.get("kind") != KIND or not stored.same_index(spec):
            raise IndexParamError(
                f"serialized index is {header.get('kind')} {stored}, not {spec}; rebuild it"
            )
        index = cls(spec)
        index._count = int(header["count"])
        index._info = dict(header["info"])
        index._structure = str(header["structure"])
        index._nlist = int(header["nlist"])
        return index

    def memory_bytes(self) -> int:
        """Bytes the faiss index holds (vectors and graph or lists), roughly."""
        if self._index is None:
            return 0
        vectors = self._count * self._spec.dim * 4
        if self._structure == "hnsw":
            return vectors + int(self._index.hnsw.neighbors.size()) * 4 + self._count * 16
        return vectors + self._count * 8

    def raw_vectors(self) -> npt.NDArray[np.float32] | None:
        """The indexed rows exactly as given, in row order, as a read-only view of the index's own
        memory (HNSW and FLAT keep them so for L2 and IP; COSINE keeps them normalised, IVF by list):
        a segment can serve its vectors from here instead of holding a second copy. The view keeps
        this index alive; the index must not be added to while it is used."""
        if (
            self._index is None
            or self._structure not in ("hnsw", "flat")
            or self._spec.metric is MetricType.COSINE
        ):
            return None
        flat = faiss.downcast_index(self._index.storage) if self._structure == "hnsw" else self._index
        n, dim = self._count, self._spec.dim
        if int(flat.ntotal) != n or n == 0:
            return None
        raw: npt.NDArray[np.uint8] = faiss.rev_swig_ptr(flat.codes.data(), n * dim * 4)
        view = raw.view(np.float32).reshape(n, dim).view(_OwnedView)
        view.owner = self
        view.flags.writeable = False
        return view

    def _adopt(self, index: Any) -> None:
        self._index = index
        advise_index(index)

    # --- helpers ---------------------------------------------------------------

    def _prepare(self, x: npt.NDArray[Any], what: str) -> npt.NDArray[np.float32]:
        rows = as_vectors(x, self._spec, what)
        return normalize_rows(rows) if self._spec.metric is MetricType.COSINE else rows

    def _base_info(self, n: int) -> dict[str, Any]:
        return {
            "index_type": str(self._spec.index_type),
            "metric_type": str(self._spec.metric),
            "rows": n,
            "params": dict(self._spec.build_params()),
            "notes": [],
        }
