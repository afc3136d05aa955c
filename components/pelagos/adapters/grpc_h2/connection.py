"""One client connection: HTTP/2 frames in, unary gRPC calls dispatched, responses out.

Invariants:
- frames are parsed from one buffer in a loop, and everything a batch of
  frames calls for (SETTINGS and PING acks, window updates, answers computed
  at once) leaves in one write;
- an answer is written at the end of the current turn of the event loop, in
  one write with every other answer of that turn (the members of a merged
  search finish together: one write of ~30 us instead of one per call);
- flow control, receiving: streams start with STREAM_WINDOW and the
  connection is raised to CONNECTION_WINDOW at once; both are replenished
  when half is used, so requests up to the message limit never stall (a
  unary request is buffered whole before its handler runs anyway);
- flow control, sending: DATA never exceeds the peer's connection and
  stream windows nor its SETTINGS_MAX_FRAME_SIZE; what does not fit waits
  for WINDOW_UPDATE, streams in the order they blocked; trailers follow the
  last DATA frame of their stream;
- each request runs in its own task; a RST_STREAM from the client, a lost
  connection or an expired `grpc-timeout` cancels it (the last one answers
  DEADLINE_EXCEEDED); a request over the message limit is answered
  RESOURCE_EXHAUSTED, an unknown method UNIMPLEMENTED, without running anything;
- a violation of HTTP/2 that leaves the connection state unknown (bad
  preface, HPACK error, frame too large, CONTINUATION out of order) ends the
  connection with GOAWAY and the error code; anything a stream alone got
  wrong resets that stream only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from pelagos.adapters.grpc_h2 import frames as fr
from pelagos.adapters.grpc_h2 import status as gs
from pelagos.adapters.grpc_h2.busy_poll import BusyPoll
from pelagos.adapters.grpc_h2.context import AbortError, CallContext, metadatum
from pelagos.adapters.grpc_h2.headers import HeaderDecoder

log = logging.getLogger("pelagos.adapters.grpc_h2")

STREAM_WINDOW = 16 << 20
CONNECTION_WINDOW = 64 << 20
#: the largest frame we accept (advertised in SETTINGS_MAX_FRAME_SIZE): fewer frames for big inserts
MAX_RECV_FRAME = 4 << 20
MAX_CONCURRENT_STREAMS = 1000

_OK_HEADERS = fr.header_block([("content-type", "application/grpc")], status_200=True)
_OK_TRAILERS = fr.header_block([("grpc-status", "0")])
_SKIPPED_METADATA = frozenset(
    {"content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "user-agent"}
)


@dataclass(frozen=True, slots=True)
class Method:
    """A unary method: `handler(request, context)` is awaited for the response."""

    handler: Callable[[Any, CallContext], Awaitable[Any]]
    deserialize: Callable[[bytes], Any]
    serialize: Callable[[Any], bytes]


class ServerState:
    """What every connection of one server shares."""

    def __init__(self, max_message_bytes: int, busy_poll_s: float = 0.0) -> None:
        self.methods: dict[str, Method] = {}
        self.busy_poll = BusyPoll(busy_poll_s)
        #: asked for a path that is not registered (grpc generic handlers)
        self.fallback: Callable[[str], Method | None] | None = None
        self.max_message_bytes = max_message_bytes
        self.connections: set[Connection] = set()
        self.accepted = 0
        self.closing = False

    def method(self, path: str) -> Method | None:
        found = self.methods.get(path)
        if found is None and self.fallback is not None:
            found = self.fallback(path)
        return found


class _Stream:
    __slots__ = (
        "body",
        "chunks",
        "deadline_hit",
        "encoding",
        "id",
        "metadata",
        "method",
        "offset",
        "received",
        "recv_unacked",
        "responded",
        "send_window",
        "size",
        "task",
        "timeout",
        "timer",
        "trailers",
    )

    def __init__(self, stream_id: int, send_window: int) -> None:
        self.id = stream_id
        #: the call's metadata (headers but pseudo-headers and transport settings), -bin values decoded
        self.metadata: list[tuple[str, str | bytes]] = []
        self.timeout: str | None = None  # grpc-timeout
        self.encoding: str | None = None  # grpc-encoding
        self.chunks: list[bytes] = []
        self.size = 0
        self.received = False  # END_STREAM seen
        self.responded = False  # our END_STREAM sent or queued
        self.recv_unacked = 0
        self.send_window = send_window
        self.method: Method | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline_hit = False
        # response being sent: body bytes, how far, trailers block
        self.body: memoryview | None = None
        self.offset = 0
        self.trailers = b""


class Connection(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray()
        self._preface = False
        self._decoder = HeaderDecoder()
        self._streams: dict[int, _Stream] = {}
        self._last_stream = 0
        self._continuation: tuple[int, int, list[bytes]] | None = None  # stream id, flags, fragments
        self._recv_unacked = 0
        self._send_window = fr.DEFAULT_WINDOW
        self._peer_initial_window = fr.DEFAULT_WINDOW
        self._peer_max_frame = fr.DEFAULT_MAX_FRAME
        self._blocked: dict[int, _Stream] = {}  # streams waiting for window, in order
        self._out: list[bytes] = []
        self._in_batch = False
        self._flush_queued = False
        self._closed = False
        self._goaway_sent = False
        self._peer = ""
        self.idle = asyncio.Event()
        self.idle.set()

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = tcp = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        peer = tcp.get_extra_info("peername")
        self._peer = f"ipv4:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
        self._state.connections.add(self)
        self._state.accepted += 1
        tcp.write(
            fr.settings_frame(
                [
                    (fr.SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS),
                    (fr.SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                    (fr.SETTINGS_MAX_FRAME_SIZE, MAX_RECV_FRAME),
                    (fr.SETTINGS_ENABLE_PUSH, 0),
                ]
            )
            + fr.window_update(0, CONNECTION_WINDOW - fr.DEFAULT_WINDOW)
        )
        if self._state.closing:
            self.goaway()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._in_batch = True
        try:
            self._process()
        except fr.ConnectionError_ as exc:
            log.debug("HTTP/2 connection error from %s: %s", self._peer, exc)
            self._out.append(fr.goaway(self._last_stream, exc.code, str(exc).encode()[:256]))
            self._close()
        finally:
            self._in_batch = False
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._state.connections.discard(self)
        for st in list(self._streams.values()):
            self._cancel(st)
        self._streams.clear()
        self._blocked.clear()
        self.idle.set()

    # --- server control ------------------------------------------------------------------------

    def goaway(self) -> None:
        """Tell the client no new calls are taken here; calls already received finish."""
        if self._goaway_sent or self._closed:
            return
        self._goaway_sent = True
        self._send(fr.goaway(self._last_stream, fr.NO_ERROR))
        if not self._streams:
            self._close()

    def abort_calls(self) -> None:
        for st in list(self._streams.values()):
            self._cancel(st)
        self._close()

    # --- frames in --------------------------------------------------------------------------------

    def _process(self) -> None:
        buf = self._buf
        pos = 0
        if not self._preface:
            if len(buf) < len(fr.PREFACE):
                if not fr.PREFACE.startswith(bytes(buf)):
                    raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                return
            if bytes(buf[: len(fr.PREFACE)]) != fr.PREFACE:
                raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
            self._preface = True
            pos = len(fr.PREFACE)
        end = len(buf)
        try:
            while end - pos >= fr.HEADER_SIZE and not self._closed:
                length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
                if length > MAX_RECV_FRAME:
                    raise fr.ConnectionError_(fr.FRAME_SIZE_ERROR, f"a frame of {length} bytes")
                stop = pos + fr.HEADER_SIZE + length
                if stop > end:
                    break
                kind = buf[pos + 3]
                flags = buf[pos + 4]
                sid = fr.u32(buf, pos + 5) & 0x7FFFFFFF
                payload = bytes(buf[pos + fr.HEADER_SIZE : stop])
                pos = stop
                if self._continuation is not None and kind != fr.CONTINUATION:
                    raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "a header block was interrupted")
                if kind == fr.DATA:
                    self._on_data(sid, flags, payload)
                elif kind == fr.HEADERS:
                    self._on_headers(sid, flags, payload)
                elif kind == fr.CONTINUATION:
                    self._on_continuation(sid, flags, payload)
                elif kind == fr.WINDOW_UPDATE:
                    self._on_window_update(sid, payload)
                elif kind == fr.PING:
                    self._on_ping(sid, flags, payload)
                elif kind == fr.SETTINGS:
                    self._on_settings(sid, flags, payload)
                elif kind == fr.RST_STREAM:
                    self._on_rst_stream(sid, payload)
                elif kind == fr.GOAWAY:
                    pass  # the client opens no new streams; the ones it has finish
                elif kind == fr.PUSH_PROMISE:
                    raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
                # PRIORITY and unknown frame types are ignored (RFC 9113 5.5)
        finally:
            del buf[:pos]

    def _on_headers(self, sid: int, flags: int, payload: bytes) -> None:
        if sid == 0 or not sid & 1:
            raise fr.ConnectionError_(fr.PROTOCOL_ERROR, f"HEADERS on stream {sid}")
        start, stop = 0, len(payload)
        if flags & fr.PADDED:
            if not payload:
                raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "padded HEADERS without a pad length")
            start, stop = 1, len(payload) - payload[0]
        if flags & fr.PRIORITY_FLAG:
            start += 5
        if start > stop:
            raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "HEADERS padding exceeds the frame")
        fragment = payload[start:stop]
        if flags & fr.END_HEADERS:
            self._on_header_block(sid, flags, fragment)
        else:
            self._continuation = (sid, flags, [fragment])

    def _on_continuation(self, sid: int, flags: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != sid:
            raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "CONTINUATION without a header block")
        first_sid, first_flags, fragments = self._continuation
        fragments.append(payload)
        if sum(map(len, fragments)) > 1 << 20:
            raise fr.ConnectionError_(fr.ENHANCE_YOUR_CALM, "a header block over 1 MiB")
        if flags & fr.END_HEADERS:
            self._continuation = None
            self._on_header_block(first_sid, first_flags, b"".join(fragments))

    def _on_header_block(self, sid: int, flags: int, block: bytes) -> None:
        try:
            headers = self._decoder.decode(block)
        except Exception as exc:  # hpack's HPACKError and its subclasses
            raise fr.ConnectionError_(fr.COMPRESSION_ERROR, f"header block does not decode: {exc}") from exc
        st = self._streams.get(sid)
        if st is not None:  # trailers from the client: only END_STREAM matters
            if flags & fr.END_STREAM:
                self._end_of_request(st)
            return
        if sid <= self._last_stream:
            return  # a stream that is already closed: ignore (we may have reset it)
        self._last_stream = sid
        if self._goaway_sent or len(self._streams) >= MAX_CONCURRENT_STREAMS:
            self._out.append(fr.rst_stream(sid, fr.REFUSED_STREAM))
            return
        st = _Stream(sid, self._peer_initial_window)
        self._streams[sid] = st
        self.idle.clear()
        path = ""
        content_type = ""
        metadata = st.metadata
        for name, value in headers:  # one pass: the call's path, its settings, what the handler sees
            if name[0] == ":":
                if name == ":path":
                    path = value
            elif name not in _SKIPPED_METADATA:
                metadata.append((name, value) if not name.endswith("-bin") else metadatum(name, value))
            elif name == "content-type":
                content_type = value
            elif name == "grpc-timeout":
                st.timeout = value
            elif name == "grpc-encoding":
                st.encoding = value
        if not content_type.startswith("application/grpc"):
            self._respond_http(st, "415")
            return
        method = self._state.method(path)
        if method is None:
            self._respond_status(st, gs.UNIMPLEMENTED, f"Method not found: {path}")
            return
        st.method = method
        if flags & fr.END_STREAM:
            self._end_of_request(st)

    def _on_data(self, sid: int, flags: int, payload: bytes) -> None:
        n = len(payload)
        self._recv_unacked += n
        if self._recv_unacked >= CONNECTION_WINDOW // 2:
            self._out.append(fr.window_update(0, self._recv_unacked))
            self._recv_unacked = 0
        if sid == 0:
            raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "DATA on stream 0")
        st = self._streams.get(sid)
        if st is None or st.received:
            return  # closed or reset: the data only counts against the connection window
        if flags & fr.PADDED:
            if not payload or payload[0] >= n:
                raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "DATA padding exceeds the frame")
            payload = payload[1 : n - payload[0]]
        st.size += len(payload)
        if st.size > self._state.max_message_bytes + 5:
            st.chunks.clear()
            self._respond_status(
                st,
                gs.RESOURCE_EXHAUSTED,
                f"Received message larger than max ({st.size - 5} vs. {self._state.max_message_bytes})",
            )
            return
        st.chunks.append(payload)
        if flags & fr.END_STREAM:
            self._end_of_request(st)
            return
        st.recv_unacked += n
        if st.recv_unacked >= STREAM_WINDOW // 2:
            self._out.append(fr.window_update(sid, st.recv_unacked))
            st.recv_unacked = 0

    def _on_window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise fr.ConnectionError_(fr.FRAME_SIZE_ERROR, "WINDOW_UPDATE of a wrong size")
        increment = fr.u32(payload) & 0x7FFFFFFF
        if sid == 0:
            if increment == 0:
                raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "a connection WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > fr.MAX_WINDOW:
                raise fr.ConnectionError_(fr.FLOW_CONTROL_ERROR, "the connection window overflowed")
        else:
            st = self._streams.get(sid)
            if st is None:
                return
            if increment == 0 or st.send_window + increment > fr.MAX_WINDOW:
                self._reset(st, fr.PROTOCOL_ERROR if increment == 0 else fr.FLOW_CONTROL_ERROR)
                return
            st.send_window += increment
        if self._blocked:
            self._resume_blocked()

    def _on_ping(self, sid: int, flags: int, payload: bytes) -> None:
        if sid != 0:
            raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise fr.ConnectionError_(fr.FRAME_SIZE_ERROR, "PING of a wrong size")
        if not flags & fr.ACK:
            self._out.append(fr.frame(fr.PING, fr.ACK, 0, payload))

    def _on_settings(self, sid: int, flags: int, payload: bytes) -> None:
        if sid != 0:
            raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & fr.ACK:
            if payload:
                raise fr.ConnectionError_(fr.FRAME_SIZE_ERROR, "a SETTINGS ack with a payload")
            return
        for key, value in fr.parse_settings(payload):
            if key == fr.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > fr.MAX_WINDOW:
                    raise fr.ConnectionError_(fr.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for st in self._streams.values():
                    st.send_window += delta
            elif key == fr.SETTINGS_MAX_FRAME_SIZE:
                if not fr.DEFAULT_MAX_FRAME <= value <= fr.MAX_FRAME_LIMIT:
                    raise fr.ConnectionError_(fr.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
                self._peer_max_frame = value
            # header table size: our header blocks never use the dynamic table;
            # push, concurrency and header list limits do not constrain a server's answers
        self._out.append(fr.SETTINGS_ACK)
        if self._blocked:
            self._resume_blocked()

    def _on_rst_stream(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise fr.ConnectionError_(fr.FRAME_SIZE_ERROR, "RST_STREAM of a wrong size")
        st = self._streams.pop(sid, None)
        if st is not None:
            self._blocked.pop(sid, None)
            self._cancel(st)
            self._check_idle()

    # --- calls ------------------------------------------------------------------------------------

    def _end_of_request(self, st: _Stream) -> None:
        st.received = True
        method = st.method
        assert method is not None
        body = st.chunks[0] if len(st.chunks) == 1 else b"".join(st.chunks)
        st.chunks = []
        timeout = None if st.timeout is None else gs.parse_timeout(st.timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        ctx = CallContext(st.metadata, self._peer, deadline)
        st.task = self._loop.create_task(self._call(st, method, body, st.encoding, ctx))
        if timeout is not None:
            st.timer = self._loop.call_later(timeout, self._expire, st)

    async def _call(
        self, st: _Stream, method: Method, body: bytes, encoding: str | None, ctx: CallContext
    ) -> None:
        try:
            message = gs.unframe_message(body, encoding, self._state.max_message_bytes)
            try:
                request = method.deserialize(message)
            except Exception as exc:
                raise gs.MessageError(gs.INTERNAL, f"Exception deserializing request: {exc}") from exc
            response = await method.handler(request, ctx)
            if ctx.code != gs.OK:
                self._respond_status(st, ctx.code, ctx.details)
                return
            payload = method.serialize(response)
        except AbortError as exc:
            self._respond_status(st, exc.code, exc.details)
            return
        except gs.MessageError as exc:
            self._respond_status(st, exc.code, str(exc))
            return
        except asyncio.CancelledError:
            if st.deadline_hit:
                self._respond_status(st, gs.DEADLINE_EXCEEDED, "Deadline Exceeded")
            return  # else reset by the client or the connection is gone: nobody to answer
        except Exception as exc:
            log.error("gRPC handler for stream %d raised", st.id, exc_info=exc)
            self._respond_status(st, gs.UNKNOWN, f"Unexpected error in the handler: {type(exc).__name__}")
            return
        finally:
            if st.timer is not None:
                st.timer.cancel()
        self._respond(st, payload)

    def _expire(self, st: _Stream) -> None:
        st.timer = None
        if st.task is not None and not st.task.done():
            st.deadline_hit = True
            st.task.cancel()

    def _cancel(self, st: _Stream) -> None:
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        if st.task is not None and not st.task.done():
            st.task.cancel()

    # --- frames out -------------------------------------------------------------------------------

    def _respond(self, st: _Stream, payload: bytes) -> None:
        if self._closed or st.responded or self._streams.get(st.id) is not st:
            return
        st.responded = True
        st.body = memoryview(gs.frame_message(payload))
        st.trailers = _OK_TRAILERS
        self._out.append(fr.frame(fr.HEADERS, fr.END_HEADERS, st.id, _OK_HEADERS))
        self._send_body(st)
        self._flush_soon()
        self._state.busy_poll.answered(self._loop)

    def _respond_status(self, st: _Stream, code: int, message: str) -> None:
        """A trailers-only answer (no message)."""
        fields: list[tuple[str, str | bytes]] = [
            ("content-type", "application/grpc"),
            ("grpc-status", str(code)),
        ]
        if message:
            fields.append(("grpc-message", gs.encode_message_text(message)))
        self._respond_headers_only(st, fr.header_block(fields, status_200=True))

    def _respond_http(self, st: _Stream, status: str) -> None:
        self._respond_headers_only(st, fr.header_block([(":status", status)]))

    def _respond_headers_only(self, st: _Stream, block: bytes) -> None:
        if self._closed or st.responded or self._streams.get(st.id) is not st:
            return
        st.responded = True
        self._out.append(fr.frame(fr.HEADERS, fr.END_HEADERS | fr.END_STREAM, st.id, block))
        if not st.received:  # answered before the request ended: stop the client sending the rest
            self._out.append(fr.rst_stream(st.id, fr.NO_ERROR))
        self._forget(st)
        self._flush()

    def _send_body(self, st: _Stream) -> None:
        body = st.body
        assert body is not None
        total = len(body)
        out = self._out
        while st.offset < total:
            allowed = min(self._send_window, st.send_window, self._peer_max_frame, total - st.offset)
            if allowed <= 0:
                self._blocked[st.id] = st
                return
            out.append(fr.frame(fr.DATA, 0, st.id, body[st.offset : st.offset + allowed].tobytes()))
            st.offset += allowed
            st.send_window -= allowed
            self._send_window -= allowed
        out.append(fr.frame(fr.HEADERS, fr.END_HEADERS | fr.END_STREAM, st.id, st.trailers))
        st.body = None
        self._blocked.pop(st.id, None)
        self._forget(st)

    def _resume_blocked(self) -> None:
        for st in list(self._blocked.values()):
            if self._send_window <= 0:
                break
            self._send_body(st)
        if not self._in_batch:
            self._flush()

    def _reset(self, st: _Stream, code: int) -> None:
        self._out.append(fr.rst_stream(st.id, code))
        self._blocked.pop(st.id, None)
        self._cancel(st)
        self._forget(st)

    def _forget(self, st: _Stream) -> None:
        if self._streams.get(st.id) is st:
            del self._streams[st.id]
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._streams:
            self.idle.set()
            if self._goaway_sent:
                self._close()

    def _send(self, data: bytes) -> None:
        self._out.append(data)
        if not self._in_batch:
            self._flush()

    def _flush_soon(self) -> None:
        """Write what is queued once the tasks ready in this turn of the loop have run (answers
        finishing together leave in one write); within data_received, when it is done."""
        if self._in_batch or self._flush_queued:
            return
        self._flush_queued = True
        self._loop.call_soon(self._flush_queued_out)

    def _flush_queued_out(self) -> None:
        self._flush_queued = False
        self._flush()

    def _flush(self, force: bool = False) -> None:
        if (self._in_batch and not force) or not self._out:
            return
        out, self._out = self._out, []
        if self._transport is not None and not self._closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _close(self) -> None:
        """Send what is queued, then close (the transport writes out its buffer first)."""
        if self._transport is not None and not self._closed:
            self._flush(force=True)
            self._closed = True
            self._transport.close()
