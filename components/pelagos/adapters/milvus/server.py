"""MilvusServer: the server that speaks the Milvus protocol on a port.

Two transports serve the same servicer: `pelagos` (default), the lean HTTP/2
server of pelagos.adapters.grpc_h2, and `grpcio`, grpc.aio's server (slower:
~340 us of CPU per call before the handler runs, against ~70-100 us), kept
as a fallback and to check the two agree.

Invariants:
- messages up to `max_message_mb` pass both ways (large inserts and results);
- the port is bound exclusively (no SO_REUSEPORT): a taken port is a
  ServerProcessError naming it, never a second server silently sharing it;
- port 0 binds a free port; `port` tells which one once started;
- keepalive pings from clients (pymilvus pings every 10 s, also without
  calls) are allowed, so the server never answers them with GOAWAY;
- `stop(grace)` lets running calls finish for `grace` seconds, then cancels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from pelagos.adapters.grpc_h2 import GrpcServer
from pelagos.adapters.milvus.servicer import MilvusServicer
from pelagos.errors import ServerProcessError
from pelagos.interfaces.proxy import ProxyAPI

log = logging.getLogger("pelagos.adapters.milvus")

Transport = Literal["pelagos", "grpcio"]
TRANSPORTS: tuple[Transport, ...] = ("pelagos", "grpcio")


class MilvusServer:
    def __init__(
        self,
        proxy: ProxyAPI,
        host: str,
        port: int,
        *,
        max_message_mb: int = 512,
        server_info: Mapping[str, str],
        transport: Transport = "pelagos",
        busy_poll_us: int = 0,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")
        self._transport = transport
        self._busy_poll_s = busy_poll_us / 1e6
        self._servicer = MilvusServicer(proxy, server_info)
        self._host = host
        self._requested_port = port
        self._max_bytes = max_message_mb * 1024 * 1024
        self._server: grpc.aio.Server | GrpcServer | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """The bound port (the requested one, or the one chosen for port 0); 0 before start."""
        return self._port

    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("MilvusServer is already started")
        if self._transport == "pelagos":
            await self._start_pelagos()
        else:
            await self._start_grpcio()
        log.info(
            "Milvus protocol server listening on %s:%d (transport %s)",
            self._host,
            self._port,
            self._transport,
        )

    async def _start_pelagos(self) -> None:
        server = GrpcServer(max_message_bytes=self._max_bytes, busy_poll_s=self._busy_poll_s)
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(self._servicer, server)
        target = f"{self._host}:{self._requested_port}"
        try:
            self._port = await server.start(self._host, self._requested_port)
        except OSError as exc:
            raise self._port_taken(target, exc.strerror or str(exc)) from exc
        self._server = server

    async def _start_grpcio(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", self._max_bytes),
                ("grpc.max_receive_message_length", self._max_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
                ("grpc.http2.max_ping_strikes", 0),
            ]
        )
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(self._servicer, server)
        target = f"{self._host}:{self._requested_port}"
        try:
            bound = server.add_insecure_port(target)
        except RuntimeError as exc:
            raise self._port_taken(target, str(exc)) from exc
        if not bound:
            raise self._port_taken(target, "bind failed")
        await server.start()
        self._server = server
        self._port = bound

    async def stop(self, grace: float) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
            log.info("Milvus protocol server on %s:%d stopped", self._host, self._port)

    def _port_taken(self, target: str, detail: str) -> ServerProcessError:
        return ServerProcessError(
            f"cannot listen on {target} for the Milvus protocol server ({detail}): the port is in use or "
            "the address is not local; stop whatever listens there or choose another port"
        )
