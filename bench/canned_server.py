"""A Milvus gRPC server that does no work: the ceiling of the pymilvus client on this machine.

    python -m bench.canned_server --port PORT [--transport pelagos|grpcio] [--work-us US]

It answers the calls of the benchmark's `canned` run (connect, create and
describe a collection, insert, search) with well-formed responses built
from the request alone: an insert is acknowledged with its primary keys and
row count; a search of nq queries with limit k gets nq x k hits (ids
0..k-1, increasing distances) with the `pk` output field, the shape
Pelagos returns. Nothing is stored, searched or made durable, so a figure
measured against it is what the client (pymilvus encoding and decoding,
grpcio's channel) and the transport allow: the ceiling of what a server's
own work may cost. It serves through the transport Pelagos serves with by
default (pelagos.adapters.grpc_h2, the same busy polling), so the gap
between Pelagos and this server is Pelagos's database work alone;
`--transport grpcio` serves through grpc.aio instead (~340 us of server CPU
more per call on this machine). It runs in its own process and on the
event loop Pelagos runs on (uvloop when installed), so it does not share
the client's GIL. `--work-us US` holds each query that long (a busy wait,
the CPU kept as a search would) before answering: the client's rate
against a server whose only cost is, say, faiss's time per query.

Invariants: a search answer is built once per (nq, k) and reused; every
other call the protocol does not make answers UNIMPLEMENTED (grpcio's
default), so a change in what the client calls shows up as an error, not
as a silently wrong ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from pelagos.adapters.grpc_h2 import GrpcServer
from pelagos.runtime.cli import event_loop_factory
from pelagos.runtime.config import ServerConfig

OK = common_pb2.Status(code=0, error_code=common_pb2.Success)


def _timestamp() -> int:
    return int(time.time() * 1000) << 18  # Milvus hybrid timestamp: physical ms, 18 logical bits


def _search_params(request: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in request.search_params}


class CannedMilvus(milvus_pb2_grpc.MilvusServiceServicer):  # type: ignore[misc]
    def __init__(self, work_us: float = 0.0) -> None:
        self._work_s = work_us / 1e6
        self._schemas: dict[str, bytes] = {}
        self._answers: dict[tuple[int, int], milvus_pb2.SearchResults] = {}

    async def Connect(self, request: Any, context: Any) -> Any:
        info = common_pb2.ServerInfo(build_tags="canned", reserved={})
        return milvus_pb2.ConnectResponse(status=OK, server_info=info, identifier=1)

    async def HasCollection(self, request: Any, context: Any) -> Any:
        return milvus_pb2.BoolResponse(status=OK, value=request.collection_name in self._schemas)

    async def DropCollection(self, request: Any, context: Any) -> Any:
        self._schemas.pop(request.collection_name, None)
        return OK

    async def CreateCollection(self, request: Any, context: Any) -> Any:
        self._schemas[request.collection_name] = request.schema
        return OK

    async def DescribeCollection(self, request: Any, context: Any) -> Any:
        raw = self._schemas.get(request.collection_name)
        if raw is None:
            status = common_pb2.Status(
                code=100, error_code=common_pb2.CollectionNotExists, reason="not found"
            )
            return milvus_pb2.DescribeCollectionResponse(status=status)
        schema = schema_pb2.CollectionSchema()
        schema.ParseFromString(raw)
        return milvus_pb2.DescribeCollectionResponse(
            status=OK,
            schema=schema,
            collectionID=1,
            collection_name=request.collection_name,
            shards_num=1,
            created_timestamp=_timestamp(),
            update_timestamp=1,
        )

    async def Insert(self, request: Any, context: Any) -> Any:
        pks: Any = next((f.scalars.long_data.data for f in request.fields_data if f.field_name == "pk"), [])
        return milvus_pb2.MutationResult(
            status=OK,
            IDs=schema_pb2.IDs(int_id=schema_pb2.LongArray(data=pks)),
            insert_cnt=request.num_rows,
            timestamp=_timestamp(),
        )

    async def Search(self, request: Any, context: Any) -> Any:
        nq = request.nq
        k = int(_search_params(request).get("topk", "10"))
        answer = self._answers.get((nq, k))
        if answer is None:
            answer = self._answers[(nq, k)] = _search_answer(request.collection_name, nq, k)
        if self._work_s:
            until = time.perf_counter() + self._work_s * nq
            while time.perf_counter() < until:
                pass
        return answer


def _search_answer(collection: str, nq: int, k: int) -> Any:
    ids = list(range(k)) * nq
    pk = schema_pb2.FieldData(
        type=schema_pb2.DataType.Int64,
        field_name="pk",
        field_id=100,
        scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=ids)),
    )
    data = schema_pb2.SearchResultData(
        num_queries=nq,
        top_k=k,
        fields_data=[pk],
        scores=[float(i) for i in range(k)] * nq,
        ids=schema_pb2.IDs(int_id=schema_pb2.LongArray(data=ids)),
        topks=[k] * nq,
        output_fields=["pk"],
        primary_field_name="pk",
    )
    return milvus_pb2.SearchResults(status=OK, results=data, collection_name=collection)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.canned_server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--transport", choices=("pelagos", "grpcio"), default="pelagos")
    p.add_argument("--work-us", type=float, default=0.0)
    args = p.parse_args(argv)
    serve = serve_pelagos if args.transport == "pelagos" else serve_grpcio
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(args.host, args.port, CannedMilvus(args.work_us)))


async def serve_pelagos(host: str, port: int, servicer: CannedMilvus) -> None:
    busy_poll_s = ServerConfig().busy_poll_us / 1e6  # as `pelagos standalone` serves by default
    server = GrpcServer(busy_poll_s=busy_poll_s)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(servicer, server)
    await server.start(host, port)
    await asyncio.Event().wait()  # until the process is signalled


async def serve_grpcio(host: str, port: int, servicer: CannedMilvus) -> None:
    unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    server = grpc.aio.server(options=unlimited)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    main()
