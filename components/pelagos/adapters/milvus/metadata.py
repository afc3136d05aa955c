"""Per-call metadata headers that Milvus clients send.

Invariants:
- `dbname`: the database of the call; empty or absent means "default"; a
  request's own `db_name` field, when set, wins over the header;
- `authorization`: base64 of `user:password` (or of a token); it is decoded
  defensively (bad base64, bad UTF-8 or no colon leave `user` empty) and the
  password is never kept: Pelagos does not enforce authentication yet;
- `identifier` (the id Connect handed out) and `client-request-id` are kept
  for logs only.

Pure: no gRPC import; takes the (key, value) pairs of the call's metadata.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pelagos.interfaces.types import DEFAULT_DATABASE


@dataclass(frozen=True, slots=True)
class CallInfo:
    db: str = DEFAULT_DATABASE
    user: str = ""
    identifier: str = ""
    request_id: str = ""

    def database(self, request_db: str) -> str:
        """The database a request targets: its own db_name field, else the header's."""
        return request_db or self.db


def call_info(metadata: Iterable[Any] | None) -> CallInfo:
    """CallInfo from gRPC invocation metadata (tuples or objects with .key / .value)."""
    headers: dict[str, str] = {}
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        headers[str(key).lower()] = (
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        )
    return CallInfo(
        db=headers.get("dbname", "").strip() or DEFAULT_DATABASE,
        user=user_of(headers.get("authorization", "")),
        identifier=headers.get("identifier", ""),
        request_id=headers.get("client-request-id", ""),
    )


def database_of(metadata: Iterable[Any] | None) -> str:
    """The `dbname` header alone (what every call needs; call_info parses the rest)."""
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == "dbname" or str(key).lower() == "dbname":
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return text.strip() or DEFAULT_DATABASE
    return DEFAULT_DATABASE


def user_of(authorization: str) -> str:
    """The user name in a base64 `user:password` header; empty when there is none."""
    token = authorization.strip()
    if not token:
        return ""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return ""
    user, sep, _password = decoded.partition(":")
    return user if sep else ""
