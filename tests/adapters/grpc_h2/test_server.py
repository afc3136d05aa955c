"""GrpcServer driven by grpcio's own client (the one pymilvus uses): calls, flow control,
limits, errors, deadlines, cancellation, metadata, compression, graceful stop, and raw frames
(preface, SETTINGS and PING acknowledgements).

Methods take and return raw bytes (identity serialisation), so every byte the client sent can be
checked on the server and back. The client is blocking, so calls run in threads while the server
serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from pelagos.adapters.grpc_h2 import CallContext, GrpcServer
from pelagos.adapters.grpc_h2 import frames as fr
from tests.adapters.grpc_h2.raw_frames import split_frames

ECHO = "/test.Echo/Echo"
SIZED = "/test.Echo/Sized"
SLOW = "/test.Echo/Slow"
ABORT = "/test.Echo/Abort"
BOOM = "/test.Echo/Boom"
META = "/test.Echo/Meta"


class Service:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def echo(self, request: bytes, context: CallContext) -> bytes:
        return request

    async def sized(self, request: bytes, context: CallContext) -> bytes:
        """Answers int(request) bytes of a pattern."""
        n = int(request.decode())
        return bytes(range(256)) * (n // 256) + bytes(range(n % 256))

    async def slow(self, request: bytes, context: CallContext) -> bytes:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b"done"

    async def abort(self, request: bytes, context: CallContext) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now: 100% busy, ü")
        raise AssertionError("abort returns no value")

    async def boom(self, request: bytes, context: CallContext) -> bytes:
        raise RuntimeError("a bug")

    async def meta(self, request: bytes, context: CallContext) -> bytes:
        pairs = [f"{k}={v!r}" for k, v in context.invocation_metadata()]
        return "\n".join(pairs).encode()


def _identity(b: bytes) -> bytes:
    return b


@pytest.fixture
async def service() -> Service:
    return Service()


@pytest.fixture
async def server(service: Service) -> AsyncIterator[GrpcServer]:
    srv = GrpcServer(max_message_bytes=64 << 20)
    for path, fn in (
        (ECHO, service.echo),
        (SIZED, service.sized),
        (SLOW, service.slow),
        (ABORT, service.abort),
        (BOOM, service.boom),
        (META, service.meta),
    ):
        srv.add_method(path, fn, _identity, _identity)
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.stop(0.5)


@pytest.fixture
async def channel(server: GrpcServer) -> AsyncIterator[grpc.Channel]:
    ch = grpc.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[("grpc.max_receive_message_length", 128 << 20), ("grpc.max_send_message_length", 128 << 20)],
    )
    yield ch
    ch.close()


def unary(channel: grpc.Channel, path: str) -> Any:
    """A unary-unary multi-callable (call it, or `.future(...)` it) passing bytes through."""
    return channel.unary_unary(path, request_serializer=_identity, response_deserializer=_identity)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_echo(channel: grpc.Channel) -> None:
    assert await call(unary(channel, ECHO), b"hello") == b"hello"
    assert await call(unary(channel, ECHO), b"") == b""


async def test_requests_larger_than_every_window(channel: grpc.Channel) -> None:
    # 40 MiB: over the 16 MiB stream window, so the server must grant more while it arrives
    payload = bytes(range(251)) * (40 * 1024 * 1024 // 251)
    assert await call(unary(channel, ECHO), payload) == payload


async def test_responses_larger_than_the_client_windows(channel: grpc.Channel) -> None:
    n = 30 * 1024 * 1024 + 7  # the client starts with small windows: the server must wait for updates
    answer = await call(unary(channel, SIZED), str(n).encode())
    assert len(answer) == n
    assert answer[:256] == bytes(range(256)) and answer[-7:] == bytes(range(7))


async def test_many_concurrent_calls_on_one_connection(channel: grpc.Channel) -> None:
    fn = unary(channel, ECHO)
    payloads = [str(i).encode() * (1 + i * 97) for i in range(64)]
    answers = await asyncio.gather(*(call(fn, p) for p in payloads))
    assert answers == payloads


async def test_concurrent_large_responses_share_the_connection_window(channel: grpc.Channel) -> None:
    fn = unary(channel, SIZED)
    sizes = [3_000_000 + i for i in range(6)]
    answers = await asyncio.gather(*(call(fn, str(n).encode()) for n in sizes))
    assert [len(a) for a in answers] == sizes


async def test_unknown_method_is_unimplemented(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as err:
        await call(unary(channel, "/test.Echo/Nope"), b"x")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/test.Echo/Nope" in (err.value.details() or "")


async def test_a_request_over_the_limit_is_refused_and_the_connection_lives_on(
    service: Service,
) -> None:
    srv = GrpcServer(max_message_bytes=1 << 20)
    srv.add_method(ECHO, service.echo, _identity, _identity)
    port = await srv.start("127.0.0.1", 0)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
    try:
        with pytest.raises(grpc.RpcError) as err:
            await call(unary(ch, ECHO), b"x" * (3 << 20))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await call(unary(ch, ECHO), b"small") == b"small"
    finally:
        ch.close()
        await srv.stop(0.5)


async def test_abort_carries_code_and_percent_encoded_details(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as err:
        await call(unary(channel, ABORT), b"")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "not now: 100% busy, ü"


async def test_a_handler_bug_is_unknown_not_a_hang(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as err:
        await call(unary(channel, BOOM), b"", timeout=10)
    assert err.value.code() == grpc.StatusCode.UNKNOWN
    assert "RuntimeError" in (err.value.details() or "")


async def test_deadline_cancels_the_handler(channel: grpc.Channel, service: Service) -> None:
    with pytest.raises(grpc.RpcError) as err:
        await call(unary(channel, SLOW), b"", timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(service.cancelled.wait(), timeout=5)


async def test_client_cancellation_cancels_the_handler(channel: grpc.Channel, service: Service) -> None:
    future = unary(channel, SLOW).future(b"")
    await asyncio.wait_for(service.started.wait(), timeout=5)
    future.cancel()
    await asyncio.wait_for(service.cancelled.wait(), timeout=5)


async def test_metadata_reaches_the_handler(channel: grpc.Channel) -> None:
    answer = await call(unary(channel, META), b"", metadata=(("dbname", "db1"), ("x-blob-bin", b"\x00\xff")))
    lines = answer.decode().splitlines()
    assert "dbname='db1'" in lines
    assert "x-blob-bin=b'\\x00\\xff'" in lines
    assert not any(line.startswith((":", "content-type=", "te=")) for line in lines)


async def test_gzip_compressed_requests(server: GrpcServer) -> None:
    ch = grpc.insecure_channel(f"127.0.0.1:{server.port}", compression=grpc.Compression.Gzip)
    try:
        payload = b"compress me " * 10_000
        assert await call(unary(ch, ECHO), payload) == payload
    finally:
        ch.close()


async def test_graceful_stop_finishes_calls_in_flight(service: Service) -> None:
    srv = GrpcServer()
    srv.add_method(SLOW, service.slow, _identity, _identity)
    srv.add_method(ECHO, service.echo, _identity, _identity)
    port = await srv.start("127.0.0.1", 0)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        pending = asyncio.ensure_future(call(unary(ch, SLOW), b"", timeout=10))
        await asyncio.wait_for(service.started.wait(), timeout=5)
        stopping = asyncio.ensure_future(srv.stop(5.0))
        await asyncio.sleep(0.2)
        service.release.set()
        assert await pending == b"done"
        await stopping
        with pytest.raises(grpc.RpcError) as err:
            await call(unary(ch, ECHO), b"x", timeout=2)
        assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        ch.close()


async def test_stop_cancels_calls_after_the_grace(service: Service) -> None:
    srv = GrpcServer()
    srv.add_method(SLOW, service.slow, _identity, _identity)
    port = await srv.start("127.0.0.1", 0)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        pending = asyncio.ensure_future(call(unary(ch, SLOW), b"", timeout=10))
        await asyncio.wait_for(service.started.wait(), timeout=5)
        await srv.stop(0.1)
        await asyncio.wait_for(service.cancelled.wait(), timeout=5)
        with pytest.raises(grpc.RpcError):
            await pending
    finally:
        ch.close()


async def test_a_taken_port_is_an_os_error(server: GrpcServer) -> None:
    other = GrpcServer()
    with pytest.raises(OSError):
        await other.start("127.0.0.1", server.port)


def _raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


async def test_a_bad_preface_gets_goaway_and_close(server: GrpcServer) -> None:
    reply = await call(_raw_exchange, server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    kinds = [f[0] for f in split_frames(reply)]
    assert fr.GOAWAY in kinds
    goaway = next(f for f in split_frames(reply) if f[0] == fr.GOAWAY)
    assert struct.unpack(">I", goaway[3][4:8])[0] == fr.PROTOCOL_ERROR


async def test_ping_and_settings_are_acknowledged(server: GrpcServer) -> None:
    opaque = b"12345678"
    request = (
        fr.PREFACE
        + fr.settings_frame([(fr.SETTINGS_MAX_FRAME_SIZE, 32768)])
        + fr.frame(fr.PING, 0, 0, opaque)
        + fr.frame(fr.PING, 0, 0, b"short")  # a PING must be 8 bytes: FRAME_SIZE_ERROR
    )
    frames = split_frames(await call(_raw_exchange, server.port, request))
    assert (fr.SETTINGS, fr.ACK, 0, b"") in frames
    assert (fr.PING, fr.ACK, 0, opaque) in frames
    goaway = next(f for f in frames if f[0] == fr.GOAWAY)
    assert struct.unpack(">I", goaway[3][4:8])[0] == fr.FRAME_SIZE_ERROR
