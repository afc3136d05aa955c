"""The byte layout of a serialized index: a JSON header plus named binary sections.

Invariants:
- Layout: MAGIC (8 bytes) | header length (u32 little-endian) | header
  (UTF-8 JSON) | the sections' bytes back to back, in header order.
- The header holds at least "format", "kind", "spec" (IndexSpec.to_dict),
  "count", "info" and "sections" (a list of [name, length]).
- `unpack` refuses anything that is not exactly that (wrong magic, a
  truncated or overlong body) with an InvalidArgumentError; it never guesses.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from pelagos.errors import InvalidArgumentError

MAGIC = b"PLGIDX\x00\x01"
FORMAT = 1


def pack(header: Mapping[str, Any], sections: Mapping[str, bytes]) -> bytes:
    head = dict(header) | {"format": FORMAT, "sections": [[k, len(v)] for k, v in sections.items()]}
    encoded = json.dumps(head, sort_keys=True).encode()
    return b"".join([MAGIC, struct.pack("<I", len(encoded)), encoded, *sections.values()])


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, memoryview]]:
    view = memoryview(data)
    if bytes(view[: len(MAGIC)]) != MAGIC or len(view) < len(MAGIC) + 4:
        raise InvalidArgumentError("not a serialized Pelagos index (bad magic); rebuild the index")
    (head_len,) = struct.unpack("<I", view[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header: dict[str, Any] = json.loads(bytes(view[start : start + head_len]))
    except ValueError as exc:
        raise InvalidArgumentError(f"serialized index header is corrupt: {exc}") from None
    if header.get("format") != FORMAT:
        raise InvalidArgumentError(f"serialized index format {header.get('format')!r} is not {FORMAT}")
    offset = start + head_len
    sections: dict[str, memoryview] = {}
    for name, length in header["sections"]:
        sections[name] = view[offset : offset + length]
        offset += length
    if offset != len(view):
        raise InvalidArgumentError(
            f"serialized index is {len(view)} bytes but its header describes {offset}; "
            "it is truncated or corrupt"
        )
    return header, sections
