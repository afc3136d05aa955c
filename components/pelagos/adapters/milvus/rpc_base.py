"""What every Milvus RPC handler shares: the proxy, call metadata, error wrapping.

Invariants:
- no exception escapes a handler wrapped with `@rpc`: pymilvus retries gRPC
  UNKNOWN / INTERNAL for minutes, so a Pelagos error becomes its Milvus
  Status (status.py) and anything unexpected becomes code 1 / UnexpectedError
  with the message, logged with its traceback;
- cancellation (asyncio.CancelledError, a BaseException) is not swallowed;
- the reply of a failed call is the RPC's reply type with only `status` set
  (or the Status itself for RPCs that answer a bare Status).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import pyarrow as pa

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.metadata import CallInfo, call_info, database_of
from pelagos.errors import EngineError, PelagosError
from pelagos.interfaces.proxy import ProxyAPI
from pelagos.interfaces.types import DEFAULT_DATABASE
from pelagos.schema import DYNAMIC_FIELD_NAME, CollectionSchema

log = logging.getLogger("pelagos.adapters.milvus")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_STRING, _LARGE_STRING = pa.string(), pa.large_string()

#: hybrid timestamps carry the physical milliseconds above 18 logical bits
LOGICAL_BITS = 18


def physical_ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


def rpc(reply: Callable[..., Any] | None) -> Callable[[F], F]:
    """Wrap a handler so that every failure is answered with a Status.

    `reply` is the response message type (built as `reply(status=...)`), or
    None for RPCs whose response is a bare `common.Status`.
    """

    def decorate(handler: F) -> F:
        name = handler.__name__

        @functools.wraps(handler)
        async def wrapped(self: RPCBase, request: Any, context: Any) -> Any:
            try:
                return await handler(self, request, context)
            except Exception as exc:
                info = self.call(context)
                status = st.status_of(
                    exc,
                    collection=getattr(request, "collection_name", "") or "",
                    database=info.database(getattr(request, "db_name", "") or ""),
                )
                _log_failure(name, info, exc)
                return status if reply is None else reply(status=status)

        return wrapped  # type: ignore[return-value]

    return decorate


def _log_failure(method: str, info: CallInfo, exc: Exception) -> None:
    where = f"{method} (db={info.db}, request={info.request_id or '-'}, client={info.identifier or '-'})"
    if isinstance(exc, EngineError):
        log.debug("%s refused: %s", where, exc)
    elif isinstance(exc, PelagosError):
        log.warning("%s failed: %s: %s", where, type(exc).__name__, exc)
    else:
        log.error("%s raised an unexpected error", where, exc_info=exc)


class RPCBase:
    """State shared by the handler mixins."""

    def __init__(self, proxy: ProxyAPI, server_info: Mapping[str, str]) -> None:
        self.proxy = proxy
        self.server_info = dict(server_info)

    @staticmethod
    def call(context: Any) -> CallInfo:
        try:
            return call_info(context.invocation_metadata())
        except Exception:  # a context without metadata (tests, odd transports)
            return CallInfo()

    def db(self, context: Any, request: Any) -> str:
        """The database of a call: the request's db_name, else the `dbname` header, else default."""
        own = getattr(request, "db_name", "")
        if own:
            return str(own)
        try:
            metadata = context.invocation_metadata()
        except Exception:  # a context without metadata (tests, odd transports)
            return DEFAULT_DATABASE
        return database_of(metadata)

    async def schema_for_output(self, db: str, collection: str, table: pa.Table) -> CollectionSchema | None:
        """The collection schema when an output column's Milvus type is ambiguous.

        JSON and VARCHAR are both Arrow strings; only the schema tells them
        apart, so it is fetched only when a string column other than `$meta`
        is in the output.
        """
        if not table.num_columns:  # most searches: the keys alone
            return None
        for f in table.schema:
            if (f.type == _STRING or f.type == _LARGE_STRING) and f.name != DYNAMIC_FIELD_NAME:
                return (await self.proxy.describe_collection(db, collection)).schema
        return None
