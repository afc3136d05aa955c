"""Durability: every acknowledged insert survives a SIGKILL of standalone.

A writer thread inserts batches and records the ids of every batch the
server acknowledged; the server is killed with SIGKILL at a random moment
during the load, started again on the same data directory, and every
acknowledged id must be there (invariant 2 of DESIGN.md).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from tests.fixtures.standalone import StandaloneProcess

DIM = 8
BATCH = 500


@pytest.mark.slow
def test_acknowledged_inserts_survive_sigkill(tmp_path: Path) -> None:
    server = StandaloneProcess(tmp_path / "data")
    server.start()
    try:
        client = MilvusClient(uri=server.uri, timeout=30)
        client.create_collection("durable", dimension=DIM, consistency_level="Strong")
        acked: list[int] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def write() -> None:
            rng = np.random.default_rng(0)
            next_id = 0
            while not stop.is_set():
                ids = list(range(next_id, next_id + BATCH))
                vecs = rng.standard_normal((BATCH, DIM)).astype(np.float32)
                try:
                    client.insert("durable", [{"id": i, "vector": v.tolist()} for i, v in zip(ids, vecs, strict=True)])
                except Exception as exc:  # the server died under us: expected
                    errors.append(exc)
                    return
                acked.extend(ids)
                next_id += BATCH

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(random.uniform(1.0, 3.0))
        server.kill()
        stop.set()
        writer.join(timeout=60)
        assert acked, "no insert was acknowledged before the kill"
        client.close()

        server.start()
        client = MilvusClient(uri=server.uri, timeout=30)
        total = client.query("durable", filter="id >= 0", output_fields=["id"], consistency_level="Strong")
        ids = [r["id"] for r in total]
        missing = set(acked) - set(ids)
        assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {sorted(missing)[:5]}"
        assert len(ids) == len(set(ids)), "a replayed insert was applied twice"
        count = client.query("durable", filter="", output_fields=["count(*)"], consistency_level="Strong")
        assert count[0]["count(*)"] == len(ids)
        client.close()
    finally:
        server.stop()
