"""Channel names <-> JetStream stream names and subjects.

Pelagos channel names are free text (Milvus-style names such as
``by-dev-rootcoord-dml_0_447v0`` contain '_', others may contain '.' or
anything else), while JetStream allows only some characters in stream names
and subject tokens. Each channel gets one stream and one subject.

Invariants:
- `encode_channel` is injective and `decode_channel` is its exact inverse:
  ASCII letters, digits and '-' stand for themselves, every other UTF-8 byte
  (including '_', the escape character) becomes ``_XX`` (upper-case hex);
- an encoded name uses only ``[A-Za-z0-9_-]``, legal in both stream names
  and subject tokens;
- stream name = ``<prefix>_<encoded>``; the prefix uses only
  ``[A-Za-z0-9-]``, so the first '_' splits prefix from channel and two
  brokers with different prefixes never see each other's channels;
- subject = ``<prefix>.log.<encoded>``, one per stream, never overlapping.
"""

from __future__ import annotations

import re

from pelagos.errors import LogBrokerError

# nats-server refuses stream names longer than this (they name directories).
MAX_STREAM_NAME_LENGTH = 255

_PREFIX_RE = re.compile(r"[A-Za-z0-9-]+")
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_HEX = "0123456789ABCDEF"


def validate_prefix(prefix: str) -> str:
    if not _PREFIX_RE.fullmatch(prefix):
        raise LogBrokerError(
            f"stream prefix {prefix!r} is invalid: use only ASCII letters, digits and '-' (e.g. 'pelagos')"
        )
    return prefix


def encode_channel(channel: str) -> str:
    """The channel name as ``[A-Za-z0-9_-]`` text, reversibly."""
    if not channel:
        raise LogBrokerError("a channel name must not be empty")
    out: list[str] = []
    for byte in channel.encode("utf-8"):
        if byte in _PLAIN:
            out.append(chr(byte))
        else:
            out.append("_" + _HEX[byte >> 4] + _HEX[byte & 0xF])
    return "".join(out)


def decode_channel(encoded: str) -> str:
    """Inverse of `encode_channel`; LogBrokerError on text it could not have produced."""
    raw = bytearray()
    i = 0
    n = len(encoded)
    while i < n:
        ch = encoded[i]
        if ch == "_":
            hex_digits = encoded[i + 1 : i + 3]
            if len(hex_digits) != 2 or any(c not in _HEX for c in hex_digits):
                raise LogBrokerError(f"{encoded!r} is not an encoded channel name (bad escape at {i})")
            raw.append(int(hex_digits, 16))
            i += 3
        elif ord(ch) < 128 and ord(ch) in _PLAIN:
            raw.append(ord(ch))
            i += 1
        else:
            raise LogBrokerError(f"{encoded!r} is not an encoded channel name (character {ch!r})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LogBrokerError(f"{encoded!r} is not an encoded channel name (not UTF-8)") from exc


def stream_name(prefix: str, channel: str) -> str:
    """The JetStream stream that holds `channel`."""
    name = f"{prefix}_{encode_channel(channel)}"
    if len(name) > MAX_STREAM_NAME_LENGTH:
        raise LogBrokerError(
            f"channel name {channel[:60]!r}... is too long: its stream name would be {len(name)} characters "
            f"and nats-server allows {MAX_STREAM_NAME_LENGTH}; use a shorter channel name"
        )
    return name


def subject_name(prefix: str, channel: str) -> str:
    """The one subject that `channel`'s stream captures."""
    return f"{prefix}.log.{encode_channel(channel)}"


def channel_of_stream(prefix: str, stream: str) -> str | None:
    """The channel a stream holds, or None when the stream is not one of `prefix`'s."""
    head = f"{prefix}_"
    if not stream.startswith(head):
        return None
    try:
        return decode_channel(stream[len(head) :])
    except LogBrokerError:
        return None
