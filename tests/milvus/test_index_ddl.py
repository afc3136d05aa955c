"""Index management through pymilvus: create (flat or JSON params, names, several fields), describe,
list, drop, alter; build progress; unknown and out-of-range parameters refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.fixtures.standalone import unique
from tests.milvus.helpers import wait_finished

DIM = 16


def make(client: MilvusClient, rows: int = 600) -> str:
    name = unique("idx")
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("b", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=32)
    schema.add_field("n", DataType.INT64)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    rng = np.random.default_rng(1)
    client.insert(
        name,
        [
            {
                "id": i,
                "a": rng.standard_normal(DIM),
                "b": rng.standard_normal(DIM),
                "bits": bytes(rng.integers(0, 256, 4).tolist()),
                "n": i,
            }
            for i in range(rows)
        ],
    )
    client.flush(name)
    return name


def test_flat_and_json_params_several_named_indexes(client: MilvusClient) -> None:
    name = make(client)
    params = client.prepare_index_params()
    params.add_index("a", index_type="IVF_FLAT", index_name="a_ivf", metric_type="L2", nlist=16)  # flat
    params.add_index("bits", index_type="BIN_IVF_FLAT", index_name="bits_ivf", metric_type="JACCARD", nlist=8)
    client.create_index(name, params)
    # the ORM sends build parameters as JSON under `params`, and may return before the build ends
    client._get_connection().create_index(
        name, "b", {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 12, "efConstruction": 48}},
        index_name="b_hnsw", sync=False,
    )  # fmt: skip
    d = wait_finished(client, name, "b_hnsw")
    assert (d["index_type"], d["metric_type"], d["params"]) == ("HNSW", "IP", {"M": 12, "efConstruction": 48})
    assert (d["field_name"], d["total_rows"], d["indexed_rows"], d["pending_index_rows"]) == (
        "b",
        600,
        600,
        0,
    )
    a = client.describe_index(name, "a_ivf")
    assert (a["index_type"], a["params"], a["field_name"]) == ("IVF_FLAT", {"nlist": 16}, "a")
    assert sorted(client.list_indexes(name)) == ["a_ivf", "b_hnsw", "bits_ivf"]
    assert client.list_indexes(name, field_name="b") == ["b_hnsw"]
    client.load_collection(name)
    q = np.random.default_rng(2).standard_normal((2, DIM)).tolist()
    for field in ("a", "b"):
        assert len(client.search(name, data=q, anns_field=field, limit=5)[0]) == 5
    # the same index again is a no-op; a different one on an indexed field is refused
    again = client.prepare_index_params()
    again.add_index("a", index_type="IVF_FLAT", index_name="a_ivf", metric_type="L2", nlist=16)
    client.create_index(name, again)
    other = client.prepare_index_params()
    other.add_index("a", index_type="HNSW", index_name="a_ivf", metric_type="L2")
    with pytest.raises(MilvusException, match="at most one distinct index"):
        client.create_index(name, other)
    client.drop_collection(name)


def test_build_progress_follows_new_segments(client: MilvusClient) -> None:
    name = make(client, rows=300)
    params = client.prepare_index_params()
    params.add_index("a", index_type="HNSW", metric_type="L2", M=8, efConstruction=32)
    client.create_index(name, params)
    assert client.describe_index(name, "a")["indexed_rows"] == 300
    client.load_collection(name)
    rng = np.random.default_rng(3)
    client.insert(
        name,
        [
            {
                "id": 1000 + i,
                "a": rng.standard_normal(DIM),
                "b": rng.standard_normal(DIM),
                "bits": b"\x00\x01\x02\x03",
                "n": 0,
            }
            for i in range(200)
        ],
    )
    client.flush(name)
    d = wait_finished(client, name, "a")
    assert (d["total_rows"], d["indexed_rows"], d["pending_index_rows"]) == (500, 500, 0)
    client.drop_collection(name)


def test_drop_and_alter_index(client: MilvusClient) -> None:
    name = make(client, rows=200)
    params = client.prepare_index_params()
    params.add_index("a", index_type="FLAT", index_name="fa", metric_type="L2")
    params.add_index("b", index_type="FLAT", index_name="fb", metric_type="COSINE")
    client.create_index(name, params)
    client.alter_index_properties(name, "fa", properties={"mmap.enabled": True})
    client.drop_index_properties(name, "fa", property_keys=["mmap.enabled"])
    with pytest.raises(MilvusException, match="not a configable index property"):
        client.alter_index_properties(name, "fa", properties={"nlist": 3})
    with pytest.raises(MilvusException, match="index not found"):
        client.alter_index_properties(name, "nope", properties={"mmap.enabled": True})
    client.load_collection(name)
    with pytest.raises(MilvusException, match="release"):
        client.drop_index(name, "fa")
    client.release_collection(name)
    client.drop_index(name, "fa")
    assert client.list_indexes(name) == ["fb"]
    client.load_collection(name)
    # without its index the field is searched exactly, with any metric that fits it
    q = np.random.default_rng(4).standard_normal((1, DIM)).tolist()
    hits = client.search(name, data=q, anns_field="a", limit=3, search_params={"metric_type": "IP"})
    assert len(hits[0]) == 3
    client.drop_collection(name)


BAD_INDEXES = [
    ("a", {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": 0}, "nlist must be in [1, 65536]"),
    (
        "a",
        {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": 16, "nprobe": 4},
        "unknown build parameter 'nprobe'",
    ),
    ("a", {"index_type": "HNSW", "metric_type": "L2", "M": 1}, "M must be in [2, 2048]"),
    (
        "a",
        {"index_type": "HNSW", "metric_type": "L2", "efconstruction": 10},
        "unknown build parameter 'efconstruction'",
    ),
    (
        "a",
        {"index_type": "IVF_PQ", "metric_type": "L2", "nlist": 8, "m": 5},
        "m must divide the dimension 16",
    ),
    (
        "a",
        {"index_type": "IVF_PQ", "metric_type": "L2", "nlist": 8, "m": 4, "nbits": 20},
        "nbits must be in [1, 16]",
    ),
    ("a", {"index_type": "DISKANNN", "metric_type": "L2"}, "not supported"),
    ("a", {"index_type": "HNSW", "metric_type": "HAMMING"}, "does not fit float vectors"),
    ("bits", {"index_type": "HNSW", "metric_type": "HAMMING"}, "does not fit binary vectors"),
    ("bits", {"index_type": "BIN_FLAT", "metric_type": "L2"}, "does not fit binary vectors"),
    ("nope", {"index_type": "FLAT", "metric_type": "L2"}, "non-exist field"),
]


@pytest.mark.parametrize(("field", "params", "message"), BAD_INDEXES, ids=[b[2] for b in BAD_INDEXES])
def test_bad_index_params_are_refused(
    client: MilvusClient, field: str, params: dict[str, object], message: str
) -> None:
    name = unique("badidx")
    schema = MilvusClient.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=32)
    client.create_collection(name, schema=schema)
    with pytest.raises(MilvusException) as err:
        client._get_connection().create_index(name, field, params)
    assert err.value.code == 1100 and message in err.value.message, err.value
    assert client.list_indexes(name) == []
    client.drop_collection(name)
