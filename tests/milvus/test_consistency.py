"""Consistency levels: what a read is guaranteed to see of earlier writes."""

from __future__ import annotations

import time

from pymilvus import MilvusClient

from tests.fixtures.standalone import unique


def _count(client: MilvusClient, name: str, level: str) -> int:
    return int(
        client.query(name, filter="", output_fields=["count(*)"], consistency_level=level)[0]["count(*)"]
    )


def test_strong_and_session_read_their_writes_at_once(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=4, consistency_level="Bounded", metric_type="L2")
    for round_ in range(1, 6):
        rows = [
            {"id": round_ * 10 + i, "vector": [0.1, 0.2, 0.3, float(round_ * 100 + i)]} for i in range(10)
        ]
        client.insert(name, rows)
        assert _count(client, name, "Strong") == (round_ - 1) * 9 + 10
        client.delete(name, ids=[round_ * 10])
        assert _count(client, name, "Session") == round_ * 9
        got = client.search(
            name, data=[[0.1, 0.2, 0.3, float(round_ * 100 + 9)]], limit=1, consistency_level="Session"
        )
        assert got[0][0]["id"] == round_ * 10 + 9
    client.drop_collection(name)


def test_bounded_and_eventually_answer_without_waiting_and_converge(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=4, consistency_level="Eventually")
    client.insert(name, [{"id": i, "vector": [0.1, 0.2, 0.3, float(i)]} for i in range(10)])
    for level in ("Eventually", "Bounded"):
        deadline = time.monotonic() + 10
        while _count(client, name, level) != 10:
            assert time.monotonic() < deadline, f"{level} reads never saw the write"
            time.sleep(0.05)
    client.drop_collection(name)
