"""Bad search input is refused at once with a clear Milvus error (code 1100, never retried by pymilvus)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.fixtures.standalone import StandaloneProcess, unique

DIM = 8
INVALID_PARAMETER = 1100


@pytest.fixture(scope="module")
def coll(standalone: StandaloneProcess) -> Iterator[tuple[MilvusClient, str]]:
    client = MilvusClient(uri=standalone.uri, timeout=30)
    name = unique("errs")
    schema = MilvusClient.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("w", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("b", DataType.BINARY_VECTOR, dim=16)
    schema.add_field("f", DataType.FLOAT)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    params = client.prepare_index_params()
    params.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    params.add_index("w", index_type="IVF_FLAT", metric_type="IP", params={"nlist": 4})
    params.add_index("b", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_index(name, params)
    client.load_collection(name)
    rng = np.random.default_rng(0)
    client.insert(
        name,
        [
            {
                "id": i,
                "v": rng.standard_normal(DIM),
                "w": rng.standard_normal(DIM),
                "b": bytes([i, 255 - i]),
                "f": 0.5,
            }
            for i in range(50)
        ],
    )
    try:
        yield client, name
    finally:
        client.drop_collection(name)
        client.close()


Q = [[0.1] * DIM]
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("wrong dimension", {"data": [[0.1] * (DIM + 1)], "anns_field": "v"}, "dim"),
    (
        "wrong metric for the index",
        {"anns_field": "v", "search_params": {"metric_type": "IP"}},
        "metric type not match",
    ),
    ("unknown anns_field", {"anns_field": "nope"}, "fieldName(nope) not found"),
    ("missing anns_field", {}, "please specify a anns_field"),
    ("k over the limit", {"anns_field": "v", "limit": 16385}, "topk [16385] is invalid"),
    ("k + offset over the limit", {"anns_field": "v", "limit": 16000, "offset": 400}, "topk + offset"),
    (
        "unknown search param",
        {"anns_field": "v", "search_params": {"params": {"nprob": 4}}},
        "unknown search parameter 'nprob'",
    ),
    (
        "ef below k",
        {"anns_field": "v", "limit": 20, "search_params": {"params": {"ef": 10}}},
        "ef must be in [20",
    ),
    (
        "nprobe above nlist",
        {"anns_field": "w", "search_params": {"params": {"nprobe": 5}}},
        "nprobe must be in [1, 4]",
    ),
    ("non-numeric param", {"anns_field": "v", "search_params": {"params": {"ef": "lots"}}}, "ef"),
    (
        "range_filter on the wrong side",
        {"anns_field": "v", "search_params": {"params": {"radius": 1.0, "range_filter": 2.0}}},
        "range_filter (2.0) must be less than radius (1.0)",
    ),
    (
        "range_filter without radius",
        {"anns_field": "v", "search_params": {"params": {"range_filter": 2.0}}},
        "needs radius",
    ),
    (
        "float metric on binary field",
        {"data": [bytes([1, 2])], "anns_field": "b", "search_params": {"metric_type": "L2"}},
        "metric type not match",
    ),
    ("float query on binary field", {"anns_field": "b"}, "binary"),
    ("group by a float field", {"anns_field": "v", "group_by_field": "f"}, "group by field f"),
    ("group by a missing field", {"anns_field": "v", "group_by_field": "zz"}, "groupBy field(zz) not found"),
    ("group size too large", {"anns_field": "v", "group_by_field": "id", "group_size": 5000}, "group_size"),
    ("bad filter", {"anns_field": "v", "filter": "id >> 3"}, ""),
]


@pytest.mark.parametrize(("label", "kwargs", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_search_is_a_clear_error(
    coll: tuple[MilvusClient, str], label: str, kwargs: dict[str, Any], message: str
) -> None:
    client, name = coll
    args = {"data": Q, "limit": 5, **kwargs}
    with pytest.raises(MilvusException) as err:
        client.search(name, **args)
    assert err.value.code == INVALID_PARAMETER, (label, err.value)
    assert message in err.value.message, (label, err.value.message)


def test_too_many_query_vectors(coll: tuple[MilvusClient, str]) -> None:
    client, name = coll
    with pytest.raises(MilvusException, match=r"nq .* \[1, 16384\]"):
        client.search(name, data=np.zeros((16385, DIM), np.float32).tolist(), anns_field="v", limit=1)


def test_ignored_keys_of_other_index_types_are_accepted(coll: tuple[MilvusClient, str]) -> None:
    """Milvus ignores the search keys of other index types (nprobe on HNSW, ef on IVF); so do we."""
    client, name = coll
    assert (
        len(client.search(name, data=Q, anns_field="v", limit=5, search_params={"params": {"nprobe": 3}})[0])
        == 5
    )
    assert (
        len(client.search(name, data=Q, anns_field="w", limit=5, search_params={"params": {"ef": 3}})[0]) == 5
    )
