"""A lean gRPC server over HTTP/2 for unary calls, on asyncio (see server.py for why).

`GrpcServer` registers servicers through grpcio's generated
`add_*Servicer_to_server` functions and serves them; handlers get a
`CallContext` with the grpc.aio.ServicerContext calls servicers use.
"""

from pelagos.adapters.grpc_h2.context import AbortError, CallContext
from pelagos.adapters.grpc_h2.server import GrpcServer

__all__ = ["AbortError", "CallContext", "GrpcServer"]
