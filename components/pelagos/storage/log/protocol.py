"""The log broker protocol: named, durable, ordered channels of byte payloads.

Every insert, upsert and delete flows through a channel (one per collection
shard) before any worker sees it (DESIGN.md, invariant 1). Positions are the
broker's own sequence numbers, starting at 1 and increasing by one per
message in a channel; a consumer checkpoints the last position it applied
and resumes from the next one.

Invariants:
- `publish` returns only after the broker stored every payload durably, and
  returns the position of each, in order;
- a payload is never silently dropped: one larger than the broker carries is
  split and reassembled transparently, or refused with PayloadTooLargeError;
- a subscription yields messages in position order, each exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LogMessage:
    channel: str
    position: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Retention of one channel; None means the broker's default (unlimited)."""

    max_age_seconds: float | None = None
    max_bytes: int | None = None
    max_messages: int | None = None


class LogSubscription(Protocol):
    async def next_batch(self, max_messages: int = 256, timeout: float = 1.0) -> list[LogMessage]:
        """The next messages in order; empty when none arrived within `timeout`."""
        ...

    async def close(self) -> None: ...


class LogBroker(Protocol):
    async def create_channel(self, name: str, limits: ChannelLimits | None = None) -> None:
        """Create the channel if absent (idempotent); update its limits if present."""
        ...

    async def delete_channel(self, name: str) -> None:
        """Delete the channel and its messages; no error if it is absent."""
        ...

    async def list_channels(self, prefix: str = "") -> list[str]: ...

    async def publish(self, channel: str, payloads: Sequence[bytes]) -> list[int]:
        """Store the payloads durably, in order; return their positions."""
        ...

    async def last_position(self, channel: str) -> int:
        """Position of the last message in the channel (0 when empty)."""
        ...

    async def subscribe(self, channel: str, start_position: int = 1) -> LogSubscription:
        """Read the channel from `start_position` (inclusive) on, live."""
        ...

    async def close(self) -> None: ...
