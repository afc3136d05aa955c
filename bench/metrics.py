"""Pure measurement helpers: recall, latency summaries, medians, peak RSS from /proc.

Invariants:
- `recall_at_k` counts a found id once however often it repeats, ignores -1
  padding, and divides by k (a short answer loses recall);
- latency figures are in milliseconds, rates in operations per second;
- peak RSS is VmHWM (the kernel's high-water mark of resident memory) of a
  process, optionally summed over its living descendants (an upper bound
  of their joint peak, since each peaked at its own moment).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

PROC = Path("/proc")


def recall_at_k(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int) -> float:
    """Mean over queries of |found_i ∩ truth_i| / k, on the first k columns of each."""
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"{found.shape[0]} answers for {truth.shape[0]} queries")
    if found.shape[0] == 0:
        raise ValueError("no answers to score")
    got = found[:, :k]
    want = truth[:, :k]
    if got.shape[1] < k:
        got = np.pad(got, ((0, 0), (0, k - got.shape[1])), constant_values=-1)
    # a found id scores when it is in the truth row and was not already seen in its own row
    hit = (got[:, :, None] == want[:, None, :]).any(axis=2) & (got >= 0)
    first = np.ones_like(hit)
    for j in range(1, k):  # k columns (10), never per row
        first[:, j] = ~(got[:, :j] == got[:, j : j + 1]).any(axis=1)
    return float((hit & first).sum() / (got.shape[0] * k))


def pad_ids(rows: Sequence[Sequence[int]], k: int) -> npt.NDArray[np.int64]:
    """Ragged lists of ids -> an (n, k) int64 array padded with -1."""
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, row in enumerate(rows):  # one per query answer, at most nq
        n = min(len(row), k)
        out[i, :n] = row[:n]
    return out


@dataclass(frozen=True)
class Latency:
    """Summary of latencies in milliseconds."""

    p50: float
    p99: float
    mean: float
    count: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            raise ValueError("no latencies to summarise")
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        return cls(
            p50=float(np.percentile(ms, 50)),
            p99=float(np.percentile(ms, 99)),
            mean=float(ms.mean()),
            count=int(ms.size),
        )


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of nothing")
    return float(statistics.median(values))


def median_latency(runs: Sequence[Latency]) -> Latency:
    """Per-figure median of repeated runs."""
    return Latency(
        p50=median([r.p50 for r in runs]),
        p99=median([r.p99 for r in runs]),
        mean=median([r.mean for r in runs]),
        count=sum(r.count for r in runs),
    )


def _status_kib(pid: int, field: str) -> int | None:
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def children_of(pid: int) -> list[int]:
    """Living descendants of pid (any depth), from the ppid field of /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        nxt = [c for p in frontier for c in parents.get(p, [])]
        found.extend(nxt)
        frontier = nxt
    return found


@dataclass(frozen=True)
class PeakRss:
    """VmHWM of a process, and of it plus its descendants, in bytes."""

    own: int
    with_children: int


def peak_rss(pid: int) -> PeakRss | None:
    own = _status_kib(pid, "VmHWM")
    if own is None:
        return None
    total = own
    for child in children_of(pid):
        total += _status_kib(child, "VmHWM") or 0
    return PeakRss(own=own * 1024, with_children=total * 1024)
