"""Session RPCs: Connect, GetVersion, CheckHealth, AllocTimestamp.

Invariants:
- Connect hands out a process-unique identifier and the server info
  (`build_tags`, `deploy_mode`, ...) given to MilvusServer; it never touches
  the engine, so a client can connect while the engine is still starting;
- CheckHealth probes the engine with a timestamp allocation (the TSO needs
  the coordinator): healthy when it answers, unhealthy with the reason when
  not; the call itself always succeeds.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.rpc_base import RPCBase, rpc

_SERVER_INFO_FIELDS = ("build_tags", "build_time", "git_commit", "go_version", "deploy_mode")


class SessionRPCs(RPCBase):
    _identifiers = itertools.count(int(time.time() * 1000) << 8)

    @rpc(milvus_pb2.ConnectResponse)
    async def Connect(self, request: Any, context: Any) -> Any:
        info = common_pb2.ServerInfo()
        for key, value in self.server_info.items():
            if key in _SERVER_INFO_FIELDS:
                setattr(info, key, str(value))
            else:
                info.reserved[key] = str(value)
        return milvus_pb2.ConnectResponse(
            status=st.ok(), server_info=info, identifier=next(self._identifiers)
        )

    @rpc(milvus_pb2.GetVersionResponse)
    async def GetVersion(self, request: Any, context: Any) -> Any:
        version = self.server_info.get("version") or self.server_info.get("build_tags", "")
        return milvus_pb2.GetVersionResponse(status=st.ok(), version=version)

    @rpc(milvus_pb2.CheckHealthResponse)
    async def CheckHealth(self, request: Any, context: Any) -> Any:
        try:
            await self.proxy.allocate_timestamp()
        except Exception as exc:
            return milvus_pb2.CheckHealthResponse(status=st.ok(), isHealthy=False, reasons=[str(exc)])
        return milvus_pb2.CheckHealthResponse(status=st.ok(), isHealthy=True)

    @rpc(milvus_pb2.AllocTimestampResponse)
    async def AllocTimestamp(self, request: Any, context: Any) -> Any:
        return milvus_pb2.AllocTimestampResponse(
            status=st.ok(), timestamp=await self.proxy.allocate_timestamp()
        )
