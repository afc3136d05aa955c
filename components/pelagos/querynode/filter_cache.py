"""Filter results kept per segment: the rows a filter allows, and their vectors gathered for exact scans.

A filter over a segment gives the same rows every time the segment is read
(sealed segments are immutable; a growing view is rebuilt whenever data
arrives), and repeated filters are the common case (a tenant, a category, a
date range). Evaluating `category == 3` over 100k rows and counting it cost
~60 us per search, and HNSW answers a 10% filter by scoring the allowed rows
exactly: over the whole index through a bitmap, 720 us; over the same rows
gathered contiguously, 175 us (one query, 128 dims, this machine).

Invariants:
- an entry is keyed by the segment view and the compiled FilterPlan (plans
  are immutable; equal expressions share a plan through compile_filter's
  cache, and a recompiled plan only misses); liveness and partitions are
  not part of it: callers combine them with the filter's mask;
- a segment's entries are dropped when the segment view is collected, so an
  entry never outlives the data it describes;
- all entries of the process together hold at most `max_bytes` (masks,
  row numbers, gathered vectors); the least recently used go first, and an
  entry larger than the whole budget is computed but not kept;
- safe to call from several threads (searches of many segments run in a pool);
- a filter that keeps selecting many rows of an HNSW-indexed segment gets a
  sub-index: an HNSW of the same parameters over just its rows, made in the
  background once the filter was used SUBINDEX_AFTER_USES times with at
  least SUBINDEX_MIN_ROWS rows. It is derived from the segment's own HNSW
  graph where that serves the rows well (index/hnsw_subgraph.py: at 1M rows
  and 10%, ~7 s of one core), checked on the first PROBES queries that used
  the filter, by a worker of the process's priority; otherwise it is built
  afresh (18 s of both cores at 1M rows and 10%) by a worker
  SUBINDEX_BUILD_NICENESS nicer than the process (its OpenMP threads
  inherit that), so that it takes idle CPU. One job at a time per worker.
  Until it is ready searches go the usual way; once ready they search it
  unfiltered, as wide as it needs to answer as well as the filtered walk it
  replaces (measured when it was derived; a fresh build: as wide as the
  walk). HNSW under a 10% filter otherwise walks a graph where nine nodes in
  ten are useless, or scores all allowed rows (at 1M rows, 100k rows per
  query). Its memory counts against the budget like everything else here,
  and it dies with its entry.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.expr.filter_plan import FilterPlan
from pelagos.index import DerivesSubsets, IndexSpec, VectorIndex, create_index
from pelagos.querynode.segment_view import SegmentView

log = logging.getLogger("pelagos.querynode")

#: a filter gets an HNSW sub-index once it selected at least this many rows ...
SUBINDEX_MIN_ROWS = 20_000
#: ... in this many searches
SUBINDEX_AFTER_USES = 2
#: fresh sub-index builds run this much nicer than the process (their OpenMP threads inherit it): they
#: are an optimisation the searches can do without, so they take idle CPU and yield to serving (at 1M
#: rows, `count(*)` took 2.0-2.9 ms while a 100k-row build competed at equal priority, 0.67 without).
#: Derivations are not niced: one core for seconds; niced, under a one-thread search loop whose
#: event loop busy-polls, one took 13 s, and under the bench's saturating sweep it never finished
SUBINDEX_BUILD_NICENESS = 10
#: query vectors kept per filter to check a sub-index derived from the segment's graph against
PROBES = 64


@dataclass(slots=True)
class FilterRows:
    """The rows of one segment a filter allows."""

    mask: npt.NDArray[np.bool_]
    count: int
    _rows: npt.NDArray[np.int64] | None = None
    #: gathered vectors by field (and normalisation), filled on demand
    vectors: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    #: indexes over just these rows, by (field, spec of the segment's index), built in the background
    subindexes: dict[tuple[str, IndexSpec], VectorIndex] = field(default_factory=dict)
    uses: int = 0
    building: bool = False
    #: queries that used the filter (the first PROBES), to check a derived sub-index against
    probes: list[npt.NDArray[Any]] = field(default_factory=list)

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        if self._rows is None:
            self._rows = np.flatnonzero(self.mask).astype(np.int64)
        return self._rows

    @property
    def nbytes(self) -> int:
        held = self.mask.nbytes + (0 if self._rows is None else self._rows.nbytes)
        held += sum(int(getattr(i, "memory_bytes", lambda: 0)()) for i in self.subindexes.values())
        held += sum(p.nbytes for p in self.probes)
        return held + sum(v.nbytes for v in self.vectors.values())


class FilterCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[tuple[int, FilterPlan], FilterRows] = OrderedDict()
        self._sizes: dict[tuple[int, FilterPlan], int] = {}
        self._bytes = 0
        self._watched: set[int] = set()
        self._lock = threading.Lock()
        #: background jobs and their workers by "niced": deriving (False) and building afresh (True)
        self._jobs: dict[bool, queue.SimpleQueue[Callable[[], None]]] = {
            niced: queue.SimpleQueue() for niced in (False, True)
        }
        self._workers: dict[bool, threading.Thread] = {}

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def enabled(self) -> bool:
        """False with a budget of 0: nothing is kept, and nothing should be gathered for later."""
        return self.max_bytes > 0

    def rows(self, seg: SegmentView, plan: FilterPlan) -> FilterRows:
        """The rows of `seg` that `plan` allows (evaluated on a miss)."""
        key = (id(seg), plan)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        mask = np.asarray(plan.evaluate(seg.table), dtype=bool)
        entry = FilterRows(mask, int(np.count_nonzero(mask)))
        self._keep(seg, key, entry)
        return entry

    def gathered(
        self, seg: SegmentView, plan: FilterPlan, entry: FilterRows, name: str, vectors: Callable[[], Any]
    ) -> npt.NDArray[Any]:
        """The allowed rows of `vectors()` (a segment's matrix), contiguous, kept with the entry."""
        found = entry.vectors.get(name)
        if found is None:
            found = np.ascontiguousarray(vectors()[entry.rows])
            entry.vectors[name] = found
            self._keep(seg, (id(seg), plan), entry)
        return found

    def subindex(
        self,
        seg: SegmentView,
        plan: FilterPlan,
        entry: FilterRows,
        name: str,
        parent: VectorIndex,
        vectors: Callable[[], Any],
        queries: npt.NDArray[Any] | None = None,
    ) -> VectorIndex | None:
        """The entry's sub-index of the segment's index `parent` (an index of the same spec over just
        the entry's rows) when built; counts a use, and asks for it once the filter has earned one
        (see the module's invariants): derived from `parent`'s own structure where it can
        (`DerivesSubsets`), checked on the `queries` that used the filter, else built afresh."""
        spec = parent.spec
        found = entry.subindexes.get((name, spec))
        if found is not None or not self.enabled:
            return found
        entry.uses += 1
        if queries is not None and sum(len(p) for p in entry.probes) < PROBES:
            entry.probes.append(queries[:PROBES])
        if entry.count < SUBINDEX_MIN_ROWS or entry.uses < SUBINDEX_AFTER_USES or entry.building:
            return None
        entry.building = True
        key = (id(seg), plan)

        def ready(index: VectorIndex, how: str, started: float) -> None:
            entry.subindexes[(name, spec)] = index
            entry.vectors.pop(name, None)  # the sub-index holds the rows now
            entry.probes.clear()  # checked: no longer needed
            self._keep(seg, key, entry)
            entry.building = False
            log.info(
                "filter %r got a sub-index over %d rows of a segment (%s in %.1f s; %s)",
                plan.expression,
                entry.count,
                how,
                time.perf_counter() - started,
                "; ".join(index.info.get("notes", [])) or "searched as wide as the filtered walk",
            )

        def build(started: float) -> None:
            try:
                index = create_index(spec)
                index.build(self.gathered(seg, plan, entry, name, vectors))
                ready(index, "built", started)
            except Exception:
                entry.building = False
                log.exception("building a sub-index for filter %r failed", plan.expression)

        def derive() -> None:
            started = time.perf_counter()
            try:
                rows = self.gathered(seg, plan, entry, name, vectors)
                probes = np.concatenate(entry.probes) if entry.probes else None
                derived = (
                    parent.subset_index(entry.rows, rows, probes)
                    if isinstance(parent, DerivesSubsets)
                    else None
                )
            except Exception:
                entry.building = False
                log.exception("deriving a sub-index for filter %r failed", plan.expression)
                return
            if derived is not None:
                ready(derived, "derived from the segment's index", started)
            else:
                self._run(lambda: build(started), niced=True)

        self._run(derive, niced=False)
        return None

    def _run(self, job: Callable[[], None], niced: bool) -> None:
        """Queue a background job: derivations (one core, seconds) on a worker of the process's
        priority, fresh builds (every core, tens of seconds) on one SUBINDEX_BUILD_NICENESS nicer."""
        jobs = self._jobs[niced]
        jobs.put(job)
        with self._lock:
            if self._workers.get(niced) is None:
                worker = threading.Thread(
                    target=self._work_forever,
                    args=(jobs, niced),
                    name="pelagos-subindex" if niced else "pelagos-subindex-derive",
                    daemon=True,
                )
                self._workers[niced] = worker
                worker.start()

    @staticmethod
    def _work_forever(jobs: queue.SimpleQueue[Callable[[], None]], niced: bool) -> None:
        if niced:
            lower_thread_priority(SUBINDEX_BUILD_NICENESS)
        while True:
            jobs.get()()

    def _keep(self, seg: SegmentView, key: tuple[int, FilterPlan], entry: FilterRows) -> None:
        size = entry.nbytes
        with self._lock:
            self._bytes -= self._sizes.pop(key, 0)
            self._entries.pop(key, None)
            if size > self.max_bytes:
                return
            if key[0] not in self._watched:
                self._watched.add(key[0])
                weakref.finalize(seg, self._forget_segment, key[0])
            self._entries[key] = entry
            self._sizes[key] = size
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                old, _ = self._entries.popitem(last=False)
                self._bytes -= self._sizes.pop(old)

    def _forget_segment(self, seg_id: int) -> None:
        with self._lock:
            self._watched.discard(seg_id)
            for key in [k for k in self._entries if k[0] == seg_id]:
                del self._entries[key]
                self._bytes -= self._sizes.pop(key)


def lower_thread_priority(by: int) -> int | None:
    """Make the calling thread `by` nicer (Linux niceness is per thread; threads it starts inherit it);
    its niceness after, or None where that cannot be done (never an error: only an optimisation)."""
    try:
        tid = threading.get_native_id()
        nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + by)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError) as exc:
        log.debug("could not lower the priority of thread %s: %s", threading.current_thread().name, exc)
        return None
    return nice
