"""search_codec / query_codec: requests as pymilvus builds them, results as pymilvus decodes them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pymilvus import Function, FunctionType, RRFRanker, WeightedRanker
from pymilvus.client.prepare import Prepare
from pymilvus.client.search_result import SearchResult as ClientSearchResult
from pymilvus.grpc_gen import common_pb2

from pelagos.adapters.milvus.query_codec import query_request_from_proto, query_result_to_proto
from pelagos.adapters.milvus.search_codec import (
    hybrid_search_request_from_proto,
    response_output_fields,
    search_request_from_proto,
    search_result_to_proto,
    vectors_from_placeholder_group,
)
from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.interfaces.types import NO_FIELDS, ConsistencyLevel, QueryResult, SearchResult
from pelagos.schema import CollectionSchema, DataType, FieldSchema


def test_float_placeholders_from_lists_and_numpy() -> None:
    rng = np.random.default_rng(1)
    m = rng.standard_normal((3, 5)).astype(np.float32)
    for data in (m.tolist(), list(m)):
        got = vectors_from_placeholder_group(Prepare._prepare_placeholder_str(data))
        assert got.dtype == np.float32 and got.shape == (3, 5)
        np.testing.assert_array_equal(got, m)


def test_binary_placeholders() -> None:
    got = vectors_from_placeholder_group(Prepare._prepare_placeholder_str([b"\x01\x02\x03", b"\xff\x00\x07"]))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [[1, 2, 3], [255, 0, 7]])


def test_placeholder_errors() -> None:
    with pytest.raises(UnsupportedError, match="Float16Vector"):
        vectors_from_placeholder_group(Prepare._prepare_placeholder_str([np.ones(4, dtype=np.float16)]))
    ragged = common_pb2.PlaceholderGroup(
        placeholders=[common_pb2.PlaceholderValue(tag="$0", type=101, values=[b"\0" * 8, b"\0" * 12])]
    )
    with pytest.raises(InvalidArgumentError, match="different sizes"):
        vectors_from_placeholder_group(ragged.SerializeToString())
    with pytest.raises(InvalidArgumentError):
        vectors_from_placeholder_group(b"\x0a\x05garbage")


def build_search(**kwargs: object) -> object:
    base: dict[str, object] = {
        "collection_name": "c",
        "anns_field": "vec",
        "param": {"metric_type": "IP", "params": {"ef": 64, "radius": 0.2}},
        "limit": 7,
        "data": [[0.1, 0.2]],
        "expr": "age > {a}",
        "expr_params": {"a": 3, "names": ["x", "y"], "flag": True},
        "output_fields": ["name", "color"],
        "partition_names": ["p1"],
        "round_decimal": 3,
    }
    base.update(kwargs)
    return Prepare.search_requests_with_expr(**base)


def test_search_request_fields() -> None:
    req = build_search(
        offset=2, ignore_growing=True, group_by_field="g", group_size=3, strict_group_size=True
    )
    s = search_request_from_proto(req, "db1")
    assert (s.db, s.collection, s.limit, s.offset, s.round_decimal) == ("db1", "c", 7, 2, 3)
    assert (s.anns_field, s.metric_type) == ("vec", "IP")
    assert s.params == {"ef": 64, "radius": 0.2}  # metric_type / offset hoisted out of params
    assert (s.filter, s.filter_params) == ("age > {a}", {"a": 3, "names": ["x", "y"], "flag": True})
    assert s.output_fields == ["name", "color"]
    assert (s.group_by_field, s.group_size, s.strict_group_size) == ("g", 3, True)
    assert s.options.partitions == ["p1"] and s.options.ignore_growing
    assert s.options.consistency_level is None  # the collection default


def test_search_consistency_is_passed_when_chosen() -> None:
    req = build_search(
        use_default_consistency=False, consistency_level=ConsistencyLevel.STRONG, guarantee_timestamp=0
    )
    assert search_request_from_proto(req, "d").options.consistency_level == ConsistencyLevel.STRONG
    req = build_search(use_default_consistency=False, consistency_level=1, guarantee_timestamp=12345)
    options = search_request_from_proto(req, "d").options
    assert (options.consistency_level, options.guarantee_ts) == (ConsistencyLevel.SESSION, 12345)


def test_search_iterator_keys_are_ignored_and_unsupported_keys_refused() -> None:
    req = build_search(iterator=True, search_iter_v2=True, search_iter_batch_size=10, collection_id=5)
    assert search_request_from_proto(req, "d").limit == 7
    with pytest.raises(UnsupportedError, match="order_by_fields"):
        search_request_from_proto(build_search(order_by_fields=[{"field": "a"}]), "d")
    with pytest.raises(UnsupportedError, match="primary keys"):
        search_request_from_proto(build_search(data=None, ids=[1, 2]), "d")


def hybrid(ranker: object, **kwargs: object) -> object:
    subs = [
        build_search(anns_field="a", limit=5, output_fields=None),
        build_search(anns_field="b", limit=6, output_fields=None, partition_names=None),
    ]
    return Prepare.hybrid_search_request_with_ranker(
        "c", subs, ranker, 4, ["p1"], ["name"], -1, offset=1, **kwargs
    )


def test_hybrid_rrf_and_weighted() -> None:
    h = hybrid_search_request_from_proto(hybrid(RRFRanker(20)), "d")
    assert (h.ranker.kind, h.ranker.k, h.limit, h.offset, h.output_fields) == ("rrf", 20, 4, 1, ["name"])
    assert [(r.anns_field, r.limit) for r in h.requests] == [("a", 5), ("b", 6)]
    assert h.requests[0].filter == "age > {a}"
    assert h.options.partitions == ["p1"]
    w = hybrid_search_request_from_proto(hybrid(WeightedRanker(0.2, 0.8, norm_score=False)), "d")
    assert (w.ranker.kind, w.ranker.weights, w.ranker.normalize) == ("weighted", [0.2, 0.8], False)


def test_hybrid_function_ranker() -> None:
    rrf = Function("r", FunctionType.RERANK, [], params={"reranker": "rrf", "k": 10})
    assert hybrid_search_request_from_proto(hybrid(rrf), "d").ranker.k == 10
    decay = Function("r", FunctionType.RERANK, ["ts"], params={"reranker": "decay", "function": "gauss"})
    with pytest.raises(UnsupportedError, match="decay"):
        hybrid_search_request_from_proto(hybrid(decay), "d")
    with pytest.raises(UnsupportedError, match="group_by_field"):
        hybrid_search_request_from_proto(hybrid(RRFRanker(), group_by_field="g"), "d")


def test_output_fields_name_the_dynamic_keys() -> None:
    assert response_output_fields(["id", "$meta"], ["*"]) == ["id", "$meta"]
    assert response_output_fields(["id", "name", "$meta"], ["name", "color"]) == ["id", "name", "color"]
    assert response_output_fields(["id", "$meta"], ["$meta"]) == ["id", "$meta"]
    assert response_output_fields(["count(*)"], ["count(*)"]) == ["count(*)"]


def test_search_result_decodes_in_pymilvus() -> None:
    fields = pa.table(
        {
            "name": pa.array(["a", "b", "c"]),
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(6, dtype=np.float32)), 2),
            "$meta": pa.array(['{"color": "red", "x": 1}', '{"color": "blue"}', "{}"]),
        }
    )
    result = SearchResult(
        num_queries=3,
        top_k=2,
        topks=np.array([2, 0, 1]),
        ids=pa.array(["k1", "k2", "k3"]),
        scores=np.array([0.9, 0.5, 0.25], dtype=np.float32),
        fields=fields,
        primary_field="pk",
        output_fields=["name", "vec", "color"],
        session_ts=99,
    )
    data = search_result_to_proto(result)
    client = ClientSearchResult(data)
    assert [len(hits) for hits in client] == [2, 0, 1]
    first, _, third = client
    assert [h["pk"] for h in first] == ["k1", "k2"]
    assert [h["distance"] for h in first] == pytest.approx([0.9, 0.5])
    assert first[0]["entity"] == {"name": "a", "vec": [0.0, 1.0], "color": "red"}
    assert third[0]["pk"] == "k3" and third[0]["entity"]["name"] == "c"
    assert "x" not in first[0]["entity"]  # only the requested dynamic key


def test_a_requested_primary_key_is_written_from_the_hit_keys_where_it_was_asked() -> None:
    # search results carry their keys apart from the output columns (int64 keys as numpy)
    schema = CollectionSchema(
        fields=[
            FieldSchema(name="id", dtype=DataType.INT64, is_primary=True, field_id=100),
            FieldSchema(name="n", dtype=DataType.INT64, field_id=101),
            FieldSchema(name="v", dtype=DataType.FLOAT_VECTOR, dim=2, field_id=102),
        ]
    )

    def result(ids: object, output: list[str], fields: pa.Table) -> SearchResult:
        return SearchResult(
            num_queries=2,
            top_k=2,
            topks=np.array([2, 1]),
            ids=ids,
            scores=np.array([0.1, 0.2, 0.3], dtype=np.float32),
            fields=fields,
            primary_field="id",
            output_fields=output,
        )

    n = pa.table({"n": pa.array([7, 8, 9], pa.int64())})
    data = search_result_to_proto(result(np.array([5, 6, 4]), ["n", "id"], n), schema=schema)
    assert list(data.ids.int_id.data) == [5, 6, 4]
    assert [(f.field_name, f.field_id) for f in data.fields_data] == [("n", 101), ("id", 100)]
    assert list(data.fields_data[1].scalars.long_data.data) == [5, 6, 4]
    assert list(data.output_fields) == ["n", "id"]
    client = ClientSearchResult(data)
    assert [[h["entity"] for h in hits] for hits in client] == [
        [{"n": 7, "id": 5}, {"n": 8, "id": 6}],
        [{"n": 9, "id": 4}],
    ]
    first = search_result_to_proto(result(np.array([5, 6, 4]), ["id", "n"], n), schema=schema)
    assert [f.field_name for f in first.fields_data] == ["id", "n"]
    assert list(first.output_fields) == ["id", "n"]
    alone = search_result_to_proto(result(np.array([5, 6, 4]), ["id"], NO_FIELDS), schema=schema)
    assert [f.field_name for f in alone.fields_data] == ["id"] and list(alone.output_fields) == ["id"]
    unasked = search_result_to_proto(result(np.array([5, 6, 4]), [], NO_FIELDS), schema=schema)
    assert not unasked.fields_data and not unasked.output_fields
    strings = search_result_to_proto(result(pa.array(["a", "b", "c"]), ["id"], NO_FIELDS))
    assert list(strings.ids.str_id.data) == ["a", "b", "c"]
    assert list(strings.fields_data[0].scalars.string_data.data) == ["a", "b", "c"]


def test_search_result_consistency_is_checked() -> None:
    bad = SearchResult(
        num_queries=1,
        top_k=2,
        topks=np.array([2]),
        ids=pa.array([1], pa.int64()),
        scores=np.array([0.1], dtype=np.float32),
        fields=pa.table({}),
        primary_field="id",
        output_fields=[],
    )
    with pytest.raises(ValueError, match="inconsistent"):
        search_result_to_proto(bad)


def test_query_request_and_result() -> None:
    req = Prepare.query_request(
        "c",
        "id in [1, 2]",
        ["*", "count"],
        ["p"],
        limit=10,
        offset=5,
        expr_params={"x": 1.5},
        iterator="True",
        reduce_stop_for_best="True",
    )
    q = query_request_from_proto(req, "db")
    assert (q.db, q.collection, q.filter, q.limit, q.offset) == ("db", "c", "id in [1, 2]", 10, 5)
    assert q.output_fields == ["*", "count"] and q.filter_params == {"x": 1.5} and q.is_iterator
    assert q.options.partitions == ["p"]
    plain = query_request_from_proto(Prepare.query_request("c", "", ["count(*)"], []), "db")
    assert (plain.limit, plain.offset, plain.is_iterator) == (None, 0, False)

    reply = query_result_to_proto(
        QueryResult(pa.table({"count(*)": pa.array([12], pa.int64())}), session_ts=7),
        collection="c",
        requested_output=["count(*)"],
    )
    assert reply.session_ts == 7 and list(reply.output_fields) == ["count(*)"]
    assert list(reply.fields_data[0].scalars.long_data.data) == [12]
