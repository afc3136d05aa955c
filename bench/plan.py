"""What one benchmark run does: the sweep, the index parameters, the budgets, and its results.

Index parameters are those of issue 6: HNSW M=16, efConstruction=200;
IVF_FLAT with nlist = 1024 at N >= 1,000,000, else round(sqrt(N)) (316 at
100k, 141 at 20k), so lists hold ~sqrt(N) rows as at 1M.

Metric keys (flat, so the JSON and the table read the same names):
  ingest.insert_rows_per_s ingest.insert_s ingest.flush_s ingest.index_s
  ingest.load_s ingest.to_searchable_s
  hnsw.ef<E>.{recall,recall_queries,qps_1,qps_8,qps_batch}
  filtered.ef<E>.{...same}            (filter `category == 3`)
  ivf.build_s ivf.nprobe<P>.{...same}
  query_filter.{p50_ms,p99_ms} get.{p50_ms,p99_ms} count.{p50_ms,p99_ms}
  rss.after_load_bytes rss.after_load_with_children_bytes rss.end_bytes
  memory.vectors_plus_index_bytes     (faiss only: raw vectors + HNSW index)

Invariants:
- a metric a target cannot measure is absent (None in the table), never 0;
- `steps()` counts exactly the ticks a target run makes, so the progress
  bar ends full.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.measure import Budget

Tick = Callable[[str], None]

# 96 because at 1M the recall@10 0.95 crossing lies between 80 (0.946) and 96 (0.963): with
# only 64 (0.92) and 128 (0.98) the "best rate at recall >= 0.95" rows would report a point
# that pays a third more graph walk than the target needs, for every target alike.
FULL_EFS = (16, 32, 64, 96, 128, 256)
FULL_NPROBES = (8, 16, 32, 64)
QUICK_EFS = (16, 64, 128)
QUICK_NPROBES = (16, 64)


def nlist_for(n: int) -> int:
    return 1024 if n >= 1_000_000 else max(16, round(math.sqrt(n)))


@dataclass(frozen=True)
class Plan:
    n: int
    efs: tuple[int, ...]
    nprobes: tuple[int, ...]
    nlist: int
    budget: Budget
    insert_batch: int = 10_000
    hnsw_m: int = 16
    ef_construction: int = 200
    latency_requests: int = 50
    ids_per_get: int = 10
    call_timeout_s: float = 3_600.0

    @property
    def insert_batches(self) -> int:
        return math.ceil(self.n / self.insert_batch)

    def steps(self, client: bool, ceiling: bool = False) -> int:
        """Progress ticks of one target run: setup, ingest, sweeps, reads, IVF, teardown."""
        runs = self.budget.repeat  # a sweep ticks after each run of each configuration
        if ceiling:  # collection, insert batches, the HNSW and filtered sweeps, done
            return 1 + self.insert_batches + 2 * len(self.efs) * runs + 1
        ingest = self.insert_batches + 4 if client else 1  # batches, flush, index, load, first search
        sweeps = (2 * len(self.efs) + len(self.nprobes)) * runs + 1  # hnsw, filtered, ivf; ivf build
        reads = 3 if client else 0
        return 1 + ingest + sweeps + reads + 1


def make_plan(n: int, quick: bool, repeat: int, budget_s: float | None = None) -> Plan:
    if quick:
        budget = Budget(budget_s=budget_s or 1.0, repeat=repeat, recall_budget_s=60.0)
        return Plan(n, QUICK_EFS, QUICK_NPROBES, nlist_for(n), budget, latency_requests=20)
    budget = Budget(budget_s=budget_s or 5.0, repeat=repeat)
    return Plan(n, FULL_EFS, FULL_NPROBES, nlist_for(n), budget)


@dataclass
class TargetResult:
    """What one target measured; `error` is set when the run stopped early."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False
