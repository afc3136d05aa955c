"""Results are the exact global top-k over shards, sealed segments and growing rows, deletes and upserts
included, also while rows are written, segments sealed and indexes built (index handoff)."""

from __future__ import annotations

import math
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from tests.fixtures.standalone import StandaloneProcess, unique
from tests.milvus.helpers import wait_finished

DIM = 24
METRICS = {"l2": "L2", "ip": "IP", "cos": "COSINE"}


def scores(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "COSINE":
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
        x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
    if metric == "L2":
        return ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    return q64 @ x64.T


def expected_ids(
    q: np.ndarray, model: dict[int, np.ndarray], metric: str, k: int, offset: int = 0
) -> list[list[int]]:
    ids = np.array(sorted(model), dtype=np.int64)
    x = np.stack([model[i] for i in ids])
    s = scores(q, x, metric)
    key = -s if metric in ("IP", "COSINE") else s
    order = np.argsort(key, axis=1, kind="stable")[:, offset : offset + k]
    return ids[order].tolist()


def hit_ids(res: list[list[dict[str, object]]]) -> list[list[int]]:
    return [[int(h["id"]) for h in hits] for hits in res]  # type: ignore[call-overload]


@pytest.mark.parametrize("index", ["none", "FLAT"])
def test_exact_global_top_k_with_deletes_and_upserts(client: MilvusClient, index: str) -> None:
    rng = np.random.default_rng(5)
    name = unique("exact")
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for f in METRICS:
        schema.add_field(f, DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema, num_shards=2, consistency_level="Strong")
    if index != "none":
        params = client.prepare_index_params()
        for f, m in METRICS.items():
            params.add_index(f, index_type=index, metric_type=m)
        client.create_index(name, params)
    client.load_collection(name)  # without an index, the metric comes with each search
    model: dict[int, np.ndarray] = {}
    next_id = 0
    for batch in range(4):  # three sealed flushes per shard, then growing rows
        v = rng.standard_normal((500, DIM)).astype(np.float32)
        client.insert(name, [{"id": next_id + i, **{f: v[i] for f in METRICS}} for i in range(500)])
        model.update({next_id + i: v[i] for i in range(500)})
        next_id += 500
        if batch < 3:  # seal; only the last flush waits (flushes are applied in order)
            client.flush(name, _async=batch < 2)
    q = rng.standard_normal((25, DIM)).astype(np.float32)
    # delete rows that rank high for the queries, in sealed segments and in growing data
    victims = sorted({i for row in expected_ids(q, model, "L2", 3) for i in row})
    client.delete(name, ids=victims)
    for i in victims:
        del model[i]
    # upsert rows to sit right next to some queries: the new version must win, the old one vanish
    moved = [7, 600, 1234, 1900]
    new_v = q[: len(moved)] + 0.001
    client.upsert(name, [{"id": i, **{f: new_v[j] for f in METRICS}} for j, i in enumerate(moved)])
    model.update({i: new_v[j] for j, i in enumerate(moved)})
    if index != "none":
        client.flush(name)  # the upserts and deletes reach sealed segments too
        for f in METRICS:
            wait_finished(client, name, f)
    for f, metric in METRICS.items():
        res = client.search(
            name, data=q.tolist(), anns_field=f, limit=10, offset=4, search_params={"metric_type": metric}
        )
        assert hit_ids(res) == expected_ids(q, model, metric, 10, offset=4), f
        top = client.search(
            name, data=q[: len(moved)].tolist(), anns_field=f, limit=1, search_params={"metric_type": metric}
        )
        assert hit_ids(top) == [[i] for i in moved]
        found = {i for row in hit_ids(res) for i in row}
        assert not found & set(victims)
    client.drop_collection(name)


@dataclass
class OtherWriter:
    """Writes ids >= BASE concurrently and remembers when each write was acknowledged."""

    client: MilvusClient
    name: str
    rng: np.random.Generator
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: id -> [(version, vector, acked at)], and id -> deletion acked at
    versions: dict[int, list[tuple[int, np.ndarray, float]]] = field(default_factory=dict)
    deleted: dict[int, float] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)

    BASE = 1_000_000

    def run(self) -> None:
        try:
            next_id = self.BASE
            while not self.stop.is_set():
                v = self.rng.standard_normal((20, DIM)).astype(np.float32)
                # a search may see a write before its acknowledgement reaches us: record it as
                # pending (acknowledged at +inf) first, then stamp the acknowledgement
                with self.lock:
                    for i in range(20):
                        self.versions[next_id + i] = [(0, v[i], math.inf)]
                self.client.insert(self.name, [{"id": next_id + i, "v": v[i], "ver": 0} for i in range(20)])
                acked = time.monotonic()
                with self.lock:
                    for i in range(20):
                        self.versions[next_id + i] = [(0, v[i], acked)]
                    alive = [
                        i
                        for i in self.versions
                        if i not in self.deleted and self.versions[i][-1][2] < math.inf
                    ]
                next_id += 20
                pick = self.rng.choice(alive, size=min(8, len(alive)), replace=False).tolist()
                gone, moved = pick[:4], pick[4:]
                self.client.delete(self.name, ids=gone)
                acked = time.monotonic()
                with self.lock:
                    for i in gone:
                        self.deleted[i] = acked
                with self.lock:
                    nexts = [(i, self.versions[i][-1][0] + 1) for i in moved]
                u = self.rng.standard_normal((len(moved), DIM)).astype(np.float32)
                with self.lock:
                    for j, (i, ver) in enumerate(nexts):
                        self.versions[i].append((ver, u[j], math.inf))
                self.client.upsert(
                    self.name, [{"id": i, "v": u[j], "ver": ver} for j, (i, ver) in enumerate(nexts)]
                )
                acked = time.monotonic()
                with self.lock:
                    for j, (i, ver) in enumerate(nexts):
                        self.versions[i][-1] = (ver, u[j], acked)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def check_hit(self, pk: int, ver: int, distance: float, q: np.ndarray, started: float) -> None:
        """A hit must be a version that was current at some moment after the search started."""
        with self.lock:
            history = list(self.versions.get(pk, []))
            deleted_at = self.deleted.get(pk)
        assert history, f"row {pk} was never written"
        assert deleted_at is None or deleted_at > started, f"row {pk} was deleted before the search began"
        current = [v for v, _, at in history if at <= started]
        assert not current or ver >= current[-1], f"row {pk}: version {ver} was superseded before the search"
        vec = next(vec for v, vec, _ in history if v == ver)
        assert distance == pytest.approx(float(((q - vec) ** 2).sum()), rel=1e-4, abs=1e-4)


def test_results_stay_exact_while_writing_sealing_and_building_indexes(standalone: StandaloneProcess) -> None:
    clients = [MilvusClient(uri=standalone.uri, timeout=60) for _ in range(3)]
    main, flusher_client, writer_client = clients
    rng = np.random.default_rng(8)
    name = unique("conc")
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("ver", DataType.INT64)
    main.create_collection(name, schema=schema, num_shards=2, consistency_level="Strong")
    params = main.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    main.create_index(name, params)
    main.load_collection(name)
    writer = OtherWriter(writer_client, name, np.random.default_rng(9))
    stop_flushing = threading.Event()
    flush_errors: list[BaseException] = []

    def flush_loop() -> None:
        try:
            while not stop_flushing.wait(0.2):
                flusher_client.flush(name, _async=True)  # seals segments: index builds and handoffs follow
        except BaseException as exc:
            flush_errors.append(exc)

    threads = [threading.Thread(target=writer.run), threading.Thread(target=flush_loop)]
    for t in threads:
        t.start()
    model: dict[int, np.ndarray] = {}
    next_id = 0
    try:
        for _ in range(40):
            v = rng.standard_normal((60, DIM)).astype(np.float32)
            main.insert(name, [{"id": next_id + i, "v": v[i], "ver": 0} for i in range(60)])
            model.update({next_id + i: v[i] for i in range(60)})
            next_id += 60
            alive = sorted(model)
            gone = rng.choice(alive, size=10, replace=False).tolist()
            main.delete(name, ids=gone)
            for i in gone:
                del model[i]
            moved = rng.choice(sorted(model), size=10, replace=False).tolist()
            u = rng.standard_normal((10, DIM)).astype(np.float32)
            main.upsert(name, [{"id": i, "v": u[j], "ver": 1} for j, i in enumerate(moved)])
            model.update({i: u[j] for j, i in enumerate(moved)})
            q = rng.standard_normal((5, DIM)).astype(np.float32)
            mine = main.search(
                name, data=q.tolist(), anns_field="v", limit=10, filter=f"id < {OtherWriter.BASE}"
            )
            assert hit_ids(mine) == expected_ids(q, model, "L2", 10)
            started = time.monotonic()
            theirs = main.search(
                name,
                data=q.tolist(),
                anns_field="v",
                limit=10,
                filter=f"id >= {OtherWriter.BASE}",
                output_fields=["ver"],
            )
            for i, hits in enumerate(theirs):
                for h in hits:
                    writer.check_hit(
                        int(h["id"]), int(h["entity"]["ver"]), float(h["distance"]), q[i], started
                    )
    finally:
        writer.stop.set()
        stop_flushing.set()
        for t in threads:
            t.join(timeout=30)
    assert not writer.errors and not flush_errors, (writer.errors, flush_errors)
    main.flush(name)
    wait_finished(main, name, "v")
    q = rng.standard_normal((5, DIM)).astype(np.float32)
    after = main.search(name, data=q.tolist(), anns_field="v", limit=10, filter=f"id < {OtherWriter.BASE}")
    assert hit_ids(after) == expected_ids(q, model, "L2", 10)
    main.drop_collection(name)
    for c in clients:
        c.close()


def _merged_searches(standalone: StandaloneProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{standalone.metrics_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("pelagos_querynode_merged_requests_total "):
                return float(line.split()[1])
    return 0.0


def test_concurrent_searches_each_get_their_own_exact_answer(
    client: MilvusClient, standalone: StandaloneProcess
) -> None:
    """Many client threads at once: the query node merges searches of one shape into batches
    (querynode/merged_search.py); every answer must still be exactly its own."""
    rng = np.random.default_rng(17)
    name = unique("concurrent")
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("n", DataType.INT64)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(name, params)
    client.load_collection(name)
    x = rng.standard_normal((1500, DIM)).astype(np.float32)
    client.insert(name, [{"id": i, "v": x[i], "n": i % 3} for i in range(1500)])
    model = {i: x[i] for i in range(1500)}
    odd = {i: x[i] for i in range(1500) if i % 3 == 1}
    failures: list[str] = []
    merged_before = _merged_searches(standalone)

    def worker(seed: int) -> None:
        r = np.random.default_rng(seed)
        for round_ in range(40):
            q = r.standard_normal((1 + round_ % 3, DIM)).astype(np.float32)
            filtered = round_ % 4 == 0
            res = client.search(
                name, data=q.tolist(), anns_field="v", limit=7, output_fields=["n"],
                filter="n == 1" if filtered else "",
            )  # fmt: skip
            want = expected_ids(q, odd if filtered else model, "L2", 7)
            if hit_ids(res) != want:
                failures.append(f"worker {seed} round {round_}: {hit_ids(res)} != {want}")
            if any(int(h["entity"]["n"]) != int(h["id"]) % 3 for hits in res for h in hits):  # type: ignore[index]
                failures.append(f"worker {seed} round {round_}: output field of another row")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:3]
    assert _merged_searches(standalone) > merged_before  # batches did form
    client.drop_collection(name)
