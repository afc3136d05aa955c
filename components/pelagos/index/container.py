"""The byte layout of a serialized index: a JSON header plus named binary sections.

Invariants:
- Layout: MAGIC (8 bytes) | header length (u32 little-endian) | header
  (UTF-8 JSON) | the sections' bytes back to back, in header order.
- The header holds at least "format", "kind", "spec" (IndexSpec.to_dict),
  "count", "info" and "sections" (a list of [name, length]).
- `unpack` refuses anything that is not exactly that (wrong magic, a
  truncated or overlong body) with an InvalidArgumentError; it never guesses.
- `write_file` streams sections into a file (a faiss index of hundreds of MB
  never sits in memory as bytes): it reserves HEADER_RESERVE bytes for the
  header, writes the sections, then fills the header in, padded with spaces
  (JSON allows them), so `unpack` reads both kinds alike; `read_file_header`
  gives the header and each section's (offset, length) in a file.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from pelagos.errors import InvalidArgumentError

MAGIC = b"PLGIDX\x00\x01"
FORMAT = 1
#: room for the header of a streamed file (headers are ~1 KiB)
HEADER_RESERVE = 64 * 1024

#: a section is its bytes, or a function that writes them to a binary file
Section = bytes | Callable[[BinaryIO], None]


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


def write_file(
    path: str | os.PathLike[str], header: Mapping[str, Any], sections: Mapping[str, Section]
) -> int:
    """Write header and sections to `path`, streaming the callable ones; the file's size."""
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<I", HEADER_RESERVE) + b" " * HEADER_RESERVE)
        lengths: list[list[Any]] = []
        for name, section in sections.items():
            start = f.tell()
            if isinstance(section, bytes):
                f.write(section)
            else:
                section(f)
                f.seek(0, os.SEEK_END)
            lengths.append([name, f.tell() - start])
        size = f.tell()
        head = dict(header) | {"format": FORMAT, "sections": lengths}
        encoded = json.dumps(head, sort_keys=True).encode()
        if len(encoded) > HEADER_RESERVE:
            raise InvalidArgumentError(f"index header of {len(encoded)} bytes exceeds {HEADER_RESERVE}")
        f.seek(len(MAGIC) + 4)
        f.write(encoded.ljust(HEADER_RESERVE))
        f.flush()
        os.fsync(f.fileno())
    return size


def read_file_header(f: BinaryIO) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """The header of an open container file and each section's (offset, length); checks the size."""
    f.seek(0)
    lead = f.read(len(MAGIC) + 4)
    if len(lead) < len(MAGIC) + 4 or lead[: len(MAGIC)] != MAGIC:
        raise InvalidArgumentError("not a serialized Pelagos index (bad magic); rebuild the index")
    (head_len,) = struct.unpack("<I", lead[len(MAGIC) :])
    try:
        header: dict[str, Any] = json.loads(f.read(head_len))
    except ValueError as exc:
        raise InvalidArgumentError(f"serialized index header is corrupt: {exc}") from None
    if header.get("format") != FORMAT:
        raise InvalidArgumentError(f"serialized index format {header.get('format')!r} is not {FORMAT}")
    offset = len(lead) + head_len
    sections: dict[str, tuple[int, int]] = {}
    for name, length in header["sections"]:
        sections[name] = (offset, int(length))
        offset += int(length)
    size = f.seek(0, os.SEEK_END)
    if offset != size:
        raise InvalidArgumentError(
            f"serialized index is {size} bytes but its header describes {offset}; it is truncated or corrupt"
        )
    return header, sections
