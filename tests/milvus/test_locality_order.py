"""Sealed segments in locality order, through pymilvus: the session's server writes segments of 64 KiB
of vectors and more with their rows grouped by region (tests/fixtures/standalone.py), and every read
answers as if they were in insertion order."""

from __future__ import annotations

import re
import urllib.request

import numpy as np
from pymilvus import DataType, MilvusClient

from tests.fixtures.standalone import StandaloneProcess, unique
from tests.milvus.helpers import wait_finished

ROWS = 3000
DIM = 32  # 384 KB of vectors: one reordered segment
ORDERED = "pelagos_datanode_locality_ordered_rows_total"


def ordered_rows(standalone: StandaloneProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{standalone.metrics_port}/metrics", timeout=5) as r:
        body = r.read().decode()
    found = re.search(rf"^{ORDERED} (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_reads_of_a_reordered_segment_match_insertion_order(
    standalone: StandaloneProcess, client: MilvusClient
) -> None:
    name = unique()
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("n", DataType.INT64)
    flat = client.prepare_index_params()
    flat.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=flat, consistency_level="Strong")
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((20, DIM)).astype(np.float32) * 10
    vecs = centres[np.arange(ROWS) % 20] + rng.standard_normal((ROWS, DIM)).astype(np.float32)
    before = ordered_rows(standalone)
    client.insert(name, [{"id": i, "vector": vecs[i].tolist(), "n": i % 7} for i in range(ROWS)])
    client.flush(name)
    assert ordered_rows(standalone) - before == ROWS  # the segment was written reordered
    # exact search (FLAT) over the sealed rows
    queries = vecs[[3, 1500, 2999]] + 0.01
    hits = client.search(name, data=queries.tolist(), limit=5, output_fields=["n"])
    d = ((queries[:, None, :] - vecs[None, :, :]) ** 2).sum(-1)
    expected = np.argsort(d, axis=1)[:, :5]
    assert [[h["id"] for h in row] for row in hits] == expected.tolist()
    assert [[h["entity"]["n"] for h in row] for row in hits] == (expected % 7).tolist()
    got = client.get(name, ids=[0, 1234, 2999], output_fields=["vector", "n"])
    assert sorted(r["id"] for r in got) == [0, 1234, 2999]
    for r in got:
        np.testing.assert_array_equal(np.asarray(r["vector"], np.float32), vecs[r["id"]])
        assert r["n"] == r["id"] % 7
    assert sorted(r["id"] for r in client.query(name, filter="id in [5, 6, 7] and n == 6")) == [6]
    # an HNSW over the reordered rows answers with the right keys: every row finds itself first
    client.release_collection(name)
    client.drop_index(name, "vector")
    params = client.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
    client.create_index(name, params)
    wait_finished(client, name, "vector")
    client.load_collection(name)
    probe = [0, 17, 999, 2048, 2999]
    found = client.search(name, data=vecs[probe].tolist(), limit=1, search_params={"params": {"ef": 64}})
    assert [row[0]["id"] for row in found] == probe
    client.delete(name, ids=[17])
    again = client.search(name, data=vecs[[17]].tolist(), limit=3, search_params={"params": {"ef": 64}})
    assert 17 not in [h["id"] for h in again[0]]
    client.drop_collection(name)
