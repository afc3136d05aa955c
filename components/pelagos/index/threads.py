"""How many OpenMP threads a faiss call may use.

Invariants:
- faiss parallelises *across queries* inside one call. Callers (query nodes)
  already search several segments at once in Python threads, each faiss call
  releasing the GIL; letting every such call also fan out to all cores would
  oversubscribe the CPU. So a search of fewer than `BATCH_QUERIES` queries runs
  on one OpenMP thread, and a larger batch may use `max_threads()` threads.
- Builds (training and adding) use `max_threads()` when there is enough work
  (rows * dim >= BUILD_PARALLEL_MIN), one thread otherwise: an index node
  builds one index at a time, but on a busy machine an OpenMP team spinning
  at its barriers makes a small k-means several times slower than one thread
  (measured here: 5,000 x 32 IVF_PQ training 0.7 s on 1 thread, 3-4 s on 2
  contended ones).
- OpenMP teams wait passively (see faiss_api.py): with the default spinning
  policy, a 2-thread call on a busy 2-core machine ran 45x slower than a
  1-thread one; passive, it runs as fast or faster.
- The setting is per calling thread (OpenMP's nthreads-var is a per-thread
  ICV), so `faiss_threads` never affects a search running in another thread.
  Every faiss call that computes runs inside `faiss_threads(n)`, which sets
  the calling thread's team size to n only when it differs from what that
  thread last set (a SWIG call each way cost ~2 us per search): the setting
  is not restored on exit, the next call sets its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pelagos.index.faiss_api import faiss

#: A search of at least this many queries may use every core.
BATCH_QUERIES = 64
#: A build of at least this many floats (rows * dim) may use every core.
BUILD_PARALLEL_MIN = 1 << 22

_max_threads: int = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def max_threads() -> int:
    return _max_threads


def set_max_threads(n: int) -> None:
    """Cap the threads any one faiss call may use (e.g. from the process config)."""
    global _max_threads
    _max_threads = max(1, int(n))


def threads_for_build(rows: int, dim: int) -> int:
    return _max_threads if rows * dim >= BUILD_PARALLEL_MIN else 1


def threads_for_search(nq: int) -> int:
    return _max_threads if nq >= BATCH_QUERIES else 1


_this_thread = threading.local()


def use_faiss_threads(n: int) -> None:
    """Limit the faiss calls this thread makes next to n OpenMP threads."""
    if getattr(_this_thread, "n", None) != n:
        faiss.omp_set_num_threads(n)
        _this_thread.n = n


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run the body with faiss limited to n OpenMP threads in this thread."""
    use_faiss_threads(n)
    yield
