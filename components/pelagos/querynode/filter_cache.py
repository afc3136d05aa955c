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
- safe to call from several threads (searches of many segments run in a pool).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.expr.filter_plan import FilterPlan
from pelagos.querynode.segment_view import SegmentView


@dataclass(slots=True)
class FilterRows:
    """The rows of one segment a filter allows."""

    mask: npt.NDArray[np.bool_]
    count: int
    _rows: npt.NDArray[np.int64] | None = None
    #: gathered vectors by field (and normalisation), filled on demand
    vectors: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        if self._rows is None:
            self._rows = np.flatnonzero(self.mask).astype(np.int64)
        return self._rows

    @property
    def nbytes(self) -> int:
        held = self.mask.nbytes + (0 if self._rows is None else self._rows.nbytes)
        return held + sum(v.nbytes for v in self.vectors.values())


class FilterCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[tuple[int, FilterPlan], FilterRows] = OrderedDict()
        self._sizes: dict[tuple[int, FilterPlan], int] = {}
        self._bytes = 0
        self._watched: set[int] = set()
        self._lock = threading.Lock()

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
