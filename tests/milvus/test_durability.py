"""Durability: every acknowledged write survives a SIGKILL of standalone.

A writer thread inserts (and, in the second round, deletes) in batches and
records every batch the server acknowledged; the server is killed with
SIGKILL at a random moment during the load and started again on the same
data directory, twice. Every acknowledged insert must be there, every
acknowledged delete must have taken effect, and nothing may be applied
twice (invariant 2 of DESIGN.md).
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


def _load_then_kill(
    server: StandaloneProcess, first_id: int, deletable: list[int]
) -> tuple[list[int], list[int]]:
    """Write until killed; return (acknowledged inserted ids, acknowledged deleted ids)."""
    client = MilvusClient(uri=server.uri, timeout=30)
    inserted: list[int] = []
    deleted: list[int] = []
    stop = threading.Event()

    def write() -> None:
        rng = np.random.default_rng(first_id)
        next_id = first_id
        to_delete = list(deletable)
        while not stop.is_set():
            ids = list(range(next_id, next_id + BATCH))
            vecs = rng.standard_normal((BATCH, DIM)).astype(np.float32)
            try:
                client.insert(
                    "durable", [{"id": i, "vector": v.tolist()} for i, v in zip(ids, vecs, strict=True)]
                )
                inserted.extend(ids)
                next_id += BATCH
                if to_delete:
                    victims, to_delete = to_delete[:50], to_delete[50:]
                    client.delete("durable", ids=victims)
                    deleted.extend(victims)
            except Exception:  # the server died under us: expected
                return

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(random.uniform(1.0, 3.0))
    server.kill()
    stop.set()
    writer.join(timeout=90)
    client.close()
    assert inserted, "no insert was acknowledged before the kill"
    return inserted, deleted


def _stored_ids(server: StandaloneProcess) -> list[int]:
    try:
        return _read_ids(server)
    except Exception as exc:  # say what the restarted server did (one CI run found it unreachable)
        alive = server.proc is not None and server.proc.poll() is None
        raise AssertionError(
            f"reading after a restart failed ({exc}); server alive: {alive}; its log:\n{server.log_tail(80)}"
        ) from exc


def _read_ids(server: StandaloneProcess) -> list[int]:
    client = MilvusClient(uri=server.uri, timeout=30)
    try:
        rows = client.query("durable", filter="id >= 0", output_fields=["id"], consistency_level="Strong")
        count = client.query("durable", filter="", output_fields=["count(*)"], consistency_level="Strong")
        ids = [r["id"] for r in rows]
        assert count[0]["count(*)"] == len(ids)
        return ids
    finally:
        client.close()


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    server = StandaloneProcess(tmp_path / "data")
    server.start()
    try:
        setup = MilvusClient(uri=server.uri, timeout=30)
        setup.create_collection("durable", dimension=DIM, consistency_level="Strong")
        setup.close()

        first, _ = _load_then_kill(server, 0, [])
        server.start()
        ids = _stored_ids(server)
        assert not set(first) - set(ids), "acknowledged inserts lost after the first kill"
        assert len(ids) == len(set(ids)), "a replayed insert was applied twice"

        second, deleted = _load_then_kill(server, 10_000_000, first[: 50 * 20])
        server.start()
        ids = _stored_ids(server)
        present = set(ids)
        lost = (set(first) | set(second)) - set(deleted) - present
        assert not lost, f"{len(lost)} acknowledged rows lost, e.g. {sorted(lost)[:5]}"
        assert not present & set(deleted), "an acknowledged delete was undone by the restart"
        assert len(ids) == len(present), "a replayed insert was applied twice"
    finally:
        server.stop()
