"""What the figures were measured on: CPU, memory, load, Python and library versions.

Invariants: read-only (only /proc and package metadata); a missing source
gives None, never an exception.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "pelagos",
    "pymilvus",
    "milvus-lite",
    "faiss-cpu",
    "numpy",
    "grpcio",
    "protobuf",
    "pyarrow",
    "tqdm",
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str | None:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def memory_bytes() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def load_average() -> list[float] | None:
    fields = _read("/proc/loadavg").split()
    return [float(x) for x in fields[:3]] if len(fields) >= 3 else None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_bytes": memory_bytes(),
        "cpu_model": cpu_model(),
        "load_average": load_average(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "versions": versions(),
    }
