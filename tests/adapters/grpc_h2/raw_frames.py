"""Reading the raw HTTP/2 frames a server wrote, for tests that check them byte by byte."""

from __future__ import annotations

import struct

Frame = tuple[int, int, int, bytes]  # type, flags, stream id, payload


def split_frames(data: bytes) -> list[Frame]:
    """The complete frames in `data`, in order (a trailing partial frame is left out)."""
    out, pos = [], 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        sid = struct.unpack(">I", data[pos + 5 : pos + 9])[0] & 0x7FFFFFFF
        out.append((kind, flags, sid, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return out
