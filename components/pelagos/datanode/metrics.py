"""Metrics of the data node: consumption, flushes, buffered data."""

from __future__ import annotations

from pelagos.observability.metrics import RoleMetrics

_m = RoleMetrics("datanode")
CONSUMED = _m.counter("consumed", "Log messages consumed", ["channel"], unit="messages")
FLUSHED_SEGMENTS = _m.counter("flushed", "Sealed segments written", unit="segments")
FLUSHED_ROWS = _m.counter("sealed", "Rows written into sealed segments", unit="rows")
LOCALITY_ORDERED_ROWS = _m.counter(
    "locality_ordered", "Rows of sealed segments written in locality order", unit="rows"
)
FLUSH_LATENCY = _m.latency("flush_latency", "Time to write and commit one channel flush")
BUFFERED_BYTES = _m.gauge("buffered", "Bytes buffered in growing segments", ["channel"], unit="bytes")
