"""How answers leave a Connection: those finishing in the same turn of the event loop share one
write (a merged search answers all its members at once), a lone answer goes out in the turn it
was made. Driven through the asyncio.Protocol methods with a transport that records writes."""

from __future__ import annotations

import asyncio
from typing import Any

import hpack

from pelagos.adapters.grpc_h2 import CallContext
from pelagos.adapters.grpc_h2 import frames as fr
from pelagos.adapters.grpc_h2 import status as gs
from pelagos.adapters.grpc_h2.connection import Connection, Method, ServerState
from tests.adapters.grpc_h2.raw_frames import split_frames

PATH = "/test.Echo/Wait"


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _request(encoder: hpack.Encoder, sid: int, body: bytes) -> bytes:
    block = encoder.encode(
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", PATH),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    )
    return fr.frame(fr.HEADERS, fr.END_HEADERS, sid, block) + fr.frame(
        fr.DATA, fr.END_STREAM, sid, gs.frame_message(body)
    )


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _connection(release: asyncio.Event) -> tuple[Connection, _Transport]:
    async def wait(request: bytes, context: CallContext) -> bytes:
        await release.wait()
        return request.upper()

    state = ServerState(max_message_bytes=1 << 20)
    state.methods[PATH] = Method(wait, bytes, bytes)
    conn, transport = Connection(state), _Transport()
    conn.connection_made(transport)
    return conn, transport


async def test_answers_finishing_together_leave_in_one_write() -> None:
    release = asyncio.Event()
    conn, transport = await _connection(release)
    encoder = hpack.Encoder()
    conn.data_received(
        fr.PREFACE + fr.settings_frame([]) + _request(encoder, 1, b"a") + _request(encoder, 3, b"b")
    )
    await _turns(3)  # both handlers are waiting
    written = len(transport.writes)
    release.set()
    await _turns(5)
    answers = transport.writes[written:]
    assert len(answers) == 1, f"{len(answers)} writes for two answers finishing together"
    frames = split_frames(answers[0])
    data = {sid: payload for kind, _, sid, payload in frames if kind == fr.DATA}
    assert data == {1: gs.frame_message(b"A"), 3: gs.frame_message(b"B")}
    ends = {sid for kind, flags, sid, _ in frames if kind == fr.HEADERS and flags & fr.END_STREAM}
    assert ends == {1, 3}  # each stream's trailers came with it


async def test_a_lone_answer_is_written_within_a_turn() -> None:
    release = asyncio.Event()
    release.set()
    conn, transport = await _connection(release)
    conn.data_received(fr.PREFACE + fr.settings_frame([]) + _request(hpack.Encoder(), 1, b"x"))
    written = len(transport.writes)
    await _turns(2)  # the handler's task runs, then the write queued behind it
    frames = [f for w in transport.writes[written:] for f in split_frames(w)]
    assert (fr.DATA, 0, 1, gs.frame_message(b"X")) in frames
