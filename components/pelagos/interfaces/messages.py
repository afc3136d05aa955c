"""Messages of the DML log: what flows through every shard channel.

A payload is `MAGIC | kind (1 byte) | header length (4 bytes LE) | header
JSON | body`, where the body of INSERT/UPSERT is an Arrow IPC stream of the
rows (user fields, `$meta`, `_ts`) and the body of DELETE an Arrow IPC
stream of (pk, _ts). TICK and FLUSH have no body.

Invariants:
- within one channel the `ts` of successive messages never decreases (the
  single writer of a channel allocates and publishes under one lock);
- a TICK(ts) promises that no later message in the channel has a smaller ts;
- UPSERT is delete-then-insert at the same ts: rows with the same pk and a
  smaller ts die, the new rows live (a delete kills rows with ts strictly
  below its own).
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pelagos.errors import LogBrokerError

MAGIC = b"PLG1"
_HEAD = struct.Struct("<4sBI")


class MessageKind(enum.IntEnum):
    INSERT = 1
    DELETE = 2
    UPSERT = 3
    TICK = 4
    FLUSH = 5


@dataclass(slots=True)
class DmlMessage:
    kind: MessageKind
    ts: int
    collection_id: int = 0
    partition_id: int = 0  # 0 on DELETE: every partition
    rows: pa.Table | None = None  # INSERT/UPSERT rows, DELETE (pk, _ts)
    extra: dict[str, Any] = field(default_factory=dict)


def encode(msg: DmlMessage) -> bytes:
    header = json.dumps(
        {"ts": msg.ts, "c": msg.collection_id, "p": msg.partition_id, "x": msg.extra},
        separators=(",", ":"),
    ).encode()
    body = b""
    if msg.rows is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, msg.rows.schema) as writer:
            writer.write_table(msg.rows)
        body = sink.getvalue().to_pybytes()
    return _HEAD.pack(MAGIC, int(msg.kind), len(header)) + header + body


def decode(payload: bytes) -> DmlMessage:
    if len(payload) < _HEAD.size or payload[:4] != MAGIC:
        raise LogBrokerError("a log message is not a Pelagos DML message (bad magic); the channel is corrupt")
    _, kind, hlen = _HEAD.unpack_from(payload)
    start = _HEAD.size
    header = json.loads(payload[start : start + hlen])
    body = memoryview(payload)[start + hlen :]
    rows = None
    if len(body):
        rows = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    return DmlMessage(
        kind=MessageKind(kind),
        ts=int(header["ts"]),
        collection_id=int(header["c"]),
        partition_id=int(header["p"]),
        rows=rows,
        extra=dict(header.get("x") or {}),
    )


def channel_name(collection_id: int, shard: int) -> str:
    """The log channel of one shard of one collection."""
    return f"dml_{collection_id}_{shard}"
