"""The canned server (the client's ceiling) driven by the real pymilvus client through the protocol.

A real child process on a free loopback port; tiny data; no timing thresholds:
what is checked is that every call of the ceiling run is answered in the
shape pymilvus expects, and that the run records rates but no recall.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.dataset import Dataset, DatasetSpec, build
from bench.measure import Budget
from bench.plan import Plan, nlist_for
from bench.protocol import ClientProtocol
from bench.targets import canned_server

TINY = DatasetSpec(n=2_500, nq=20, dim=16, clusters=20, spread=1.0)


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return build(TINY)


def test_a_ceiling_run_answers_every_call_and_records_rates_only(tmp_path: Path, tiny: Dataset) -> None:
    budget = Budget(budget_s=0.05, min_queries=3, repeat=1, threads=3, batch=7, warmup=1)
    plan = Plan(TINY.n, (16, 64), (4,), nlist_for(TINY.n), budget, insert_batch=1_000)
    ticks: list[str] = []
    with canned_server(tmp_path, timeout_s=30) as endpoint:
        result = ClientProtocol("canned", endpoint.uri, endpoint.pid, plan, ticks.append, ceiling=True).run(
            tiny
        )
    assert result.error is None, result.error
    assert len(ticks) == plan.steps(client=True, ceiling=True)
    m = result.metrics
    assert m["ingest.insert_rows_per_s"] > 0 and m["ingest.insert_s"] > 0
    for family in ("hnsw", "filtered"):
        for ef in plan.efs:
            assert all(m[f"{family}.ef{ef}.{r}"] > 0 for r in ("qps_1", "qps_8", "qps_batch"))
            assert f"{family}.ef{ef}.recall" not in m  # canned answers: no recall
    assert not any(k.startswith(("ingest.flush", "ingest.index", "ivf.", "count.", "rss.")) for k in m)


def test_work_us_holds_each_query_that_long_before_the_canned_answer() -> None:
    import asyncio
    import time

    from bench.canned_server import CannedMilvus
    from pymilvus.grpc_gen import common_pb2, milvus_pb2

    request = milvus_pb2.SearchRequest(
        collection_name="c", nq=2, search_params=[common_pb2.KeyValuePair(key="topk", value="3")]
    )
    started = time.perf_counter()
    answer = asyncio.run(CannedMilvus(work_us=20_000).Search(request, None))
    held = time.perf_counter() - started
    assert held >= 2 * 0.020  # 20 ms per query, 2 queries: a lower bound, never a speed threshold
    assert list(answer.results.topks) == [3, 3] and len(answer.results.ids.int_id.data) == 6
