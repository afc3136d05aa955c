"""The data path through every role, in process, on real stores: writes go
through the log, data nodes seal segments, query nodes serve growing and
sealed data, deletes and upserts apply by timestamp."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pelagos.datanode import channel_writer
from pelagos.errors import CollectionNotFoundError, CollectionNotLoadedError, InvalidArgumentError
from pelagos.interfaces.hit_keys import keys_list
from pelagos.interfaces.types import ConsistencyLevel, LoadState, QueryRequest, ReadOptions, SearchRequest
from pelagos.runtime.assembly import Node, NodeSettings
from pelagos.runtime.servers.etcd import EtcdServer
from pelagos.runtime.servers.nats import NatsServer
from pelagos.schema import CollectionSchema, DataType, FieldSchema
from pelagos.schema.arrow import vector_column, vectors_of
from pelagos.segments import SealedSegmentData
from pelagos.segments.manifest import SegmentManifest
from pelagos.storage.log.jetstream import JetStreamLogBroker
from pelagos.storage.log.protocol import ChannelLimits
from pelagos.storage.meta.etcd import EtcdMetaStore
from pelagos.storage.objects.local import LocalObjectStore
from tests.fixtures.engine import unique_name

DIM = 8
STRONG = ReadOptions(consistency_level=ConsistencyLevel.STRONG)


def schema(auto_id: bool = False) -> CollectionSchema:
    return CollectionSchema(
        fields=[
            FieldSchema("id", DataType.INT64, is_primary=True, auto_id=auto_id),
            FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM),
            FieldSchema("tag", DataType.VARCHAR, max_length=16),
            FieldSchema("n", DataType.INT32),
        ]
    )


def rows(ids: np.ndarray, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "vec": vector_column(vecs, DataType.FLOAT_VECTOR, DIM),
            "tag": pa.array([f"t{i % 5}" for i in ids]),
            "n": pa.array((ids % 7).astype(np.int32)),
        }
    )
    return table, vecs


async def make_loaded(node: Node, name: str) -> None:
    await node.proxy.create_collection("default", name, schema(), consistency_level=ConsistencyLevel.STRONG)
    await node.proxy.load("default", name, [])
    for _ in range(200):
        if await node.proxy.load_state("default", name, []) == LoadState.LOADED:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("collection did not load")


async def count(node: Node, name: str, flt: str = "") -> int:
    r = await node.proxy.query(
        QueryRequest(db="default", collection=name, filter=flt, output_fields=["count(*)"], options=STRONG)
    )
    return int(r.table.column("count(*)")[0].as_py())


async def test_insert_query_search_growing_then_sealed(engine_node: Node) -> None:
    p = engine_node.proxy
    name = unique_name()
    await make_loaded(engine_node, name)
    ids = np.arange(1, 301)
    table, vecs = rows(ids)
    res = await p.insert("default", name, None, table)
    assert res.insert_count == 300 and res.ids.to_pylist() == ids.tolist()
    assert await count(engine_node, name) == 300
    q = await p.query(
        QueryRequest(db="default", collection=name, filter="n == 3", output_fields=["tag"], options=STRONG)
    )
    expected = sorted(int(i) for i in ids if i % 7 == 3)
    assert sorted(q.table.column("id").to_pylist()) == expected
    # exact search over growing data: the query vector itself is the best hit
    s = await p.search(
        SearchRequest(
            db="default",
            collection=name,
            vectors=vecs[[10, 20]],
            limit=5,
            metric_type="L2",
            output_fields=["tag"],
            options=STRONG,
        )
    )
    assert s.topks.tolist() == [5, 5]
    assert keys_list(s.ids)[0] == 11 and keys_list(s.ids)[5] == 21
    assert s.fields.column("tag").to_pylist()[0] == "t1"
    # flush seals; the same answers come from sealed segments. Flush answers once the flush is
    # done (clients then need no poll), well within its bounded wait
    info = (await p.flush("default", [name]))[0]
    assert await p.flush_state("default", name, info.flush_ts)
    assert await p.collection_row_count("default", name) == 300
    for _ in range(100):  # the query node adopts the sealed state right after the commit
        if all(
            not ch.growing_view()
            for ch in engine_node.querynode._channels.values()
            if name in ch.collection.name
        ):
            break
        await asyncio.sleep(0.02)
    assert await count(engine_node, name) == 300
    s2 = await p.search(
        SearchRequest(
            db="default", collection=name, vectors=vecs[[10, 20]], limit=5, metric_type="L2", options=STRONG
        )
    )
    assert keys_list(s2.ids) == keys_list(s.ids)
    np.testing.assert_allclose(s2.scores, s.scores, rtol=1e-5)


async def flushed(node: Node, name: str) -> None:
    """Flush `name` and wait until the query node serves only sealed segments."""
    info = (await node.proxy.flush("default", [name]))[0]
    while not await node.proxy.flush_state("default", name, info.flush_ts):
        await asyncio.sleep(0.02)
    for _ in range(200):
        if all(
            not ch.growing_view() for ch in node.querynode._channels.values() if name in ch.collection.name
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the query node kept growing data after the flush")


async def sealed(node: Node, name: str) -> list[SealedSegmentData]:
    """Every sealed segment of `name`, read back from the object store."""
    c = await node.proxy.describe_collection("default", name)
    out = []
    for seg in await node.coordinator.segments(c.collection_id):
        manifest = SegmentManifest.decode(await node.objects.get(seg.manifest_key))
        out.append(await SealedSegmentData.load(manifest, node.objects.get))
    return out


async def test_sealed_segments_in_locality_order_keep_rows_whole(engine_node: Node) -> None:
    """The fixture writes segments of 64 KiB of vectors and more in locality order: the files hold
    the rows permuted, every row whole, and search, query, get and delete answer as before."""
    p = engine_node.proxy
    name = unique_name()
    await make_loaded(engine_node, name)
    ids = np.arange(1, 6001)  # 192 KB of vectors over 2 shards: both segments reordered
    table, vecs = rows(ids, seed=3)
    await p.insert("default", name, None, table)
    await flushed(engine_node, name)
    seen: list[np.ndarray] = []
    for data in await sealed(engine_node, name):
        pks = data.table.column("id").to_numpy()
        assert len(pks) * DIM * 4 >= 64 * 1024
        assert not np.array_equal(pks, np.sort(pks))  # not in insertion order
        np.testing.assert_array_equal(
            vectors_of(data.table.column("vec"), DataType.FLOAT_VECTOR, DIM), vecs[pks - 1]
        )
        assert data.table.column("tag").to_pylist() == [f"t{i % 5}" for i in pks]
        assert data.table.column("n").to_numpy().tolist() == (pks % 7).tolist()
        seen.append(pks)
    assert np.array_equal(np.sort(np.concatenate(seen)), ids)
    # exact search (no index: brute force over the sealed rows) finds what numpy finds
    queries = vecs[[5, 500, 5000]] + 0.01
    s = await p.search(
        SearchRequest(
            db="default", collection=name, vectors=queries, limit=5, metric_type="L2", options=STRONG
        )
    )
    d = ((queries[:, None, :] - vecs[None, :, :]) ** 2).sum(-1)
    assert keys_list(s.ids) == (np.argsort(d, axis=1)[:, :5] + 1).reshape(-1).tolist()
    got = await p.query(
        QueryRequest(
            db="default",
            collection=name,
            filter="id in [7, 4242, 6000]",
            output_fields=["vec", "n"],
            options=STRONG,
        )
    )
    by_id = dict(zip(got.table.column("id").to_pylist(), range(got.table.num_rows), strict=True))
    assert sorted(by_id) == [7, 4242, 6000]
    got_vecs = vectors_of(got.table.column("vec"), DataType.FLOAT_VECTOR, DIM)
    for pk, i in by_id.items():
        np.testing.assert_array_equal(got_vecs[i], vecs[pk - 1])
        assert got.table.column("n")[i].as_py() == pk % 7
    assert (await p.delete("default", name, None, "id in [6, 501, 5001]")).delete_count == 3
    assert await count(engine_node, name) == 5997
    s2 = await p.search(
        SearchRequest(
            db="default", collection=name, vectors=queries, limit=5, metric_type="L2", options=STRONG
        )
    )
    assert not {6, 501, 5001} & set(keys_list(s2.ids))


async def test_a_failed_locality_order_seals_in_insertion_order(
    engine_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> pa.Table:
        raise RuntimeError("k-means failed")

    monkeypatch.setattr(channel_writer, "in_locality_order", broken)
    name = unique_name()
    await make_loaded(engine_node, name)
    table, vecs = rows(np.arange(1, 6001), seed=4)
    await engine_node.proxy.insert("default", name, None, table)
    await flushed(engine_node, name)
    segments = await sealed(engine_node, name)
    assert sum(s.table.num_rows for s in segments) == 6000
    for data in segments:
        pks = data.table.column("id").to_numpy()
        assert np.array_equal(pks, np.sort(pks))
        np.testing.assert_array_equal(
            vectors_of(data.table.column("vec"), DataType.FLOAT_VECTOR, DIM), vecs[pks - 1]
        )
    assert await count(engine_node, name) == 6000


async def test_delete_and_upsert_apply_across_growing_and_sealed(engine_node: Node) -> None:
    p = engine_node.proxy
    name = unique_name()
    await make_loaded(engine_node, name)
    table, _ = rows(np.arange(1, 101))
    await p.insert("default", name, None, table)
    info = (await p.flush("default", [name]))[0]
    while not await p.flush_state("default", name, info.flush_ts):
        await asyncio.sleep(0.02)
    d = await p.delete("default", name, None, "id in [1, 2, 3]")
    assert d.delete_count == 3
    d2 = await p.delete("default", name, None, "n == 0")  # by filter: ids 7, 14, ..., 98
    assert d2.delete_count == 14
    assert await count(engine_node, name) == 100 - 3 - 14
    up, _ = rows(np.array([5, 6, 1000]), seed=9)
    up = up.set_column(3, "n", pa.array([42, 42, 42], pa.int32()))
    r = await p.upsert("default", name, None, up)
    assert r.upsert_count == 3
    assert await count(engine_node, name) == 100 - 3 - 14 + 1
    got = await p.query(
        QueryRequest(
            db="default", collection=name, filter="id in [5, 6, 1000]", output_fields=["n"], options=STRONG
        )
    )
    assert sorted(
        zip(got.table.column("id").to_pylist(), got.table.column("n").to_pylist(), strict=True)
    ) == [(5, 42), (6, 42), (1000, 42)]
    info = (await p.flush("default", [name]))[0]
    while not await p.flush_state("default", name, info.flush_ts):
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert await count(engine_node, name) == 100 - 3 - 14 + 1
    assert await count(engine_node, name, "n == 42") == 3


async def test_errors_are_typed(engine_node: Node) -> None:
    p = engine_node.proxy
    with pytest.raises(CollectionNotFoundError):
        await p.describe_collection("default", unique_name("missing"))
    name = unique_name()
    await p.create_collection("default", name, schema())
    bad, _ = rows(np.arange(3))
    with pytest.raises(InvalidArgumentError, match="dim"):
        await p.insert(
            "default",
            name,
            None,
            bad.set_column(1, "vec", vector_column(np.zeros((3, 4), np.float32), DataType.FLOAT_VECTOR, 4)),
        )
    long_tag = bad.set_column(2, "tag", pa.array(["x" * 17, "a", "b"]))
    with pytest.raises(InvalidArgumentError, match="exceeds max length"):
        await p.insert("default", name, None, long_tag)
    with pytest.raises(CollectionNotLoadedError):
        await p.query(QueryRequest(db="default", collection=name, filter="id > 0", options=STRONG))


async def test_segments_seal_when_idle_and_at_the_size_limit(
    nats_server: NatsServer, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    suffix = unique_name("seal").replace("_", "-")
    broker = await JetStreamLogBroker.connect(nats_server.url, stream_prefix=suffix)
    meta = await EtcdMetaStore.connect(etcd_server.endpoint, root=suffix)
    node = Node(
        broker=broker,
        meta=meta,
        objects=LocalObjectStore(tmp_path / "objects"),
        settings=NodeSettings(segment_max_bytes=64 * 1024, seal_idle_seconds=0.5, time_tick_interval_ms=50),
    )
    await node.start()
    try:
        p = node.proxy
        name = unique_name()
        await make_loaded(node, name)
        small, _ = rows(np.arange(1, 11))
        await p.insert("default", name, None, small)
        c = await p.describe_collection("default", name)
        for _ in range(100):  # no flush asked: the idle timer seals the 10 rows
            if sum(s.row_count for s in await node.coordinator.segments(c.collection_id)) == 10:
                break
            await asyncio.sleep(0.05)
        assert sum(s.row_count for s in await node.coordinator.segments(c.collection_id)) == 10
        big, _ = rows(np.arange(100, 3100))  # ~200 KB > 64 KB: sealed by size
        await p.insert("default", name, None, big)
        for _ in range(100):
            if sum(s.row_count for s in await node.coordinator.segments(c.collection_id)) == 3010:
                break
            await asyncio.sleep(0.05)
        segs = await node.coordinator.segments(c.collection_id)
        assert sum(s.row_count for s in segs) == 3010
        assert await count(node, name) == 3010
    finally:
        await node.stop()
        await broker.close()
        await meta.close()


async def test_configured_row_limit_and_channel_retention_apply(
    nats_server: NatsServer, etcd_server: EtcdServer, tmp_path: Path
) -> None:
    suffix = unique_name("cfg").replace("_", "-")
    broker = await JetStreamLogBroker.connect(nats_server.url, stream_prefix=suffix)
    meta = await EtcdMetaStore.connect(etcd_server.endpoint, root=suffix)
    node = Node(
        broker=broker,
        meta=meta,
        objects=LocalObjectStore(tmp_path / "objects"),
        settings=NodeSettings(
            segment_max_rows=100,
            channel_limits=ChannelLimits(max_messages=100_000),
            time_tick_interval_ms=50,
        ),
    )
    await node.start()
    try:
        name = unique_name()
        await make_loaded(node, name)
        c = await node.proxy.describe_collection("default", name)
        assert (await broker.channel_limits(c.channels[0])).max_messages == 100_000
        table, _ = rows(np.arange(1, 151))  # one message of 150 rows > 100: sealed without a flush
        await node.proxy.insert("default", name, None, table)
        for _ in range(100):
            if sum(s.row_count for s in await node.coordinator.segments(c.collection_id)) == 150:
                break
            await asyncio.sleep(0.05)
        assert sum(s.row_count for s in await node.coordinator.segments(c.collection_id)) == 150
    finally:
        await node.stop()
        await broker.close()
        await meta.close()
