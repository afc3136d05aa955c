"""Pelagos errors -> Milvus `common.Status`.

Invariants:
- every status carries both the merr `code` (Milvus 2.3+) and the legacy
  `error_code` enum that older clients and some pymilvus paths still test;
- "collection not found" is code 100 / legacy `CollectionNotExists`: pymilvus's
  `has_collection` returns False on it and raises on anything else;
- a stale client schema is code 109 / legacy `SchemaMismatch`: pymilvus then
  refreshes its schema cache and retries once;
- never code 8 nor legacy `RateLimit`: pymilvus retries those for minutes;
- input errors carry `extra_info["is_input_error"] = "true"` as Milvus does;
- the reason starts with Milvus's own wording ("collection not found[...]"),
  followed by the Pelagos message; a message already in Milvus's words is
  kept as it is.

Pure: protobuf only, no gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymilvus.grpc_gen import common_pb2

from pelagos import errors

SUCCESS = 0
UNEXPECTED_ERROR = 1
SERVICE_UNAVAILABLE = 2
COLLECTION_NOT_FOUND = 100
COLLECTION_NOT_LOADED = 101
COLLECTION_SCHEMA_MISMATCH = 109
PARTITION_NOT_FOUND = 200
INDEX_NOT_FOUND = 700
DATABASE_NOT_FOUND = 800
PARAMETER_INVALID = 1100
ALIAS_NOT_FOUND = 1600
OPERATION_NOT_SUPPORTED = 3000
TIMEOUT = 10001

_INPUT_ERROR_KEY = "is_input_error"


@dataclass(frozen=True, slots=True)
class _Mapping:
    code: int
    legacy: int
    text: str  # Milvus's wording of the error
    input_error: bool = False
    retriable: bool = False


# Most specific class first: the first isinstance match wins.
_MAPPINGS: tuple[tuple[type[BaseException], _Mapping], ...] = (
    (
        errors.CollectionNotFoundError,
        _Mapping(
            COLLECTION_NOT_FOUND, common_pb2.CollectionNotExists, "collection not found", input_error=True
        ),
    ),
    (
        errors.DatabaseNotFoundError,
        _Mapping(DATABASE_NOT_FOUND, common_pb2.UnexpectedError, "database not found", input_error=True),
    ),
    (
        errors.PartitionNotFoundError,
        _Mapping(PARTITION_NOT_FOUND, common_pb2.UnexpectedError, "partition not found", input_error=True),
    ),
    (
        errors.IndexNotFoundError,
        _Mapping(INDEX_NOT_FOUND, common_pb2.IndexNotExist, "index not found", input_error=True),
    ),
    (
        errors.AliasNotFoundError,
        _Mapping(ALIAS_NOT_FOUND, common_pb2.UnexpectedError, "alias not found", input_error=True),
    ),
    (
        errors.SchemaMismatchError,
        _Mapping(
            COLLECTION_SCHEMA_MISMATCH,
            common_pb2.SchemaMismatch,
            "collection schema mismatch",
            input_error=True,
        ),
    ),
    (
        errors.NotFoundError,
        _Mapping(PARAMETER_INVALID, common_pb2.IllegalArgument, "invalid parameter", input_error=True),
    ),
    (
        errors.AlreadyExistsError,
        _Mapping(PARAMETER_INVALID, common_pb2.IllegalArgument, "invalid parameter", input_error=True),
    ),
    (
        errors.InvalidArgumentError,
        _Mapping(PARAMETER_INVALID, common_pb2.IllegalArgument, "invalid parameter", input_error=True),
    ),
    (
        errors.CollectionNotLoadedError,
        _Mapping(
            COLLECTION_NOT_LOADED, common_pb2.UnexpectedError, "collection not loaded", input_error=True
        ),
    ),
    (
        errors.UnsupportedError,
        _Mapping(
            OPERATION_NOT_SUPPORTED, common_pb2.UnexpectedError, "unsupported operation", input_error=True
        ),
    ),
    (
        errors.ServiceUnavailableError,
        _Mapping(SERVICE_UNAVAILABLE, common_pb2.UnexpectedError, "service unavailable", retriable=True),
    ),
    (
        errors.DeadlineExceededError,
        _Mapping(TIMEOUT, common_pb2.UnexpectedError, "request timeout", retriable=True),
    ),
    (
        errors.StoreUnavailableError,
        _Mapping(SERVICE_UNAVAILABLE, common_pb2.UnexpectedError, "service unavailable", retriable=True),
    ),
)

_UNEXPECTED = _Mapping(UNEXPECTED_ERROR, common_pb2.UnexpectedError, "unexpected error")


def ok() -> common_pb2.Status:
    """The success status."""
    return common_pb2.Status(code=SUCCESS, error_code=common_pb2.Success)


def mapping_of(exc: BaseException) -> tuple[int, int]:
    """(merr code, legacy error_code) that `status_of(exc)` would carry."""
    m = _mapping(exc)
    return m.code, m.legacy


def status_of(exc: BaseException, *, collection: str = "", database: str = "") -> common_pb2.Status:
    """The Status that reports `exc` to a Milvus client.

    `collection` / `database` name the request's target; they are quoted the
    way Milvus quotes them ("collection not found[database=d][collection=c]").
    """
    m = _mapping(exc)
    status = common_pb2.Status(
        code=m.code, error_code=m.legacy, reason=_reason(exc, m, collection, database), retriable=m.retriable
    )
    if m.input_error:
        status.extra_info[_INPUT_ERROR_KEY] = "true"
    return status


def _mapping(exc: BaseException) -> _Mapping:
    for cls, m in _MAPPINGS:
        if isinstance(exc, cls):
            return m
    return _UNEXPECTED


def _reason(exc: BaseException, m: _Mapping, collection: str, database: str) -> str:
    message = str(exc) or type(exc).__name__
    where = ""
    if isinstance(exc, errors.CollectionNotFoundError) and collection:
        where = (f"[database={database}]" if database else "") + f"[collection={collection}]"
    elif isinstance(exc, errors.DatabaseNotFoundError) and database:
        where = f"[database={database}]"
    if m is _UNEXPECTED and not isinstance(exc, errors.PelagosError):
        return f"{m.text}: {type(exc).__name__}: {message}"
    if message.lower().startswith(m.text):  # already in Milvus's words
        return message
    return f"{m.text}{where}: {message}"
