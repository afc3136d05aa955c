"""OpenMP set-up: passive waits by default, thread caps per calling thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from pelagos.index.faiss_api import faiss
from pelagos.index.threads import BATCH_QUERIES, faiss_threads, threads_for_search

PROBE = "import os, pelagos.index as i, pelagos.index.faiss_api as f; print(os.environ['OMP_WAIT_POLICY'], f.OMP_POLICY_APPLIED)"


def test_passive_wait_policy_by_default_and_environment_wins() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "True"]
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env | {"OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["ACTIVE", "True"]


def test_thread_cap_is_per_calling_thread_and_restored() -> None:
    before = faiss.omp_get_max_threads()
    seen: list[int] = []
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        with faiss_threads(1):
            seen.append(faiss.omp_get_max_threads())
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    assert faiss.omp_get_max_threads() == before  # the other thread's cap does not leak here
    release.set()
    t.join()
    assert seen == [1]
    with faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before
    assert threads_for_search(1) == 1
    assert threads_for_search(BATCH_QUERIES) >= 1
