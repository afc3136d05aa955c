"""What a handler sees of its call: metadata, peer, deadline, and abort / set_code.

Invariants:
- the subset of grpc.aio.ServicerContext that servicers use, with the same
  meaning, so a servicer runs unchanged on this server or on grpcio's;
- `invocation_metadata()` is the client's custom headers, lower-case keys, in
  order, as (key, value) pairs; values of `-bin` keys are base64-decoded bytes;
- `abort()` raises AbortError, which the server answers with that status and
  no message; a code set with `set_code()` and not OK replaces the response.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any, NoReturn

from pelagos.adapters.grpc_h2.status import OK, code_of


class AbortError(Exception):
    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


Metadata = tuple[tuple[str, str | bytes], ...]


class CallContext:
    __slots__ = ("_deadline", "_metadata", "_peer", "code", "details")

    def __init__(self, metadata: list[tuple[str, str | bytes]], peer: str, deadline: float | None) -> None:
        """`metadata`: the call's own headers, -bin values decoded (see `metadatum`)."""
        self._metadata: Metadata = tuple(metadata)
        self._peer = peer
        self._deadline = deadline
        self.code = OK
        self.details = ""

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    async def abort(self, code: Any, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        raise AbortError(code_of(code), details)

    def set_code(self, code: Any) -> None:
        self.code = code_of(code)

    def set_details(self, details: str) -> None:
        self.details = details


def metadatum(key: str, value: str) -> tuple[str, str | bytes]:
    """A header as gRPC metadata: the value of a `-bin` key base64-decoded."""
    if not key.endswith("-bin"):
        return key, value
    try:
        return key, base64.b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return key, value.encode("latin-1", "replace")
