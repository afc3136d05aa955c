"""The Milvus gRPC servicer: every RPC Pelagos serves, and a prompt refusal of the rest.

Invariants:
- the handlers only translate (protobuf <-> pelagos.interfaces) and call the
  ProxyAPI; each is wrapped so that no exception escapes (rpc_base.rpc);
- an RPC Pelagos does not implement answers gRPC UNIMPLEMENTED at once with
  its name in the message (pymilvus does not retry UNIMPLEMENTED), never a
  fake success; every such method is an async handler, so the grpc.aio server
  needs no thread pool for them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from pelagos.adapters.milvus.rpc_base import RPCBase
from pelagos.adapters.milvus.rpc_collections import CollectionRPCs
from pelagos.adapters.milvus.rpc_databases import DatabaseRPCs
from pelagos.adapters.milvus.rpc_indexes import IndexRPCs
from pelagos.adapters.milvus.rpc_load import LoadRPCs
from pelagos.adapters.milvus.rpc_partitions import AliasRPCs, PartitionRPCs
from pelagos.adapters.milvus.rpc_reads import ReadRPCs
from pelagos.adapters.milvus.rpc_session import SessionRPCs
from pelagos.adapters.milvus.rpc_writes import WriteRPCs
from pelagos.interfaces.proxy import ProxyAPI

_MIXINS: tuple[type[RPCBase], ...] = (
    SessionRPCs,
    DatabaseRPCs,
    CollectionRPCs,
    PartitionRPCs,
    AliasRPCs,
    LoadRPCs,
    IndexRPCs,
    WriteRPCs,
    ReadRPCs,
)


class MilvusServicer(
    SessionRPCs,
    DatabaseRPCs,
    CollectionRPCs,
    PartitionRPCs,
    AliasRPCs,
    LoadRPCs,
    IndexRPCs,
    WriteRPCs,
    ReadRPCs,
    milvus_pb2_grpc.MilvusServiceServicer,  # type: ignore[misc]
):
    """Milvus's MilvusService over a Pelagos ProxyAPI."""

    def __init__(self, proxy: ProxyAPI, server_info: Mapping[str, str]) -> None:
        RPCBase.__init__(self, proxy, server_info)


def _service_methods() -> list[str]:
    base = milvus_pb2_grpc.MilvusServiceServicer
    return [name for name, member in vars(base).items() if not name.startswith("_") and callable(member)]


def implemented_rpcs() -> list[str]:
    """Names of the MilvusService RPCs Pelagos serves."""
    return [name for name in _service_methods() if any(name in vars(m) for m in _MIXINS)]


def unimplemented_rpcs() -> list[str]:
    """Names of the MilvusService RPCs answered with UNIMPLEMENTED."""
    served = set(implemented_rpcs())
    return [name for name in _service_methods() if name not in served]


def _unimplemented(name: str) -> Callable[[Any, Any, Any], Coroutine[Any, Any, None]]:
    async def handler(self: Any, request: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by Pelagos")

    handler.__name__ = handler.__qualname__ = name
    return handler


for _name in unimplemented_rpcs():
    setattr(MilvusServicer, _name, _unimplemented(_name))
