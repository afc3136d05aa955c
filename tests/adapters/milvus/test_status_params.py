"""status / params / metadata: error mapping, key-value parameters, headers."""

from __future__ import annotations

import base64

import pytest
from pymilvus.client.prepare import Prepare
from pymilvus.client.utils import check_status
from pymilvus.exceptions import MilvusException, SchemaMismatchRetryableException
from pymilvus.grpc_gen import common_pb2, schema_pb2

from pelagos import errors
from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.metadata import call_info, user_of
from pelagos.adapters.milvus.params import (
    index_params_from_proto,
    index_params_to_proto,
    kv_dict,
    parse_bool,
    parse_int,
    read_options,
    template_values,
)
from pelagos.interfaces.types import ConsistencyLevel


@pytest.mark.parametrize(
    ("exc", "code", "legacy"),
    [
        (errors.CollectionNotFoundError("x"), 100, common_pb2.CollectionNotExists),
        (errors.DatabaseNotFoundError("x"), 800, common_pb2.UnexpectedError),
        (errors.PartitionNotFoundError("x"), 200, common_pb2.UnexpectedError),
        (errors.IndexNotFoundError("x"), 700, common_pb2.IndexNotExist),
        (errors.AliasNotFoundError("x"), 1600, common_pb2.UnexpectedError),
        (errors.SchemaMismatchError("x"), 109, common_pb2.SchemaMismatch),
        (errors.InvalidArgumentError("x"), 1100, common_pb2.IllegalArgument),
        (errors.NameRuleError("x"), 1100, common_pb2.IllegalArgument),
        (errors.ExpressionError("x", 3), 1100, common_pb2.IllegalArgument),
        (errors.IndexParamError("x"), 1100, common_pb2.IllegalArgument),
        (errors.AlreadyExistsError("x"), 1100, common_pb2.IllegalArgument),
        (errors.CollectionNotLoadedError("x"), 101, common_pb2.UnexpectedError),
        (errors.UnsupportedError("x"), 3000, common_pb2.UnexpectedError),
        (errors.ServiceUnavailableError("x"), 2, common_pb2.UnexpectedError),
        (errors.DeadlineExceededError("x"), 10001, common_pb2.UnexpectedError),
        (errors.StoreUnavailableError("x"), 2, common_pb2.UnexpectedError),
        (errors.MetaStoreError("x"), 1, common_pb2.UnexpectedError),
        (KeyError("x"), 1, common_pb2.UnexpectedError),
    ],
)
def test_mapping(exc: BaseException, code: int, legacy: int) -> None:
    status = st.status_of(exc)
    assert (status.code, status.error_code) == (code, legacy)
    assert status.reason
    assert status.code != 8 and status.error_code != common_pb2.RateLimit  # pymilvus would retry for minutes


def test_collection_not_found_wording() -> None:
    status = st.status_of(
        errors.CollectionNotFoundError("create it first"), collection="books", database="default"
    )
    assert status.reason.startswith("collection not found[database=default][collection=books]")
    assert "create it first" in status.reason
    assert status.extra_info["is_input_error"] == "true"
    with pytest.raises(MilvusException) as err:
        check_status(status)
    assert err.value.code == 100 and err.value.is_input_error


def test_schema_mismatch_makes_pymilvus_retry() -> None:
    with pytest.raises(SchemaMismatchRetryableException):
        check_status(st.status_of(errors.SchemaMismatchError("stale")))


def test_unexpected_errors_name_their_type() -> None:
    assert st.status_of(ZeroDivisionError("division by zero")).reason == (
        "unexpected error: ZeroDivisionError: division by zero"
    )
    assert st.ok().code == 0 and st.ok().error_code == common_pb2.Success


def test_index_params_flat_and_nested() -> None:
    flat = Prepare.create_index_request("c", "v", {"index_type": "HNSW", "metric_type": "L2", "M": 16})
    assert index_params_from_proto(flat.extra_params) == {
        "index_type": "HNSW",
        "metric_type": "L2",
        "M": "16",
    }
    nested = Prepare.create_index_request(
        "c", "v", {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": 128}}
    )
    assert index_params_from_proto(nested.extra_params) == {
        "index_type": "IVF_FLAT",
        "metric_type": "IP",
        "nlist": "128",
    }
    auto = Prepare.create_index_request("c", "v", {"metric_type": "COSINE"})
    assert index_params_from_proto(auto.extra_params)["index_type"] == "AUTOINDEX"
    conflicting = Prepare.create_index_request("c", "v", {"nlist": 4, "params": {"nlist": 8}})
    with pytest.raises(errors.InvalidArgumentError, match="nlist"):
        index_params_from_proto(conflicting.extra_params)


def test_index_params_shown_as_pymilvus_reads_them() -> None:
    shown = kv_dict(index_params_to_proto({"index_type": "HNSW", "metric_type": "L2", "M": "16", "x": "a"}))
    assert shown["index_type"] == "HNSW" and shown["metric_type"] == "L2"
    assert shown["params"] == '{"M": 16, "x": "a"}'


def test_template_values() -> None:
    values = Prepare.prepare_expression_template(
        {
            "i": 3,
            "f": 0.5,
            "s": "x",
            "b": True,
            "ints": [1, 2],
            "nested": [[1], [2, 3]],
            "mixed": [1, {"a": 2}],
        }
    )
    assert template_values(values) == {
        "i": 3,
        "f": 0.5,
        "s": "x",
        "b": True,
        "ints": [1, 2],
        "nested": [[1], [2, 3]],
        "mixed": [1, {"a": 2}],
    }
    assert template_values({"e": schema_pb2.TemplateValue(array_val=schema_pb2.TemplateArrayValue())}) == {
        "e": []
    }


def test_scalars() -> None:
    assert parse_bool("True", "k") and parse_bool("1", "k") and not parse_bool("false", "k")
    with pytest.raises(errors.InvalidArgumentError, match="flag"):
        parse_bool("maybe", "flag")
    assert parse_int(" 12 ", "k") == 12 and parse_int("3.0", "k") == 3
    with pytest.raises(errors.InvalidArgumentError, match="limit"):
        parse_int("ten", "limit")


def test_read_options() -> None:
    default = read_options(
        partition_names=["p"], use_default_consistency=True, consistency_level=0, guarantee_timestamp=5
    )
    assert default.consistency_level is None and default.guarantee_ts == 5 and default.partitions == ["p"]
    chosen = read_options(
        partition_names=[], use_default_consistency=False, consistency_level=3, guarantee_timestamp=1
    )
    assert chosen.consistency_level == ConsistencyLevel.EVENTUALLY
    with pytest.raises(errors.InvalidArgumentError):
        read_options(
            partition_names=[], use_default_consistency=False, consistency_level=9, guarantee_timestamp=0
        )


def test_headers() -> None:
    token = base64.b64encode(b"root:Milvus").decode()
    info = call_info(
        [("dbname", "books"), ("authorization", token), ("identifier", "42"), ("client-request-id", "r")]
    )
    assert (info.db, info.user, info.identifier, info.request_id) == ("books", "root", "42", "r")
    assert info.database("") == "books" and info.database("other") == "other"
    assert call_info([("dbname", "")]).db == "default"
    assert call_info(None).db == "default"
    assert user_of("%%%not base64") == "" and user_of(base64.b64encode(b"token-only").decode()) == ""
    assert user_of(base64.b64encode(b"\xff\xfe:x").decode()) == ""


def test_milvus_worded_messages_are_not_repeated() -> None:
    exc = errors.CollectionNotFoundError("collection not found[database=default][collection=x]")
    assert st.status_of(exc, collection="x", database="default").reason == str(exc)
