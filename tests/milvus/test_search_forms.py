"""Every search form through pymilvus, checked against brute force computed in the test.

One collection (two shards, two partitions, sealed segments plus growing rows, a dynamic field) with
two vector fields: `v` (FLAT, L2: exact) and `w` (IVF_FLAT, IP, searched with nprobe = nlist: exact).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from pymilvus import (
    AnnSearchRequest,
    Collection,
    DataType,
    MilvusClient,
    MilvusException,
    RRFRanker,
    WeightedRanker,
    connections,
)

from tests.fixtures.standalone import StandaloneProcess, unique

DIM = 16
N_SEALED = 1500
N_GROWING = 500
N = N_SEALED + N_GROWING
NLIST = 8
EXACT_W = {"metric_type": "IP", "params": {"nprobe": NLIST}}
COLORS = np.array(["red", "green", "blue", "black"])


@dataclass
class Data:
    client: MilvusClient
    name: str
    v: np.ndarray
    w: np.ndarray
    g: np.ndarray
    part: np.ndarray  # 0: p1, 1: p2


def _rows(d: Data, ids: list[int]) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "v": d.v[i],
            "w": d.w[i],
            "g": int(d.g[i]),
            "tag": f"t{i % 5}",
            "color": str(COLORS[i % 4]),
        }
        for i in ids
    ]


@pytest.fixture(scope="module")
def data(standalone: StandaloneProcess) -> Iterator[Data]:
    client = MilvusClient(uri=standalone.uri, timeout=60)
    rng = np.random.default_rng(3)
    d = Data(
        client=client,
        name=unique("forms"),
        v=rng.standard_normal((N, DIM)).astype(np.float32),
        w=rng.standard_normal((N, DIM)).astype(np.float32),
        g=rng.integers(0, 12, N),
        part=np.arange(N) % 2,
    )
    schema = MilvusClient.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("w", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("g", DataType.INT64)
    schema.add_field("tag", DataType.VARCHAR, max_length=8)
    client.create_collection(d.name, schema=schema, num_shards=2, consistency_level="Strong")
    for p in ("p1", "p2"):
        client.create_partition(d.name, p)
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    params.add_index("w", index_type="IVF_FLAT", metric_type="IP", params={"nlist": NLIST})
    client.create_index(d.name, params)
    client.load_collection(d.name)
    for lo in range(0, N, 500):
        ids = np.arange(lo, lo + 500)
        for p, name in enumerate(("p1", "p2")):
            client.insert(d.name, _rows(d, ids[d.part[ids] == p].tolist()), partition_name=name)
        if lo + 500 <= N_SEALED:  # only the last flush waits: flushes are applied in order
            client.flush(d.name, _async=lo + 500 < N_SEALED)
    try:
        yield d
    finally:
        client.drop_collection(d.name)
        client.close()


def l2(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ((q[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)


def ip(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    return q.astype(np.float64) @ x.T.astype(np.float64)


def best(scores: np.ndarray, k: int, larger: bool, allowed: np.ndarray | None = None) -> np.ndarray:
    s = np.where(allowed, scores, np.nan) if allowed is not None else scores
    key = -s if larger else s
    key = np.where(np.isnan(key), np.inf, key)
    return np.argsort(key, axis=1, kind="stable")[:, :k]


def ids_of(res: list[list[dict[str, object]]]) -> list[list[int]]:
    return [[int(h["id"]) for h in hits] for hits in res]  # type: ignore[call-overload]


def test_many_queries_filter_outputs_and_offset(data: Data) -> None:
    q = np.random.default_rng(10).standard_normal((20, DIM)).astype(np.float32)
    allowed = (data.g % 3 == 0) | (data.g == 1)
    res = data.client.search(
        data.name,
        data=q.tolist(),
        anns_field="v",
        limit=7,
        offset=3,
        filter="g % 3 == 0 or g == 1",
        output_fields=["v", "g", "tag", "color"],
    )
    truth = l2(q, data.v)
    expected = best(truth, 10, False, allowed)[:, 3:]
    assert ids_of(res) == expected.tolist()
    for i, hits in enumerate(res):
        for h in hits:
            j = int(h["id"])
            ent = h["entity"]
            assert h["distance"] == pytest.approx(truth[i, j], rel=1e-4, abs=1e-4)
            np.testing.assert_allclose(ent["v"], data.v[j], rtol=1e-6)
            assert (ent["g"], ent["tag"], ent["color"]) == (data.g[j], f"t{j % 5}", COLORS[j % 4])


def test_partition_names_restrict_the_search(data: Data) -> None:
    q = data.v[:4] + 0.01
    for p, name in enumerate(("p1", "p2")):
        res = data.client.search(data.name, data=q.tolist(), anns_field="v", limit=5, partition_names=[name])
        assert ids_of(res) == best(l2(q, data.v), 5, False, data.part == p).tolist()
    both = data.client.search(
        data.name, data=q.tolist(), anns_field="v", limit=5, partition_names=["p1", "p2"]
    )
    assert ids_of(both) == best(l2(q, data.v), 5, False).tolist()


def test_anns_field_picks_the_vector_field_and_is_required(data: Data) -> None:
    q = data.w[10:13]
    res = data.client.search(data.name, data=q.tolist(), anns_field="w", limit=5, search_params=EXACT_W)
    assert ids_of(res) == best(ip(q, data.w), 5, True).tolist()
    with pytest.raises(MilvusException, match="anns_field"):
        data.client.search(data.name, data=q.tolist(), limit=5)
    with pytest.raises(MilvusException, match="nope"):
        data.client.search(data.name, data=q.tolist(), anns_field="nope", limit=5)


def test_search_params_and_round_decimal(data: Data) -> None:
    q = data.w[20:22]
    few = data.client.search(
        data.name, data=q.tolist(), anns_field="w", limit=50, search_params={"params": {"nprobe": 1}}
    )
    exhaustive = data.client.search(
        data.name, data=q.tolist(), anns_field="w", limit=50, search_params=EXACT_W
    )
    assert ids_of(exhaustive) == best(ip(q, data.w), 50, True).tolist()
    assert ids_of(few) != ids_of(exhaustive)  # one list of eight cannot hold all of the best 50
    # `ef` belongs to HNSW: an IVF index ignores it, as Milvus does
    data.client.search(
        data.name, data=q.tolist(), anns_field="w", limit=5, search_params={"params": {"ef": 64}}
    )
    rounded = data.client.search(
        data.name, data=q.tolist(), anns_field="w", limit=5, search_params=EXACT_W, round_decimal=2
    )
    for hits in rounded:
        for h in hits:
            assert h["distance"] == round(h["distance"], 2)


def test_consistency_levels(data: Data) -> None:
    c = data.client
    probe = np.full(DIM, 40.0, dtype=np.float32)  # far from everything else
    c.insert(data.name, [{"id": 10_000_001, "v": probe, "w": probe, "g": 0, "tag": "x"}], partition_name="p1")
    for level in ("Strong", "Session"):
        got = c.search(data.name, data=[probe.tolist()], anns_field="v", limit=1, consistency_level=level)
        assert ids_of(got) == [[10_000_001]], level
    for level in ("Bounded", "Eventually"):
        got = c.search(data.name, data=[probe.tolist()], anns_field="v", limit=1, consistency_level=level)
        assert len(got[0]) == 1
    c.delete(data.name, ids=[10_000_001])
    got = c.search(data.name, data=[probe.tolist()], anns_field="v", limit=1, consistency_level="Strong")
    assert ids_of(got) != [[10_000_001]]


@pytest.mark.parametrize("field", ["g", "tag"])
@pytest.mark.parametrize("strict", [False, True])
def test_grouping_search_is_the_exact_grouping(data: Data, field: str, strict: bool) -> None:
    q = np.random.default_rng(20).standard_normal((6, DIM)).astype(np.float32)
    limit, size = 4, 3
    res = data.client.search(
        data.name,
        data=q.tolist(),
        anns_field="v",
        limit=limit,
        group_by_field=field,
        group_size=size,
        strict_group_size=strict,
        output_fields=[field],
        filter="id < 1900",
    )
    values = data.g if field == "g" else np.array([f"t{i % 5}" for i in range(N)])
    allowed = np.arange(N) < 1900
    truth = l2(q, data.v)
    for i, hits in enumerate(res):
        order = [j for j in np.argsort(truth[i], kind="stable") if allowed[j]]
        groups: dict[object, list[int]] = {}
        for j in order:
            groups.setdefault(values[j], [])
            if len(groups[values[j]]) < size:
                groups[values[j]].append(int(j))
        expected = [j for members in list(groups.values())[:limit] for j in members]
        assert [int(h["id"]) for h in hits] == expected
        assert all(h["entity"][field] == values[int(h["id"])] for h in hits)


def test_grouping_with_small_groups_still_fills_groups_exactly(data: Data) -> None:
    """Groups that hold fewer rows than group_size must still come back complete."""
    q = data.v[100:102]
    res = data.client.search(
        data.name,
        data=q.tolist(),
        anns_field="v",
        limit=3,
        group_by_field="tag",
        group_size=500,
        filter="id < 60",
    )
    for i, hits in enumerate(res):
        d = l2(q[i : i + 1], data.v[:60])[0]
        order = np.argsort(d, kind="stable")
        tags = list(dict.fromkeys(j % 5 for j in order))[:3]  # tags by their best row
        expected = [int(j) for t in tags for j in order if j % 5 == t]  # all 12 rows of each
        assert [int(h["id"]) for h in hits] == expected


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_range_search_semantics(data: Data, metric: str) -> None:
    field, x = ("v", data.v) if metric == "L2" else ("w", data.w)
    q = x[30:33]
    truth = l2(q, x) if metric == "L2" else ip(q, x)
    srt = np.sort(truth, axis=1)
    # bounds halfway between neighbouring scores: no row sits on a bound
    lo_rank, hi_rank = (5, 60) if metric == "L2" else (N - 60, N - 5)
    lo = float((srt[0, lo_rank] + srt[0, lo_rank + 1]) / 2)
    hi = float((srt[0, hi_rank] + srt[0, hi_rank + 1]) / 2)
    radius, range_filter = (hi, lo) if metric == "L2" else (lo, hi)
    params = {
        "metric_type": metric,
        "params": {"radius": radius, "range_filter": range_filter, "nprobe": NLIST},
    }
    res = data.client.search(data.name, data=q.tolist(), anns_field=field, limit=1000, search_params=params)
    for i, hits in enumerate(res):
        inside = (truth[i] >= lo) & (truth[i] < hi) if metric == "L2" else (truth[i] > lo) & (truth[i] <= hi)
        assert sorted(int(h["id"]) for h in hits) == sorted(np.flatnonzero(inside).tolist())
        dist = [h["distance"] for h in hits]
        assert dist == sorted(dist, reverse=metric == "IP")
    # radius alone: everything closer than it, best first, at most limit
    res = data.client.search(
        data.name,
        data=q[:1].tolist(),
        anns_field=field,
        limit=10,
        search_params={"params": {"radius": radius, "nprobe": NLIST}},
    )
    assert ids_of(res) == best(truth[:1], 10, metric == "IP").tolist()
    bad = {"params": {"radius": range_filter, "range_filter": radius}}
    with pytest.raises(MilvusException, match="range_filter"):
        data.client.search(data.name, data=q.tolist(), anns_field=field, limit=10, search_params=bad)


def test_search_iterator_v2_returns_every_row_once_in_order(
    data: Data, caplog: pytest.LogCaptureFixture
) -> None:
    q = data.v[5] + 0.5
    caplog.set_level(logging.WARNING)
    it = data.client.search_iterator(
        data.name, data=[q.tolist()], batch_size=128, anns_field="v", filter="g != 3", output_fields=["g"]
    )
    assert type(it).__name__ == "SearchIteratorV2"
    seen: list[int] = []
    dist: list[float] = []
    while True:
        page = it.next()
        if not page:
            break
        assert all(h["entity"]["g"] != 3 for h in page)
        seen.extend(int(h["id"]) for h in page)
        dist.extend(float(h["distance"]) for h in page)
    it.close()
    allowed = data.g != 3
    live = [i for i in range(N) if allowed[i]]
    assert len(seen) == len(set(seen)) == len(live)
    assert set(seen) == set(live)
    assert dist == sorted(dist)
    np.testing.assert_allclose(dist, np.sort(l2(q[None, :], data.v)[0][allowed]), rtol=1e-4, atol=1e-4)
    assert not [r for r in caplog.records if "search_iterator" in r.getMessage().lower()]


@pytest.mark.filterwarnings("ignore::pymilvus.decorators.PyMilvusDeprecationWarning")  # the ORM is deprecated
def test_search_iterator_v1_through_the_orm_uses_range_search(
    standalone: StandaloneProcess, data: Data
) -> None:
    alias = unique("orm")
    connections.connect(alias=alias, uri=standalone.uri)
    try:
        coll = Collection(data.name, using=alias)
        q = data.w[7]
        it = coll.search_iterator(
            data=[q.tolist()],
            anns_field="w",
            param={"metric_type": "IP", "params": {"nprobe": NLIST}},
            batch_size=200,
            limit=700,
            expr="g < 6",
        )
        seen: list[int] = []
        scores: list[float] = []
        while True:
            page = it.next()
            if not page:
                break
            seen.extend(int(h.id) for h in page)
            scores.extend(float(h.distance) for h in page)
        it.close()
    finally:
        connections.disconnect(alias)
    truth = ip(q[None, :], data.w)[0]
    allowed = np.flatnonzero(data.g < 6)
    expected = allowed[np.argsort(-truth[allowed], kind="stable")][:700]
    assert len(seen) == len(set(seen)) == 700
    assert set(seen) == set(expected.tolist())
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("ranker", ["rrf", "weighted", "weighted_raw"])
def test_hybrid_search_fuses_two_vector_fields(data: Data, ranker: str) -> None:
    qv = data.v[40:43] + 0.05
    qw = data.w[50:53]
    reqs = [
        AnnSearchRequest(qv.tolist(), "v", {"metric_type": "L2"}, limit=15, expr="g != 2"),
        AnnSearchRequest(qw.tolist(), "w", EXACT_W, limit=20),
    ]
    weights = (0.7, 0.3)
    rank = {
        "rrf": RRFRanker(30),
        "weighted": WeightedRanker(*weights),
        "weighted_raw": WeightedRanker(*weights, norm_score=False),
    }[ranker]
    res = data.client.hybrid_search(data.name, reqs, rank, limit=8, output_fields=["g", "id"], offset=2)
    sv, sw = l2(qv, data.v), ip(qw, data.w)
    sub_v = best(sv, 15, False, data.g != 2)
    sub_w = best(sw, 20, True)
    for i, hits in enumerate(res):
        fused: dict[int, float] = {}
        for rank_i, j in enumerate(sub_v[i]):
            s = sv[i, j]
            c = {
                "rrf": 1 / (30 + rank_i + 1),
                "weighted": weights[0] * (1 - 2 * np.arctan(s) / np.pi),
                "weighted_raw": weights[0] * -s,
            }[ranker]
            fused[int(j)] = fused.get(int(j), 0.0) + c
        for rank_i, j in enumerate(sub_w[i]):
            s = sw[i, j]
            c = {
                "rrf": 1 / (30 + rank_i + 1),
                "weighted": weights[1] * (0.5 + np.arctan(s) / np.pi),
                "weighted_raw": weights[1] * s,
            }[ranker]
            fused[int(j)] = fused.get(int(j), 0.0) + c
        order = sorted(fused, key=lambda j: (-fused[j], j))[2:10]
        got = [int(h["id"]) for h in hits]
        assert [round(fused[j], 4) for j in got] == [round(fused[j], 4) for j in order]
        for h in hits:
            assert h["distance"] == pytest.approx(fused[int(h["id"])], rel=1e-4, abs=1e-6)
            assert h["entity"]["g"] == data.g[int(h["id"])]
            assert h["entity"]["id"] == h["id"]  # the primary key, asked as an output field


def test_hybrid_search_refuses_bad_rankers(data: Data) -> None:
    reqs = [
        AnnSearchRequest(data.v[:1].tolist(), "v", {}, limit=5),
        AnnSearchRequest(data.w[:1].tolist(), "w", {}, limit=5),
    ]
    with pytest.raises(MilvusException, match="weights"):
        data.client.hybrid_search(data.name, reqs, WeightedRanker(0.5), limit=5)
    with pytest.raises(MilvusException, match="range"):
        data.client.hybrid_search(data.name, reqs, WeightedRanker(0.5, 1.5), limit=5)
