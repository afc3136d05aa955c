"""schema_codec: Milvus CollectionSchema <-> Pelagos CollectionSchema, for every field type."""

from __future__ import annotations

import pytest
from pymilvus import CollectionSchema as PmSchema
from pymilvus import DataType as PmType
from pymilvus import FieldSchema as PmField
from pymilvus.client.abstract import CollectionSchema as ClientSchemaView
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from pelagos.adapters.milvus.schema_codec import schema_from_bytes, schema_from_proto, schema_to_proto
from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.schema import CollectionSchema, DataType, FieldSchema


def every_type_schema() -> CollectionSchema:
    return CollectionSchema(
        fields=[
            FieldSchema("pk", DataType.VARCHAR, field_id=100, is_primary=True, max_length=64),
            FieldSchema("b", DataType.BOOL, field_id=101, default_value=True),
            FieldSchema("i8", DataType.INT8, field_id=102, nullable=True),
            FieldSchema("i16", DataType.INT16, field_id=103, default_value=-3),
            FieldSchema("i32", DataType.INT32, field_id=104, is_partition_key=True),
            FieldSchema("i64", DataType.INT64, field_id=105, default_value=1 << 40),
            FieldSchema("f", DataType.FLOAT, field_id=106, default_value=0.5),
            FieldSchema("d", DataType.DOUBLE, field_id=107, nullable=True, default_value=2.25),
            FieldSchema("s", DataType.VARCHAR, field_id=108, max_length=10, default_value="x"),
            FieldSchema("j", DataType.JSON, field_id=109, nullable=True),
            FieldSchema(
                "a", DataType.ARRAY, field_id=110, element_type=DataType.VARCHAR, max_capacity=4, max_length=5
            ),
            FieldSchema("ai", DataType.ARRAY, field_id=111, element_type=DataType.INT16, max_capacity=2),
            FieldSchema(
                "v", DataType.FLOAT_VECTOR, field_id=112, dim=16, type_params={"mmap.enabled": "true"}
            ),
            FieldSchema("bv", DataType.BINARY_VECTOR, field_id=113, dim=64, description="bits"),
        ],
        description="every type",
        enable_dynamic_field=True,
    )


def test_round_trip_every_type() -> None:
    schema = every_type_schema()
    pb = schema_to_proto(schema, "c")
    assert pb.name == "c"
    back = schema_from_proto(pb)
    assert back == schema


def test_type_params_are_strings() -> None:
    pb = schema_to_proto(every_type_schema(), "c")
    params = {f.name: {kv.key: kv.value for kv in f.type_params} for f in pb.fields}
    assert params["v"] == {"dim": "16", "mmap.enabled": "true"}
    assert params["s"] == {"max_length": "10"}
    assert params["a"] == {"max_length": "5", "max_capacity": "4"}
    assert params["bv"] == {"dim": "64"}


def test_defaults_use_milvus_slots() -> None:
    pb = {f.name: f for f in schema_to_proto(every_type_schema(), "c").fields}
    assert pb["b"].default_value.WhichOneof("data") == "bool_data"
    assert pb["i16"].default_value.WhichOneof("data") == "int_data"
    assert pb["i64"].default_value.WhichOneof("data") == "long_data"
    assert pb["f"].default_value.WhichOneof("data") == "float_data"
    assert pb["d"].default_value.WhichOneof("data") == "double_data"
    assert pb["s"].default_value.string_data == "x"
    assert not pb["i8"].HasField("default_value")


def test_dynamic_field_is_hidden_from_clients() -> None:
    schema = every_type_schema()
    schema.fields.append(FieldSchema("$meta", DataType.JSON, field_id=114, is_dynamic=True))
    pb = schema_to_proto(schema, "c")
    assert "$meta" not in [f.name for f in pb.fields]
    assert pb.enable_dynamic_field


def test_auto_id_on_collection_and_field() -> None:
    schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True)])
    pb = schema_to_proto(schema, "c")
    assert pb.autoID and pb.fields[0].autoID
    pb.fields[0].autoID = False  # old clients set it on the collection only
    assert schema_from_proto(pb).fields[0].auto_id


def test_what_pymilvus_sends() -> None:
    fields = [
        PmField("id", PmType.INT64, is_primary=True, auto_id=True),
        PmField("name", PmType.VARCHAR, max_length=20, default_value="anon", nullable=True),
        PmField("age", PmType.INT32, default_value=18),
        PmField("score", PmType.FLOAT, is_partition_key=False),
        PmField("tags", PmType.ARRAY, element_type=PmType.INT64, max_capacity=8),
        PmField("emb", PmType.FLOAT_VECTOR, dim=8),
    ]
    request = Prepare.create_collection_request(
        "people", PmSchema(fields, description="d", enable_dynamic_field=True), consistency_level="Strong"
    )
    schema = schema_from_bytes(request.schema)
    by = {f.name: f for f in schema.fields}
    assert schema.enable_dynamic_field and schema.description == "d"
    assert by["id"].is_primary and by["id"].auto_id
    assert (by["name"].max_length, by["name"].default_value, by["name"].nullable) == (20, "anon", True)
    assert by["age"].default_value == 18
    assert (by["tags"].element_type, by["tags"].max_capacity) == (DataType.INT64, 8)
    assert by["emb"].dim == 8


def test_pymilvus_reads_what_we_describe() -> None:
    reply = milvus_pb2.DescribeCollectionResponse(schema=schema_to_proto(every_type_schema(), "c"))
    view = ClientSchemaView(raw=reply).dict()
    fields = {f["name"]: f for f in view["fields"]}
    assert fields["v"]["params"]["dim"] == 16
    assert fields["s"]["params"]["max_length"] == 10
    assert fields["a"]["params"]["max_capacity"] == 4
    assert fields["a"]["element_type"] == PmType.VARCHAR
    assert fields["i32"].get("is_partition_key") is True
    assert fields["j"].get("nullable") is True
    assert fields["pk"]["field_id"] == 100


@pytest.mark.parametrize(
    "dtype", [PmType.FLOAT16_VECTOR, PmType.SPARSE_FLOAT_VECTOR, PmType.INT8_VECTOR, PmType.BFLOAT16_VECTOR]
)
def test_unsupported_types_are_refused_by_name(dtype: PmType) -> None:
    pb = schema_pb2.CollectionSchema(
        fields=[
            schema_pb2.FieldSchema(name="id", data_type=PmType.INT64, is_primary_key=True),
            schema_pb2.FieldSchema(name="weird", data_type=dtype),
        ]
    )
    with pytest.raises(UnsupportedError, match="weird"):
        schema_from_proto(pb)


def test_bad_bytes_and_params() -> None:
    with pytest.raises(InvalidArgumentError):
        schema_from_bytes(b"\xff\xff\xff")
    pb = schema_pb2.CollectionSchema(fields=[schema_pb2.FieldSchema(name="v", data_type=PmType.FLOAT_VECTOR)])
    pb.fields[0].type_params.add(key="dim", value="eight")
    with pytest.raises(InvalidArgumentError, match="dim"):
        schema_from_proto(pb)
