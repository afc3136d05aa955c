"""The object store protocol: immutable blobs by key (S3, MinIO, SeaweedFS,
or local disk in standalone).

Keys are '/'-separated paths relative to the store's root (bucket plus
optional prefix). Objects are written once and never modified in place
(DESIGN.md, invariant 5); metadata in etcd says which objects matter.

Invariants:
- a put is atomic: a reader sees the whole new object or none of it;
- get of a missing key raises ObjectNotFoundError, never returns empty bytes;
- large objects go up in parts (multipart / streamed), never held twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def put_file(self, key: str, path: Path) -> None:
        """Upload a local file (multipart when large)."""
        ...

    async def get(self, key: str) -> bytes: ...

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer at the end of the object)."""
        ...

    async def get_file(self, key: str, path: Path) -> None:
        """Download to a local file, streamed."""
        ...

    async def stat(self, key: str) -> ObjectInfo: ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under the prefix (recursively), sorted by key."""
        ...

    async def delete(self, key: str) -> None:
        """Delete; no error when absent."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def close(self) -> None: ...
