"""Metrics of the query node: reads, consumption, served segments, consume lag."""

from __future__ import annotations

from pelagos.observability.metrics import RoleMetrics

_m = RoleMetrics("querynode")
SEARCH_LATENCY = _m.latency("search_latency", "Latency of one shard search (after the consistency wait)")
QUERY_LATENCY = _m.latency("query_latency", "Latency of one shard query (after the consistency wait)")
WAIT_LATENCY = _m.latency("consistency_wait", "Time reads waited for their guarantee timestamp")
MERGED = _m.counter("merged", "Searches answered as part of a merged batch", unit="requests")
CONSUMED = _m.counter("consumed", "Log messages consumed", ["channel"], unit="messages")
GROWING_ROWS = _m.gauge("growing", "Rows served from growing data", ["channel"], unit="rows")
SEALED_SEGMENTS = _m.gauge("sealed", "Sealed segments served", ["channel"], unit="segments")
CONSUME_LAG = _m.gauge(
    "consume_lag", "Wall time minus the timestamp of the last consumed message", ["channel"], unit="seconds"
)
