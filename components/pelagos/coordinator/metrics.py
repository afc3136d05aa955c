"""Metrics of the coordinator."""

from __future__ import annotations

from pelagos.observability.metrics import RoleMetrics

_m = RoleMetrics("coordinator")
DDL = _m.counter("ddl", "DDL operations, by operation", ["operation"])
COLLECTIONS = _m.gauge("collections", "Collections in the catalog")
SEGMENTS_COMMITTED = _m.counter("committed", "Sealed segments committed by flushes", unit="segments")
