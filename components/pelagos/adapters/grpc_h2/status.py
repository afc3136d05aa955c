"""gRPC over HTTP/2 conventions: status codes, `grpc-timeout`, `grpc-message`, message framing.

Invariants (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
- a status code travels as its integer in the `grpc-status` trailer; codes
  are accepted as ints or as grpc.StatusCode members (whose value is a
  (code, name) pair), so handlers written for grpcio keep working;
- `grpc-message` is percent-encoded UTF-8 (bytes outside 0x20..0x7E and `%`);
- `grpc-timeout` is 1 to 8 digits and a unit (H, M, S, m, u, n); anything
  else is no timeout, as gRPC implementations treat it;
- a message is a 5-byte prefix (compressed flag, 32-bit big-endian length)
  and the bytes; compressed messages name their codec in `grpc-encoding`
  (gzip, deflate; identity is no compression).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14

_PREFIX = struct.Struct(">BI")
_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_SAFE = frozenset(range(0x20, 0x7F)) - {ord("%")}


class MessageError(Exception):
    """A request whose gRPC framing or compression is wrong; answered with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def code_of(code: Any) -> int:
    """The integer of a status code given as an int or a grpc.StatusCode member."""
    value = getattr(code, "value", code)
    if isinstance(value, tuple):
        value = value[0]
    return int(value)


def parse_timeout(text: str | None) -> float | None:
    """Seconds of a `grpc-timeout` header value; None when absent or malformed."""
    if not text or len(text) > 9 or text[-1] not in _UNITS or not text[:-1].isdigit():
        return None
    return int(text[:-1]) * _UNITS[text[-1]]


def encode_message_text(text: str) -> str:
    raw = text.encode("utf-8")
    if all(b in _SAFE for b in raw):
        return text
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)


def frame_message(payload: bytes) -> bytes:
    return _PREFIX.pack(0, len(payload)) + payload


def unframe_message(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The one message of a unary request body."""
    if len(body) < 5:
        raise MessageError(INTERNAL, "the request has no complete gRPC message")
    compressed, length = _PREFIX.unpack_from(body)
    if length != len(body) - 5:
        raise MessageError(
            INTERNAL, f"the request body holds {len(body) - 5} bytes after the prefix, not {length}"
        )
    payload = body[5:]
    if not compressed:
        return payload
    codec = (encoding or "identity").strip().lower()
    if codec == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif codec == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise MessageError(UNIMPLEMENTED, f"message compression {codec!r} is not supported")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(payload, max_bytes + 1)
    except zlib.error as exc:
        raise MessageError(INTERNAL, f"the request does not decompress with {codec}: {exc}") from exc
    if len(out) > max_bytes:
        raise MessageError(RESOURCE_EXHAUSTED, f"the decompressed request exceeds {max_bytes} bytes")
    return out
