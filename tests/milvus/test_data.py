"""Writes and reads through pymilvus: insert, upsert, delete, get, query, search, flush."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.fixtures.standalone import unique

DIM = 8


def make(client: MilvusClient, **kw: object) -> str:
    name = unique()
    client.create_collection(name, dimension=DIM, consistency_level="Strong", **kw)
    return name


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_insert_get_query_dynamic_fields(client: MilvusClient) -> None:
    name = make(client)
    v = vecs(50)
    rows = [{"id": i, "vector": v[i].tolist(), "color": ["red", "blue"][i % 2], "rank": i} for i in range(50)]
    assert client.insert(name, rows)["insert_count"] == 50
    got = client.get(name, ids=[3, 4], output_fields=["color", "rank"])
    assert sorted((r["id"], r["color"], r["rank"]) for r in got) == [(3, "blue", 3), (4, "red", 4)]
    red = client.query(name, filter='color == "red" and rank < 10', output_fields=["rank"])
    assert sorted(r["rank"] for r in red) == [0, 2, 4, 6, 8]
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 50
    page = client.query(name, filter="rank >= 0", output_fields=["rank"], limit=5, offset=5)
    assert len(page) == 5
    star = client.query(name, filter="id == 7", output_fields=["*"])
    assert star[0]["color"] == "blue" and len(star[0]["vector"]) == DIM
    client.drop_collection(name)


def test_search_returns_exact_neighbours(client: MilvusClient) -> None:
    name = make(client, metric_type="L2")
    v = vecs(200, seed=1)
    client.insert(name, [{"id": i, "vector": v[i].tolist(), "g": i % 3} for i in range(200)])
    res = client.search(name, data=[v[5].tolist(), v[9].tolist()], limit=3, output_fields=["g"])
    assert res[0][0]["id"] == 5 and res[1][0]["id"] == 9
    assert res[0][0]["distance"] == pytest.approx(0.0, abs=1e-4)
    assert res[0][0]["entity"]["g"] == 5 % 3
    d = ((v - v[5]) ** 2).sum(axis=1)
    assert [hit["id"] for hit in res[0]] == np.argsort(d)[:3].tolist()
    filtered = client.search(name, data=[v[5].tolist()], limit=5, filter="g == 1")
    assert all(h["id"] % 3 == 1 for h in filtered[0]) and len(filtered[0]) == 5
    client.drop_collection(name)


def test_delete_upsert_flush_and_sealed_reads(client: MilvusClient) -> None:
    name = make(client)
    v = vecs(100, seed=2)
    client.insert(name, [{"id": i, "vector": v[i].tolist(), "n": i} for i in range(100)])
    client.flush(name)
    assert client.get_collection_stats(name)["row_count"] == 100
    assert client.delete(name, ids=[1, 2, 3])["delete_count"] == 3
    client.delete(name, filter="n >= 90")
    client.upsert(name, [{"id": 5, "vector": v[5].tolist(), "n": 500}])
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 100 - 3 - 10
    assert client.get(name, ids=[5], output_fields=["n"])[0]["n"] == 500
    assert client.get(name, ids=[1, 95]) == []
    client.flush(name)
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 87
    assert client.get(name, ids=[5], output_fields=["n"])[0]["n"] == 500
    client.drop_collection(name)


def test_string_primary_keys_and_auto_id(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=DIM, id_type="string", max_length=16, consistency_level="Strong")
    client.insert(name, [{"id": f"k{i}", "vector": vecs(1, i)[0].tolist()} for i in range(5)])
    client.delete(name, ids=["k1"])
    assert sorted(r["id"] for r in client.query(name, filter='id != ""')) == ["k0", "k2", "k3", "k4"]
    client.drop_collection(name)
    auto = unique()
    client.create_collection(auto, dimension=DIM, auto_id=True, consistency_level="Strong")
    res = client.insert(auto, [{"vector": vecs(1)[0].tolist()} for _ in range(3)])
    ids = list(res["ids"])
    assert len(set(ids)) == 3
    assert sorted(r["id"] for r in client.query(auto, filter="id > 0")) == sorted(ids)
    client.drop_collection(auto)


@pytest.mark.parametrize("id_type", ["int", "string"])
def test_search_returns_the_primary_key_where_it_is_asked(client: MilvusClient, id_type: str) -> None:
    # search results carry their keys apart from the output columns; the reply writes the key field
    # from them, for int and string keys, on one segment and merged over sealed and growing data
    name = unique()
    kw: dict[str, object] = {"id_type": "string", "max_length": 16} if id_type == "string" else {}
    client.create_collection(name, dimension=DIM, metric_type="L2", consistency_level="Strong", **kw)

    def key(i: int) -> int | str:
        return f"k{i}" if id_type == "string" else i

    v = vecs(60, seed=4)
    client.insert(name, [{"id": key(i), "vector": v[i].tolist(), "g": i % 4} for i in range(30)])
    queries = [v[7].tolist(), v[20].tolist()]
    alone = client.search(name, data=queries, limit=4, output_fields=["id"])
    client.flush(name)  # the first rows sealed, the next growing: two segments to merge
    client.insert(name, [{"id": key(i), "vector": v[i].tolist(), "g": i % 4} for i in range(30, 60)])
    queries.append(v[40].tolist())
    for outputs in (["id"], ["g", "id"], ["id", "g"], ["*"]):
        res = client.search(name, data=queries, limit=4, output_fields=outputs)
        assert [hits[0]["id"] for hits in res] == [key(7), key(20), key(40)]
        for hits in res:
            for hit in hits:
                entity = hit["entity"]
                assert entity["id"] == hit["id"]
                if outputs != ["id"]:
                    assert entity["g"] == int(str(hit["id"]).lstrip("k")) % 4
    assert [[h["entity"]["id"] for h in hits] for hits in alone] == [
        [h["id"] for h in hits] for hits in alone
    ]
    assert [hits[0]["id"] for hits in alone] == [key(7), key(20)]
    plain = client.search(name, data=queries[:1], limit=2)
    assert "id" not in plain[0][0]["entity"]  # not asked, not sent
    client.drop_collection(name)


def test_query_iterator_pages_through_everything(client: MilvusClient) -> None:
    name = make(client)
    client.insert(name, [{"id": i, "vector": vecs(1, i)[0].tolist()} for i in range(57)])
    it = client.query_iterator(name, batch_size=10, filter="id >= 0", output_fields=["id"])
    seen: list[int] = []
    while True:
        page = it.next()
        if not page:
            break
        seen.extend(r["id"] for r in page)
    it.close()
    assert sorted(seen) == list(range(57))
    client.drop_collection(name)


def test_bad_input_is_a_clear_error(client: MilvusClient) -> None:
    name = unique()
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("s", DataType.VARCHAR, max_length=4)
    client.create_collection(name, schema=schema)
    ok = {"id": 1, "vector": vecs(1)[0].tolist(), "s": "ab"}
    cases = [
        ({**ok, "vector": [0.1] * (DIM - 1)}, "dim"),
        ({**ok, "s": "toolong"}, "length"),
        ({**ok, "unknown": 1}, "unknown"),
        ({**ok, "id": "notanint"}, ""),
    ]
    for row, word in cases:
        with pytest.raises(MilvusException) as err:
            client.insert(name, [row])
        assert word in str(err.value).lower()
    idx = client.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_index(name, idx)
    client.load_collection(name)
    with pytest.raises(MilvusException) as err:
        client.query(name, filter="id >> 3")
    assert "position" in str(err.value) or "syntax" in str(err.value).lower()
    with pytest.raises(MilvusException):
        client.search(name, data=[[0.1] * (DIM + 1)], limit=3)
    client.drop_collection(name)


def test_cosine_scores_are_cosine_similarity(client: MilvusClient) -> None:
    name = make(client, metric_type="COSINE")
    v = vecs(20, seed=5) * np.arange(1, 21, dtype=np.float32)[:, None]  # lengths differ
    client.insert(name, [{"id": i, "vector": v[i].tolist()} for i in range(20)])
    q = v[3] * 7.0
    res = client.search(name, data=[q.tolist()], limit=20)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    expected = unit @ (q / np.linalg.norm(q))
    got = {h["id"]: h["distance"] for h in res[0]}
    assert res[0][0]["id"] == 3 and got[3] == pytest.approx(1.0, abs=1e-5)
    for i, s in got.items():
        assert s == pytest.approx(float(expected[i]), abs=1e-5)
    client.drop_collection(name)
