"""Every role exports its metrics on standalone's /metrics."""

from __future__ import annotations

import urllib.request

from pymilvus import MilvusClient

from tests.fixtures.standalone import StandaloneProcess, unique


def test_roles_export_metrics(standalone: StandaloneProcess, client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [0.1, 0.2, 0.3, float(i)]} for i in range(10)])
    client.search(name, data=[[0.1, 0.2, 0.3, 0.4]], limit=3)
    client.flush(name)
    with urllib.request.urlopen(f"http://127.0.0.1:{standalone.metrics_port}/metrics", timeout=5) as r:
        body = r.read().decode()
    for metric in (
        'pelagos_proxy_requests_total{method="insert",status="ok"}',
        "pelagos_proxy_request_latency_seconds_bucket",
        "pelagos_proxy_inserted_rows_total",
        "pelagos_datanode_consumed_messages_total",
        "pelagos_datanode_flushed_segments_total",
        "pelagos_querynode_search_latency_seconds_bucket",
        "pelagos_querynode_consume_lag_seconds",
        "pelagos_coordinator_collections",
    ):
        assert metric in body, f"{metric} missing from /metrics"
    client.drop_collection(name)
