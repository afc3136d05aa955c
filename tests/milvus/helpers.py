"""Helpers of the pymilvus tests."""

from __future__ import annotations

import time

from pymilvus import MilvusClient


def wait_finished(client: MilvusClient, name: str, index_name: str, timeout: float = 30) -> dict[str, object]:
    """Poll describe_index until the index is built on every sealed segment (builds are asynchronous:
    a flush seals segments whose indexes are built after it returns)."""
    deadline = time.monotonic() + timeout
    while True:
        d = client.describe_index(name, index_name)
        if d["state"] == "Finished":
            return d
        assert d["state"] in ("InProgress", "Unissued"), d
        assert time.monotonic() < deadline, d
        time.sleep(0.05)
