"""Metric naming convention, label rules, idempotent declaration, exposition."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from pelagos.observability.metrics import LATENCY_BUCKETS, REGISTRY, RoleMetrics, metric_name, render


def test_names_follow_the_convention() -> None:
    assert metric_name("proxy", "search_requests") == "pelagos_proxy_search_requests"
    assert metric_name("datanode", "flush_duration", "seconds") == "pelagos_datanode_flush_duration_seconds"
    for role, what, unit in [
        ("Proxy", "x", ""),
        ("proxy", "search-requests", ""),
        ("proxy", "x", "milliseconds"),
        ("proxy", "latency_seconds", "seconds"),
        ("proxy", "requests_total", ""),
    ]:
        with pytest.raises(ValueError):
            metric_name(role, what, unit)


def test_declaring_and_exposing() -> None:
    registry = CollectorRegistry()
    metrics = RoleMetrics("testrole", registry)
    inserted = metrics.counter("inserted", "Rows inserted", ["collection"], unit="rows")
    latency = metrics.latency("search_duration", "Search latency", ["collection"])
    loaded = metrics.gauge("loaded", "Loaded segments", unit="segments")
    inserted.labels(collection="c").inc(3)
    latency.labels(collection="c").observe(0.002)
    loaded.set(2)
    body, content_type = render(registry)
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'pelagos_testrole_inserted_rows_total{collection="c"} 3.0' in text
    assert 'pelagos_testrole_search_duration_seconds_bucket{collection="c",le="0.0025"} 1.0' in text
    assert 'pelagos_testrole_search_duration_seconds_bucket{collection="c",le="0.001"} 0.0' in text
    assert "pelagos_testrole_loaded_segments 2.0" in text
    assert LATENCY_BUCKETS[0] == 0.0005 and LATENCY_BUCKETS[-1] == 10.0


def test_redeclaring_returns_the_same_metric_or_refuses_a_different_one() -> None:
    registry = CollectorRegistry()
    a = RoleMetrics("dup", registry).counter("things", "Things", ["collection"])
    b = RoleMetrics("dup", registry).counter("things", "Things", ["collection"])
    assert a is b
    with pytest.raises(ValueError, match="declared already as a counter"):
        RoleMetrics("dup", registry).gauge("things", "Things", ["collection"])
    with pytest.raises(ValueError, match="declared already"):
        RoleMetrics("dup", registry).counter("things", "Things", ["channel"])


def test_label_names_are_consistent() -> None:
    metrics = RoleMetrics("labels", CollectorRegistry())
    with pytest.raises(ValueError, match="use 'collection'"):
        metrics.counter("a", "A", ["collection_name"])
    with pytest.raises(ValueError, match="snake case"):
        metrics.counter("b", "B", ["Collection"])
    with pytest.raises(ValueError, match="repeat"):
        metrics.counter("c", "C", ["channel", "channel"])


def test_default_registry_has_process_metrics() -> None:
    text = render()[0].decode()
    assert "process_cpu_seconds_total" in text or "python_info" in text
    assert REGISTRY is not None
