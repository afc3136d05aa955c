"""Split payloads larger than the broker's max_payload; reassemble them on read.

A payload that fits in one broker message is published as is, with no
header. A larger one is cut into chunks of at most `chunk_size` bytes; each
chunk carries one header, ``Pelagos-Chunk: <id>;<index>;<count>;<size>``,
where `id` is unique per payload, `index` runs 0..count-1 and `size` is the
whole payload's length.

Position semantics (what subscribers and checkpoints see):
- a whole payload's position is the broker sequence of the chunk that
  completed it, i.e. its LAST chunk (chunks of one payload are published in
  order on one connection, so the last chunk has the highest sequence);
- `publish` returns that same position, so `subscribe(channel, p)` with a
  position `p` from `publish` yields that payload first;
- a consumer resumes from ``position + 1`` of the last whole payload it
  applied. Chunks of payloads published concurrently by several publishers
  may interleave, so a payload completed after the resume point may have
  chunks before it; the reader fetches those back by sequence
  (`Reassembler.feed` reports them as `MissingHead`), so nothing is lost
  and nothing is delivered twice.

Invariants of `Reassembler`:
- it emits each payload exactly once, when its last missing chunk arrives,
  with the sequence of that chunk;
- a payload whose chunks do not all arrive within `horizon` sequences of its
  first chunk (its publisher died half-way) is dropped with a warning,
  never emitted truncated; a payload is never emitted with a wrong size.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from pelagos.errors import LogBrokerError

log = logging.getLogger(__name__)

CHUNK_HEADER = "Pelagos-Chunk"

# Room left in each broker message for the NATS header block of a chunk; the
# server counts headers and payload against max_payload.
HEADER_ROOM = 512

# A partial payload is abandoned when the stream has moved this many
# sequences past its first chunk without completing it.
DEFAULT_HORIZON = 100_000


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    msg_id: str
    index: int
    count: int
    size: int

    def header_value(self) -> str:
        return f"{self.msg_id};{self.index};{self.count};{self.size}"


def parse_chunk_header(value: str) -> ChunkInfo:
    parts = value.split(";")
    try:
        if len(parts) != 4:
            raise ValueError(value)
        info = ChunkInfo(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError as exc:
        raise LogBrokerError(f"malformed {CHUNK_HEADER} header {value!r} in the log") from exc
    if not (info.msg_id and 0 <= info.index < info.count and info.size >= 0):
        raise LogBrokerError(f"malformed {CHUNK_HEADER} header {value!r} in the log")
    return info


def chunk_size_for(max_payload: int) -> int:
    """Bytes of payload per chunk for a server that accepts `max_payload`."""
    size = max_payload - HEADER_ROOM
    if size <= 0:
        raise LogBrokerError(f"the server's max_payload ({max_payload} bytes) is too small to carry chunks")
    return size


def split_payload(payload: bytes, chunk_size: int) -> list[tuple[bytes, ChunkInfo]]:
    """Cut `payload` into chunks of at most `chunk_size` bytes, each with its header."""
    total = len(payload)
    count = max(1, -(-total // chunk_size))
    msg_id = uuid.uuid4().hex
    view = memoryview(payload)
    return [
        (bytes(view[i * chunk_size : (i + 1) * chunk_size]), ChunkInfo(msg_id, i, count, total))
        for i in range(count)
    ]


@dataclass(frozen=True, slots=True)
class MissingHead:
    """A chunk arrived whose earlier chunks were never seen (they precede the start)."""

    info: ChunkInfo
    seq: int
    data: bytes


@dataclass(slots=True)
class _Partial:
    info: ChunkInfo
    first_seq: int
    parts: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Turns the broker's messages, in sequence order, back into whole payloads."""

    def __init__(self, channel: str, horizon: int = DEFAULT_HORIZON) -> None:
        self.channel = channel
        self.horizon = horizon
        self._partials: dict[str, _Partial] = {}
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Number of payloads of which some but not all chunks were seen."""
        return len(self._partials)

    def feed(self, seq: int, info: ChunkInfo | None, data: bytes) -> bytes | MissingHead | None:
        """One broker message; returns a whole payload, a MissingHead, or None (need more)."""
        if info is None:
            self._expire(seq)
            return data
        partial = self._partials.get(info.msg_id)
        if partial is None:
            if info.index != 0:
                return MissingHead(info, seq, data)
            partial = _Partial(info, seq)
            self._partials[info.msg_id] = partial
        elif partial.info.count != info.count or partial.info.size != info.size:
            raise LogBrokerError(
                f"chunk {info.index} of payload {info.msg_id} in channel {self.channel!r} at position {seq} "
                f"disagrees with its earlier chunks (count/size); the log is corrupt"
            )
        partial.parts[info.index] = data
        if len(partial.parts) < info.count:
            self._expire(seq)
            return None
        del self._partials[info.msg_id]
        payload = b"".join(partial.parts[i] for i in range(info.count))
        if len(payload) != info.size:
            raise LogBrokerError(
                f"payload {info.msg_id} in channel {self.channel!r} at position {seq} reassembled to "
                f"{len(payload)} bytes, expected {info.size}; the log is corrupt"
            )
        self._expire(seq)
        return payload

    def restore(self, head: MissingHead, earlier: dict[int, bytes], first_seq: int) -> bytes | None:
        """Complete a MissingHead with its earlier chunks (index -> data) fetched by sequence.

        Returns the whole payload when that completes it (its position is
        `head.seq`), else None; drops it with a warning when chunks are missing.
        """
        needed = set(range(head.info.index))
        if not needed.issubset(earlier):
            self.dropped += 1
            log.warning(
                "channel %r: dropping payload %s completed at position %d: its chunks %s are no longer "
                "in the log (removed by retention limits?)",
                self.channel,
                head.info.msg_id,
                head.seq,
                sorted(needed - set(earlier)),
            )
            return None
        partial = _Partial(head.info, first_seq, {i: earlier[i] for i in needed})
        self._partials[head.info.msg_id] = partial
        result = self.feed(head.seq, head.info, head.data)
        assert not isinstance(result, MissingHead)
        return result

    def _expire(self, seq: int) -> None:
        while self._partials:
            msg_id, oldest = next(iter(self._partials.items()))
            if seq - oldest.first_seq <= self.horizon:
                return
            del self._partials[msg_id]
            self.dropped += 1
            log.warning(
                "channel %r: dropping incomplete payload %s (chunks %d of %d seen from position %d): its "
                "publisher never finished it",
                self.channel,
                msg_id,
                len(oldest.parts),
                oldest.info.count,
                oldest.first_seq,
            )
