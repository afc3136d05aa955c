"""GrpcServer: unary gRPC over HTTP/2 on asyncio, registered the way grpcio servers are.

Why not grpcio's server: on this 2-core machine grpcio's server (sync or
aio) spends ~340 us of CPU per unary call before any handler runs, and the
pure-Python grpclib on h2 ~380 us; this server spends ~70-100 us, which is
what lets one pymilvus client thread reach 1,800-2,100 canned requests/s
instead of ~1,250 (figures in bench/README.md). Header compression is the
`hpack` library's; framing and flow control are here (connection.py).

Invariants:
- `add_generic_rpc_handlers` / `add_registered_method_handlers` take what
  grpcio's generated `add_*Servicer_to_server` functions pass, so generated
  code registers servicers unchanged; only unary-unary methods are served,
  a streaming method answers UNIMPLEMENTED;
- handlers are coroutine functions `(request, context)`; a plain function is
  run in a worker thread so it cannot block the event loop;
- the port is bound exclusively (no SO_REUSEPORT); port 0 binds a free port;
- after each answer the loop polls instead of sleeping for `busy_poll_s`
  (busy_poll.py; 0 disables);
- `stop(grace)`: no new connection or call is taken (GOAWAY), calls already
  received run for up to `grace` seconds, then they are cancelled and every
  connection closed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pelagos.adapters.grpc_h2.connection import Connection, Method, ServerState

log = logging.getLogger("pelagos.adapters.grpc_h2")


@dataclass(frozen=True, slots=True)
class _CallDetails:
    """What a grpc.GenericRpcHandler is asked with."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


def _identity(data: Any) -> Any:
    return data


def _method(handler: Any) -> Method | None:
    """A Method from a grpc.RpcMethodHandler, None for streaming ones."""
    if handler is None or handler.request_streaming or handler.response_streaming:
        return None
    fn = handler.unary_unary
    if not inspect.iscoroutinefunction(fn):
        sync_fn = fn

        async def fn(request: Any, context: Any) -> Any:
            return await asyncio.to_thread(sync_fn, request, context)

    return Method(
        handler=fn,
        deserialize=handler.request_deserializer or _identity,
        serialize=handler.response_serializer or _identity,
    )


class GrpcServer:
    def __init__(self, *, max_message_bytes: int = 512 << 20, busy_poll_s: float = 0.0) -> None:
        self._state = ServerState(max_message_bytes, busy_poll_s)
        self._state.fallback = self._from_generic
        self._generic: list[Any] = []
        self._listener: asyncio.Server | None = None
        self._port = 0

    # --- registration (the grpcio server API generated code calls) --------------------------------

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        for name, handler in handlers.items():
            method = _method(handler)
            if method is not None:
                self._state.methods[f"/{service}/{name}"] = method

    def add_method(
        self,
        path: str,
        handler: Callable[[Any, Any], Any],
        deserialize: Callable[[bytes], Any],
        serialize: Callable[[Any], bytes],
    ) -> None:
        self._state.methods[path] = Method(handler, deserialize, serialize)

    def _from_generic(self, path: str) -> Method | None:
        for generic in self._generic:
            method = _method(generic.service(_CallDetails(path)))
            if method is not None:
                self._state.methods[path] = method
                return method
        return None

    # --- serving ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._state.connections)

    @property
    def accepted_connections(self) -> int:
        """Connections accepted since start."""
        return self._state.accepted

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: a free port); the bound port. OSError when the port is taken."""
        if self._listener is not None:
            raise RuntimeError("GrpcServer is already started")
        loop = asyncio.get_running_loop()
        state = self._state
        listener = await loop.create_server(
            lambda: Connection(state), host, port, reuse_address=True, reuse_port=False, backlog=1024
        )
        self._listener = listener
        self._port = int(listener.sockets[0].getsockname()[1])
        return self._port

    async def stop(self, grace: float) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._state.closing = True
        listener.close()
        connections = list(self._state.connections)
        for conn in connections:
            conn.goaway()
        pending = [asyncio.ensure_future(c.idle.wait()) for c in connections]
        if pending:
            _, late = await asyncio.wait(pending, timeout=max(0.0, grace))
            for waiter in late:
                waiter.cancel()
        for conn in list(self._state.connections):
            conn.abort_calls()
        try:
            await asyncio.wait_for(listener.wait_closed(), timeout=1.0)
        except TimeoutError:
            log.debug("listener did not report closed within 1 s")
