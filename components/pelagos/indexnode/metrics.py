"""Metrics of the index node."""

from __future__ import annotations

from pelagos.observability.metrics import RoleMetrics

_m = RoleMetrics("indexnode")
BUILDS = _m.counter("builds", "Index builds, by status", ["status"])
BUILD_LATENCY = _m.latency("build_latency", "Time to build and upload one segment index")
BUILT_ROWS = _m.counter("indexed", "Rows indexed", unit="rows")
