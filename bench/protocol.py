"""The issue-6 protocol through pymilvus `MilvusClient`, against any Milvus-protocol URI.

Steps: drop and create the collection (explicit schema: int64 `pk`, 128-d
`vec`, int64 `category`, varchar `tag`), insert in batches of 10,000, flush,
create HNSW and wait until its state is Finished, load, one search; then the
HNSW sweep over ef, the filtered sweep (`category == 3`), the scalar reads
(query by `tag`, get by ids, `count(*)`); then release, drop the index,
build IVF_FLAT, load and sweep nprobe; drop the collection.

Invariants:
- every search asks for `output_fields=["pk"]`, so every server returns the
  same payload (milvus-lite 3.2 returns every field, the vectors included,
  when output_fields is empty, unlike Milvus);
- `ingest.insert_s` sums the insert calls only (building the row dicts from
  numpy is not timed); `ingest.to_searchable_s` = insert + flush + index
  build + load + the first search;
- answers are checked (count(*) = N, rows per tag, ids found); a mismatch is
  written in the notes, the figures are still reported;
- any exception stops the run: the metrics measured so far are kept and
  `error` names the step and the message;
- a `ceiling` run (against bench/canned_server.py, a server that does no
  work) makes the same insert and search calls and times them the same
  way, but flushes, builds, loads and reads nothing, and records no recall:
  its answers are canned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.dataset import FILTER_CATEGORY, Dataset
from bench.measure import F32, latency_cell, sweep_metrics
from bench.metrics import peak_rss
from bench.plan import Plan, TargetResult, Tick

COLLECTION = "bench_issue6"
VECTOR = "vec"
QUERY_TAG_CODES = (42, 7, 123, 314, 555, 678, 901, 999)


def _schema(dim: int) -> Any:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("category", DataType.INT64)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    return schema


def _rows(data: Dataset, start: int, stop: int) -> list[dict[str, Any]]:
    vectors = data.vectors
    categories = data.category[start:stop].tolist()
    tags = data.tag_strings(start, stop)
    return [  # row dicts are what MilvusClient.insert takes; built outside the timed call
        {"pk": start + j, VECTOR: vectors[start + j], "category": categories[j], "tag": tags[j]}
        for j in range(stop - start)
    ]


#: the longest pause between two describe_index calls: the time an index is seen ready is late by
#: up to this much (0.5 s was up to 2.5% of a 20 s ingest-to-searchable at 100k)
POLL_MAX_S = 0.1


def _wait_index(client: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pause = 0.01
    while True:
        info = client.describe_index(COLLECTION, VECTOR)
        state = str(info.get("state", ""))
        if state.endswith("Finished") or state == "3":
            return
        if "Failed" in state:
            raise RuntimeError(f"index build failed: {info}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"index not built after {timeout_s:.0f}s: {info}")
        time.sleep(pause)
        pause = min(pause * 2, POLL_MAX_S)


def _wait_loaded(client: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        state = str(client.get_load_state(COLLECTION).get("state", ""))
        if state.endswith("Loaded"):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"collection not loaded after {timeout_s:.0f}s (state {state})")
        time.sleep(0.05)


def _index_params(client: Any, index_type: str, params: dict[str, int]) -> Any:
    ip = client.prepare_index_params()
    ip.add_index(field_name=VECTOR, index_type=index_type, metric_type="L2", params=params)
    return ip


class ClientProtocol:
    """One run of the protocol against `uri`; `server_pid` (if any) is sampled for peak RSS."""

    def __init__(
        self, name: str, uri: str, server_pid: int | None, plan: Plan, tick: Tick, *, ceiling: bool = False
    ) -> None:
        self.result = TargetResult(name)
        self._ceiling = ceiling
        self._uri = uri
        self._pid = server_pid
        self._plan = plan
        self._tick = tick
        self._step = "connect"
        self._k = 10

    def run(self, data: Dataset) -> TargetResult:
        self._k = data.spec.k
        try:
            self._run(data)
        except Exception as exc:
            self.result.error = f"{self._step}: {type(exc).__name__}: {exc}".strip()[:600]
        return self.result

    def _mark(self, step: str) -> None:
        self._step = step
        self._tick(f"{self.result.name}: {step}")

    def _rss(self, key: str) -> None:
        if self._pid is None:
            return
        rss = peak_rss(self._pid)
        if rss is not None:
            self.result.metrics[f"{key}_bytes"] = float(rss.own)
            self.result.metrics[f"{key}_with_children_bytes"] = float(rss.with_children)

    def _searcher(self, client: Any, params: dict[str, Any], filt: str) -> Callable[[F32], list[list[int]]]:
        k = self._k

        def search(queries: F32) -> list[list[int]]:
            res = client.search(
                COLLECTION,
                data=list(queries),
                limit=k,
                filter=filt,
                output_fields=["pk"],
                search_params={"metric_type": "L2", "params": params},
                anns_field=VECTOR,
            )
            return [list(hits.ids) for hits in res]

        return search

    def _run(self, data: Dataset) -> None:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self._uri, timeout=self._plan.call_timeout_s)
        try:
            self._step = "create collection"
            if client.has_collection(COLLECTION):
                client.drop_collection(COLLECTION)
            client.create_collection(COLLECTION, schema=_schema(data.spec.dim))
            self._mark("collection created")
            self._insert(client, data)
            if not self._ceiling:
                self._ingest(client, data)
            self._sweep(client, data, "hnsw", "ef", self._plan.efs, "", data.truth)
            filtered = f"category == {FILTER_CATEGORY}"
            self._sweep(client, data, "filtered", "ef", self._plan.efs, filtered, data.truth_filtered)
            if not self._ceiling:
                self._reads(client, data)
                self._ivf(client, data)
                self._rss("rss.end")
            self._step = "drop collection"
            client.drop_collection(COLLECTION)
            self._mark("done")
        finally:
            client.close()

    def _insert(self, client: Any, data: Dataset) -> None:
        plan, m = self._plan, self.result.metrics
        n = data.spec.n
        insert_s = 0.0
        for b in range(plan.insert_batches):
            start, stop = b * plan.insert_batch, min(n, (b + 1) * plan.insert_batch)
            rows = _rows(data, start, stop)
            self._step = f"insert rows {start}..{stop}"
            t = time.perf_counter()
            client.insert(COLLECTION, rows)
            insert_s += time.perf_counter() - t
            self._mark(f"inserted {stop:,} rows")
        m["ingest.insert_s"] = insert_s
        m["ingest.insert_rows_per_s"] = n / insert_s

    def _ingest(self, client: Any, data: Dataset) -> None:
        """After the inserts: flush, build HNSW, load, first search (ingest-to-searchable)."""
        plan, m = self._plan, self.result.metrics
        insert_s = m["ingest.insert_s"]
        self._step = "flush"
        t = time.perf_counter()
        client.flush(COLLECTION)
        m["ingest.flush_s"] = time.perf_counter() - t
        self._mark("flushed")

        self._step = "build HNSW"
        t = time.perf_counter()
        client.create_index(
            COLLECTION,
            _index_params(client, "HNSW", {"M": plan.hnsw_m, "efConstruction": plan.ef_construction}),
        )
        _wait_index(client, plan.call_timeout_s)
        m["ingest.index_s"] = time.perf_counter() - t
        self._mark("HNSW built")

        self._step = "load"
        t = time.perf_counter()
        client.load_collection(COLLECTION)
        _wait_loaded(client, plan.call_timeout_s)
        m["ingest.load_s"] = time.perf_counter() - t
        self._mark("loaded")

        self._step = "first search"
        t = time.perf_counter()
        first = self._searcher(client, {"ef": plan.efs[0]}, "")(data.queries[:1])
        first_s = time.perf_counter() - t
        if not first or not first[0]:
            self.result.notes.append("the first search after load returned no hits")
        m["ingest.to_searchable_s"] = (
            insert_s + m["ingest.flush_s"] + m["ingest.index_s"] + m["ingest.load_s"] + first_s
        )
        self._rss("rss.after_load")
        self._mark("searchable")

    def _sweep(
        self,
        client: Any,
        data: Dataset,
        family: str,
        knob: str,
        values: tuple[int, ...],
        filt: str,
        truth: Any,
    ) -> None:
        self._step = f"{family} sweep"
        points = [(value, self._searcher(client, {knob: value}, filt)) for value in values]
        self.result.metrics.update(
            sweep_metrics(
                family,
                knob,
                points,
                data.queries,
                truth,
                data.spec.k,
                self._plan.budget,
                self._mark,
                recall=not self._ceiling,  # canned answers: their recall means nothing
            )
        )

    def _reads(self, client: Any, data: Dataset) -> None:
        plan, m, notes = self._plan, self.result.metrics, self.result.notes
        repeat = plan.budget.repeat

        self._step = "query by tag"
        expected = {code: data.tag_count(code) for code in QUERY_TAG_CODES}
        wrong: list[str] = []

        def by_tag(i: int) -> None:
            code = QUERY_TAG_CODES[i % len(QUERY_TAG_CODES)]
            rows = client.query(
                COLLECTION, filter=f'tag == "g{code:03d}"', output_fields=["pk", "category", "tag"]
            )
            if len(rows) != expected[code]:
                wrong.append(f"tag g{code:03d}: {len(rows)} rows, expected {expected[code]}")

        lat = latency_cell(by_tag, plan.latency_requests, repeat)
        m["query_filter.p50_ms"], m["query_filter.p99_ms"] = lat.p50, lat.p99
        if wrong:
            notes.append(f"query by tag answered wrongly: {wrong[0]}")
        self._mark("query by tag")

        self._step = "get by ids"
        rng = np.random.default_rng(7)
        id_sets = [rng.choice(data.spec.n, plan.ids_per_get, replace=False).tolist() for _ in range(64)]
        missing: list[int] = []

        def get(i: int) -> None:
            ids = id_sets[i % len(id_sets)]
            rows = client.get(COLLECTION, ids=ids, output_fields=["pk", "category", "tag"])
            if len(rows) != len(ids):
                missing.append(len(ids) - len(rows))

        lat = latency_cell(get, plan.latency_requests, repeat)
        m["get.p50_ms"], m["get.p99_ms"] = lat.p50, lat.p99
        if missing:
            notes.append(f"get by ids missed rows in {len(missing)} requests")
        self._mark("get by ids")

        self._step = "count(*)"
        counts: list[int] = []

        def count(_: int) -> None:
            rows = client.query(COLLECTION, filter="", output_fields=["count(*)"])
            counts.append(int(rows[0]["count(*)"]))

        lat = latency_cell(count, plan.latency_requests, repeat)
        m["count.p50_ms"], m["count.p99_ms"] = lat.p50, lat.p99
        if any(c != data.spec.n for c in counts):
            notes.append(f"count(*) answered {sorted(set(counts))}, expected {data.spec.n}")
        self._mark("count(*)")

    def _ivf(self, client: Any, data: Dataset) -> None:
        plan, m = self._plan, self.result.metrics
        self._step = "switch to IVF_FLAT"
        t = time.perf_counter()
        client.release_collection(COLLECTION)
        client.drop_index(COLLECTION, VECTOR)
        client.create_index(COLLECTION, _index_params(client, "IVF_FLAT", {"nlist": plan.nlist}))
        _wait_index(client, plan.call_timeout_s)
        client.load_collection(COLLECTION)
        _wait_loaded(client, plan.call_timeout_s)
        m["ivf.build_s"] = time.perf_counter() - t
        self._mark("IVF_FLAT built")
        self._sweep(client, data, "ivf", "nprobe", plan.nprobes, "", data.truth)
