"""Timing loops shared by every target: single-query, multi-threaded, batched, latency.

A `SearchFn` takes an (m, dim) float32 array of queries and returns m rows
of ids (best first); the client protocol and raw faiss both provide one, so
both are timed by the same loops.

Invariants:
- a timed loop answers the held-out queries in order, and stops once the
  queries run out or, after at least `min_queries`, once `budget_s` passed;
  rates are answered queries divided by the loop's wall time;
- recall is scored on every batch run, over the queries it answered: the
  first answers every query unless the target is so slow that
  `recall_budget_s` ran out (`recall_queries` says how many), the later
  ones stop after `budget_s`; a cell reports the lowest, so a target whose
  search path changes within a cell (a cache that arrives) is never credited
  with the better path's recall at the other path's rate;
- each figure of a cell is the median over `repeat` runs of its loop; a
  sweep's repeats are interleaved (`search_cells`): run r of every
  configuration comes before run r + 1 of any, so the runs of one figure
  lie minutes apart, not within the same few seconds (this VM's host slows
  for a minute at a time; back to back, such a dip took all three runs of
  a cell, and a cache arriving during a sweep is seen by the later runs).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.metrics import Latency, median, median_latency, pad_ids, recall_at_k

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
SearchFn = Callable[[F32], Sequence[Sequence[int]] | I64]


@dataclass(frozen=True)
class Budget:
    """How long and how often each measurement runs."""

    budget_s: float = 5.0
    min_queries: int = 20
    recall_budget_s: float = 120.0
    repeat: int = 3
    threads: int = 8
    batch: int = 100
    warmup: int = 5


def single_thread_qps(search: SearchFn, queries: F32, budget: Budget) -> float:
    n = 0
    started = time.perf_counter()
    deadline = started + budget.budget_s
    for i in range(queries.shape[0]):
        search(queries[i : i + 1])
        n += 1
        if n >= budget.min_queries and time.perf_counter() >= deadline:
            break
    return n / (time.perf_counter() - started)


def threaded_qps(search: SearchFn, queries: F32, budget: Budget) -> float:
    """`budget.threads` client threads share one queue of single-query requests."""
    counter = itertools.count()
    done = [0] * budget.threads
    total = queries.shape[0]
    start_gate = threading.Barrier(budget.threads + 1)
    holder: dict[str, float] = {}

    def worker(slot: int) -> None:
        start_gate.wait()
        deadline = holder["deadline"]
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= total or (i >= budget.min_queries and time.perf_counter() >= deadline):
                return
            search(queries[i : i + 1])
            done[slot] += 1

    with ThreadPoolExecutor(max_workers=budget.threads) as pool:
        futures = [pool.submit(worker, slot) for slot in range(budget.threads)]
        started = time.perf_counter()
        holder["deadline"] = started + budget.budget_s
        start_gate.wait()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
    return sum(done) / elapsed


def batched(search: SearchFn, queries: F32, budget: Budget, k: int, limit_s: float) -> tuple[float, I64]:
    """Batches of `budget.batch` queries; (queries/s, ids of the queries answered)."""
    rows: list[Sequence[int]] = []
    started = time.perf_counter()
    deadline = started + limit_s
    for s in range(0, queries.shape[0], budget.batch):
        answer = search(queries[s : s + budget.batch])
        rows.extend(list(answer))
        if len(rows) >= budget.min_queries and time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - started
    return len(rows) / elapsed, pad_ids(rows, k)


@dataclass
class _Runs:
    """The runs of one search configuration so far."""

    ones: list[float]
    eights: list[float]
    batches: list[float]
    recalls: list[float]
    answered: int = 0

    def figures(self) -> dict[str, float]:
        return {
            "recall": min(self.recalls) if self.recalls else float("nan"),
            "recall_queries": float(self.answered),
            "qps_1": median(self.ones),
            "qps_8": median(self.eights),
            "qps_batch": median(self.batches),
        }


#: told after each run of a configuration: (its position in the sweep, the run, the run's recall)
RunDone = Callable[[int, int, float], None]


def search_cells(
    searches: Sequence[SearchFn],
    queries: F32,
    truth: I64,
    k: int,
    budget: Budget,
    done: RunDone | None = None,
) -> list[dict[str, float]]:
    """recall@k, qps_1, qps_8 and qps_batch of each search configuration (medians of repeats),
    the repeats interleaved across the configurations (see the module's invariants)."""
    runs = [_Runs([], [], [], []) for _ in searches]
    for run in range(budget.repeat):
        limit = budget.recall_budget_s if run == 0 else budget.budget_s
        for position, (search, got) in enumerate(zip(searches, runs, strict=True)):
            for i in range(min(budget.warmup, queries.shape[0])):
                search(queries[i : i + 1])
            qps, ids = batched(search, queries, budget, k, limit)
            got.batches.append(qps)
            if run == 0:
                got.answered = ids.shape[0]
            got.recalls.append(recall_at_k(ids, truth[: ids.shape[0]], k))
            got.ones.append(single_thread_qps(search, queries, budget))
            got.eights.append(threaded_qps(search, queries, budget))
            if done is not None:
                done(position, run, got.recalls[-1])
    return [got.figures() for got in runs]


def sweep_metrics(
    family: str,
    knob: str,
    points: Sequence[tuple[int, SearchFn]],
    queries: F32,
    truth: I64,
    k: int,
    budget: Budget,
    mark: Callable[[str], None],
    *,
    recall: bool = True,
) -> dict[str, float]:
    """The figures of a sweep over (knob value, search) points (`search_cells`), named
    `<family>.<knob><value>.<figure>` as the plan's metric keys are; `mark` is told after each run
    ("hnsw ef=64 run 2/3 recall 0.954"). recall=False: hits that mean nothing (a canned server), no
    recall figures."""

    def done(position: int, run: int, got: float) -> None:
        shown = f" recall {got:.3f}" if recall else ""
        mark(f"{family} {knob}={points[position][0]} run {run + 1}/{budget.repeat}{shown}")

    cells = search_cells([search for _, search in points], queries, truth, k, budget, done)
    out: dict[str, float] = {}
    for (value, _), cell in zip(points, cells, strict=True):
        if not recall:
            del cell["recall"], cell["recall_queries"]
        out.update({f"{family}.{knob}{value}.{key}": figure for key, figure in cell.items()})
    return out


def search_cell(search: SearchFn, queries: F32, truth: I64, k: int, budget: Budget) -> dict[str, float]:
    """recall@k, qps_1, qps_8 and qps_batch of one search configuration (medians of repeats)."""
    return search_cells([search], queries, truth, k, budget)[0]


def latency_cell(call: Callable[[int], object], requests: int, repeat: int) -> Latency:
    """p50/p99 of `requests` sequential calls (call(i) for i = 0..requests-1), median of repeats."""
    call(0)  # warm-up
    runs: list[Latency] = []
    for _ in range(repeat):
        times: list[float] = []
        for i in range(requests):
            t = time.perf_counter()
            call(i)
            times.append(time.perf_counter() - t)
        runs.append(Latency.of(times))
    return median_latency(runs)
