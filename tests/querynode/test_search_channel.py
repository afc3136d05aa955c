"""Shard search over the segments of one channel, in process and without I/O: exact top-k across
segments, grouping proven exact, iterator pages with ties, range semantics of every metric, refined
quantised indexes, and parameters refused before any segment is searched."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pyarrow as pa
import pytest

from pelagos.errors import IndexParamError, InvalidArgumentError
from pelagos.index import IndexSpec, create_index
from pelagos.interfaces.hit_keys import key_at, keys_list
from pelagos.interfaces.roles import ChannelCheckpoint, ChannelView, ShardSearch, ShardSearchResult
from pelagos.interfaces.types import CollectionInfo, ConsistencyLevel, IndexInfo, IndexState
from pelagos.querynode.executor import search_channel
from pelagos.querynode.segment_view import SegmentView
from pelagos.querynode.served_channel import ServedChannel
from pelagos.schema import CollectionSchema, DataType, FieldSchema
from pelagos.schema.arrow import vector_column

DIM = 8
BITS = 32
SCHEMA = CollectionSchema(
    [
        FieldSchema("id", DataType.INT64, is_primary=True, field_id=100),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM, field_id=101),
        FieldSchema("b", DataType.BINARY_VECTOR, dim=BITS, field_id=102),
        FieldSchema("n", DataType.INT64, field_id=103),
    ]
)


def channel(index_specs: list[IndexInfo] | None = None) -> ServedChannel:
    info = CollectionInfo(
        db="default", name="c", collection_id=1, schema=SCHEMA, shards_num=1, channels=["ch"],
        consistency_level=ConsistencyLevel.STRONG, properties={}, aliases=[], partitions=[],
        created_ts=1, updated_ts=1,
    )  # fmt: skip
    view = ChannelView(info, "ch", [], [], ChannelCheckpoint("ch", 0, 0), index_specs=index_specs or [])
    # broker and objects are not touched before start(): these tests use no I/O
    return ServedChannel(view, broker=cast(Any, None), objects=cast(Any, None))


def segment(segment_id: int, ids: np.ndarray, v: np.ndarray, b: np.ndarray, n: np.ndarray) -> SegmentView:
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "v": vector_column(v, DataType.FLOAT_VECTOR, DIM),
            "b": vector_column(b, DataType.BINARY_VECTOR, BITS),
            "n": pa.array(n, pa.int64()),
            "_ts": pa.array(np.full(len(ids), 10, np.uint64)),
        }
    )
    return SegmentView(
        segment_id=segment_id, partition_ids=np.zeros(len(ids), np.int64), table=table, schema=SCHEMA
    )


def filled(
    n_segments: int, rows: int, seed: int = 0, groups: int = 10
) -> tuple[ServedChannel, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    total = n_segments * rows
    data = {
        "id": rng.permutation(total).astype(np.int64) + 1000,
        "v": rng.standard_normal((total, DIM)).astype(np.float32),
        "b": rng.integers(0, 256, (total, BITS // 8), dtype=np.uint8),
        "n": rng.integers(0, groups, total).astype(np.int64),
    }
    ch = channel()
    for s in range(n_segments):
        sl = slice(s * rows, (s + 1) * rows)
        ch.sealed[s + 1] = segment(s + 1, data["id"][sl], data["v"][sl], data["b"][sl], data["n"][sl])
    return ch, data


def request(queries: np.ndarray, limit: int, metric: str = "L2", field: str = "v", **kw: Any) -> ShardSearch:
    return ShardSearch(
        collection_id=1, channel="ch", partition_ids=[], vectors=queries, field_name=field, limit=limit,
        metric_type=metric, params=kw.pop("params", {}), filter=kw.pop("filter", ""), filter_params={},
        output_fields=kw.pop("output_fields", []), read_ts=0, guarantee_ts=0, **kw,
    )  # fmt: skip


def true_scores(q: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    if metric in ("HAMMING", "JACCARD"):
        qb, xb = np.unpackbits(q, axis=1).astype(bool), np.unpackbits(x, axis=1).astype(bool)
        inter = (qb[:, None] & xb[None]).sum(-1).astype(np.float64)
        union = (qb[:, None] | xb[None]).sum(-1).astype(np.float64)
        if metric == "HAMMING":
            return union - inter
        return np.where(union > 0, 1 - inter / np.maximum(union, 1), 0.0)
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "COSINE":
        q64 /= np.linalg.norm(q64, axis=1, keepdims=True)
        x64 /= np.linalg.norm(x64, axis=1, keepdims=True)
    if metric == "L2":
        return ((q64[:, None] - x64[None]) ** 2).sum(-1)
    return q64 @ x64.T


def per_query(r: ShardSearchResult) -> list[list[int]]:
    ids = keys_list(r.pks)
    bounds = np.concatenate([[0], np.cumsum(r.topks)])
    return [ids[bounds[i] : bounds[i + 1]] for i in range(len(r.topks))]


async def test_top_k_is_exact_across_segments() -> None:
    ch, d = filled(4, 300)
    q = np.random.default_rng(1).standard_normal((6, DIM)).astype(np.float32)
    r = await search_channel(ch, request(q, 12, output_fields=["n"]))
    truth = true_scores(q, d["v"], "L2")
    expected = d["id"][np.argsort(truth, axis=1, kind="stable")[:, :12]]
    assert per_query(r) == expected.tolist()
    n_of = dict(zip(d["id"].tolist(), d["n"].tolist(), strict=True))
    assert r.fields.column("n").to_pylist() == [n_of[i] for i in keys_list(r.pks)]


@pytest.mark.parametrize("group_size", [1, 3, 40])
async def test_grouping_is_the_exact_grouping_even_for_rare_groups(group_size: int) -> None:
    # group 0 is common everywhere; groups 1..9 are rare and far from the query in every segment
    ch, d = filled(5, 200, seed=2, groups=10)
    q = np.random.default_rng(3).standard_normal((3, DIM)).astype(np.float32)
    r = await search_channel(ch, request(q, 6, group_by_field="n", group_size=group_size))
    truth = true_scores(q, d["v"], "L2")
    assert r.group_values is not None and r.unseen_bound is not None
    for i, got in enumerate(per_query(r)):
        order = np.argsort(truth[i], kind="stable")
        groups: dict[int, list[int]] = {}
        for j in order:
            members = groups.setdefault(int(d["n"][j]), [])
            if len(members) < group_size:
                members.append(int(d["id"][j]))
        assert got == [pk for members in list(groups.values())[:6] for pk in members]


async def test_iterator_pages_return_every_row_once_in_score_then_pk_order() -> None:
    ch, d = filled(3, 150, seed=4)
    # many ties: every vector repeated in other rows (and other segments)
    for s, seg in ch.sealed.items():
        v = np.repeat(d["v"][:30], 5, axis=0)
        ch.sealed[s] = segment(s, seg.pks.to_numpy(), v, d["b"][:150], d["n"][:150])
    q = d["v"][:1] + 0.1
    seen: list[int] = []
    scores: list[float] = []
    bound: float | None = None
    after: Any = None
    while True:
        r = await search_channel(
            ch,
            request(
                q, 37, iterator=True, iterator_bound=bound, iterator_after_pk=after, iterator_skip=len(seen)
            ),
        )
        if not len(r.scores):
            break
        seen.extend(keys_list(r.pks))
        scores.extend(r.scores.tolist())
        bound, after = float(r.scores[-1]), key_at(r.pks, -1)
    assert len(seen) == len(set(seen)) == 450
    pairs = list(zip(scores, seen, strict=True))
    assert pairs == sorted(pairs)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE", "HAMMING", "JACCARD"])
@pytest.mark.parametrize("indexed", [False, True])
async def test_range_search_follows_each_metrics_semantics(metric: str, indexed: bool) -> None:
    ch, d = filled(2, 250, seed=5)
    field = "b" if metric in ("HAMMING", "JACCARD") else "v"
    x = d[field]
    q = x[:3].copy() if field == "b" else x[:3] + 0.05
    truth = true_scores(q, x, metric)
    larger = metric in ("IP", "COSINE")
    values = np.unique(truth[0])
    lo, hi = values[len(values) // 5], values[len(values) // 2]
    if field == "v":  # float scores: bounds between two rows' scores, so rounding cannot matter
        lo, hi = (lo + values[len(values) // 5 + 1]) / 2, (hi + values[len(values) // 2 + 1]) / 2
    radius, range_filter = (lo, hi) if larger else (hi, lo)
    if indexed:
        for seg in ch.sealed.values():
            binary = field == "b"
            spec = IndexSpec.parse(
                "BIN_FLAT" if binary else "FLAT", metric, None, BITS if binary else DIM, binary
            )
            index = create_index(spec)
            index.build(seg.vectors(field))
            seg.indexes[field] = index
    params = {"radius": float(radius), "range_filter": float(range_filter)}
    r = await search_channel(ch, request(q, 1000, metric, field, params=params))
    for i, got in enumerate(per_query(r)):
        t = truth[i]
        inside = (t > radius) & (t <= range_filter) if larger else (t >= range_filter) & (t < radius)
        assert sorted(got) == sorted(d["id"][inside].tolist())
    with pytest.raises(IndexParamError, match="range_filter"):
        await search_channel(
            ch, request(q, 10, metric, field, params={"radius": range_filter, "range_filter": radius})
        )


async def test_quantised_indexes_report_true_scores() -> None:
    ch, d = filled(2, 400, seed=6)
    spec = IndexSpec.parse("IVF_PQ", "L2", {"nlist": 8, "m": 2, "nbits": 4}, DIM, False)
    for seg in ch.sealed.values():
        index = create_index(spec)
        index.build(seg.vectors("v"))
        seg.indexes["v"] = index
    q = np.random.default_rng(7).standard_normal((4, DIM)).astype(np.float32)
    r = await search_channel(ch, request(q, 10, params={"nprobe": 8}))
    truth = true_scores(q, d["v"], "L2")
    row_of = {pk: j for j, pk in enumerate(d["id"].tolist())}
    bounds = np.concatenate([[0], np.cumsum(r.topks)])
    for i in range(len(q)):
        got = keys_list(r.pks)[bounds[i] : bounds[i + 1]]
        np.testing.assert_allclose(
            r.scores[bounds[i] : bounds[i + 1]], truth[i, [row_of[p] for p in got]], rtol=1e-5
        )


async def test_bad_parameters_fail_before_any_segment_is_searched() -> None:
    hnsw = IndexInfo(
        "c", "v", "v", 9, {"index_type": "HNSW", "metric_type": "L2", "M": "8"}, IndexState.FINISHED
    )
    ch = channel([hnsw])  # declared, not built: the segments are searched exactly, params still checked
    _, d = filled(1, 50)
    ch.sealed[1] = segment(1, d["id"], d["v"], d["b"], d["n"])
    q = d["v"][:1]
    with pytest.raises(IndexParamError, match="ef"):
        await search_channel(ch, request(q, 10, params={"ef": 5}))
    with pytest.raises(IndexParamError, match="nprob"):
        await search_channel(ch, request(q, 10, params={"nprob": 5}))
    with pytest.raises(InvalidArgumentError, match="metric type HAMMING"):
        await search_channel(ch, request(q, 10, metric="HAMMING"))
    assert len((await search_channel(ch, request(q, 10, params={"ef": 64, "nprobe": 3}))).scores) == 10


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize("outputs", [[], ["id"], ["n"], ["n", "id"]])
async def test_one_segment_orders_equal_scores_by_row(indexed: bool, outputs: list[str]) -> None:
    # one segment whose rows repeat 8 vectors: every score is tied with others, and the answer of
    # one segment (taken as the index gives it) must equal the merged order (score, then row)
    rng = np.random.default_rng(11)
    base = rng.standard_normal((8, DIM)).astype(np.float32)
    v = np.tile(base, (25, 1))
    ids = rng.permutation(200).astype(np.int64) + 500
    n = np.arange(200, dtype=np.int64)
    ch = channel()
    seg = segment(1, ids, v, rng.integers(0, 256, (200, BITS // 8), dtype=np.uint8), n)
    if indexed:
        index = create_index(IndexSpec.parse("FLAT", "L2", None, DIM, False))
        index.build(seg.vectors("v"))
        seg.indexes["v"] = index
    ch.sealed[1] = seg
    q = base[:3] + 0.01
    r = await search_channel(ch, request(q, 30, output_fields=outputs))
    row_of = {pk: row for row, pk in enumerate(ids.tolist())}
    truth = true_scores(q, v, "L2")
    got_rows = []
    for i, got in enumerate(per_query(r)):
        rows = np.array([row_of[pk] for pk in got])
        # a top 30: the 30 best scores (which of the rows tied at the 30th is the kernel's choice) ...
        assert np.allclose(np.sort(truth[i][rows]), np.sort(truth[i])[:30], rtol=1e-5)
        # ... in order of score, then of row
        assert [(round(truth[i][j], 4), j) for j in rows] == sorted((round(truth[i][j], 4), j) for j in rows)
        got_rows.extend(rows.tolist())
    # the primary key is never an output column: it is the hits' keys, int64 ones as numpy
    assert isinstance(r.pks, np.ndarray) and r.pks.dtype == np.int64
    assert keys_list(r.pks) == ids[got_rows].tolist()
    assert r.fields.column_names == [name for name in outputs if name != "id"]
    if "n" in outputs:
        assert r.fields.column("n").to_pylist() == n[got_rows].tolist()


async def test_a_filtered_one_segment_search_returns_fewer_hits_when_few_rows_match() -> None:
    ch, d = filled(1, 300, seed=12)
    q = np.random.default_rng(13).standard_normal((2, DIM)).astype(np.float32)
    r = await search_channel(ch, request(q, 50, filter="n == 3", output_fields=["n"]))
    matching = np.flatnonzero(d["n"] == 3)
    assert list(r.topks) == [min(50, len(matching))] * 2
    truth = true_scores(q, d["v"][matching], "L2")
    expected = d["id"][matching][np.argsort(truth, axis=1, kind="stable")[:, :50]]
    assert per_query(r) == expected.tolist()
    assert set(r.fields.column("n").to_pylist()) == {3}


async def test_search_shapes_are_prepared_once_per_shape() -> None:
    ch, _ = filled(1, 50)
    q = np.zeros((1, DIM), np.float32)
    first = ch.setups.get(request(q, 5, params={"ef": 10}), SCHEMA, [])
    assert ch.setups.get(request(q + 1, 5, params={"ef": 10}), SCHEMA, []) is first  # other queries
    assert ch.setups.get(request(q, 6, params={"ef": 10}), SCHEMA, []) is not first  # other limit
    assert ch.setups.get(request(q, 5, params={"ef": 11}), SCHEMA, []) is not first
    assert ch.setups.get(request(q, 5, params={"ef": 10}, filter="n > 1"), SCHEMA, []) is not first
    with pytest.raises(InvalidArgumentError):  # a bad shape fails every time, it is not cached
        ch.setups.get(request(q, 5, metric="HAMMING"), SCHEMA, [])
    with pytest.raises(InvalidArgumentError):
        ch.setups.get(request(q, 5, metric="HAMMING"), SCHEMA, [])


def test_partition_masks() -> None:
    ids = np.arange(6, dtype=np.int64)
    seg = segment(1, ids, np.zeros((6, DIM), np.float32), np.zeros((6, BITS // 8), np.uint8), ids)
    assert seg.partition_mask([]) is None
    assert seg.partition_mask([0, 7]) is None  # the segment's one partition is wanted
    assert not seg.partition_mask([7]).any()  # type: ignore[union-attr]
    mixed = SegmentView(1, np.array([1, 2, 1, 3, 2, 1]), seg.table, SCHEMA)
    assert mixed.partition_mask([1, 3]).tolist() == [True, False, True, True, False, True]  # type: ignore[union-attr]
    assert mixed.partition_mask([1, 2, 3]) is None


class _TiesOutOfOrder:
    """An index answering with equal scores in descending row order (HNSW gives no tie order)."""

    def __init__(self, spec: IndexSpec, count: int) -> None:
        self.spec, self.count = spec, count

    def search(self, queries: np.ndarray, k: int, params: Any = None, allowed: Any = None) -> Any:
        scores = np.tile(np.array([1.0, 1.0, 1.0, 2.0], np.float32), (len(queries), 1))[:, :k]
        ids = np.tile(np.array([7, 4, 2, 9], np.int64), (len(queries), 1))[:, :k]
        return scores, ids


async def test_one_segment_reorders_ties_the_index_left_out_of_row_order() -> None:
    ch, d = filled(1, 20)
    seg = ch.sealed[1]
    seg.indexes["v"] = cast(Any, _TiesOutOfOrder(IndexSpec.parse("FLAT", "L2", None, DIM, False), 20))
    r = await search_channel(ch, request(np.zeros((2, DIM), np.float32), 4))
    assert per_query(r) == [d["id"][[2, 4, 7, 9]].tolist()] * 2


async def test_a_segment_serves_its_vectors_from_an_index_that_keeps_them() -> None:
    ch, d = filled(1, 500, seed=21)
    seg = ch.sealed[1]
    index = create_index(IndexSpec.parse("FLAT", "L2", None, DIM, False))
    index.build(seg.vectors("v"))
    seg.indexes["v"] = index
    raw = index.raw_vectors()  # type: ignore[attr-defined]
    assert not seg.serve_vectors_from("v", raw[:10])  # not this segment's rows
    assert not seg.serve_vectors_from("b", raw)  # not a float vector field
    assert seg.serve_vectors_from("v", raw)
    assert seg.vectors("v") is raw
    assert np.array_equal(
        np.asarray(seg.table.column("v").combine_chunks().flatten()).reshape(-1, DIM), d["v"]
    )
    q = d["v"][[3, 7]] + 0.01
    r = await search_channel(ch, request(q, 5, output_fields=["v"], filter="n < 5"))
    got = np.asarray(r.fields.column("v").combine_chunks().flatten()).reshape(-1, DIM)
    row_of = {pk: i for i, pk in enumerate(d["id"].tolist())}
    assert np.array_equal(got, d["v"][[row_of[pk] for pk in keys_list(r.pks)]])
    allowed = d["n"] < 5
    truth = true_scores(q, d["v"], "L2")
    truth[:, ~allowed] = np.inf
    assert per_query(r) == d["id"][np.argsort(truth, axis=1, kind="stable")[:, :5]].tolist()
