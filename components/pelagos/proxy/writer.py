"""The channel writer: the single place where DML enters the log.

For each channel, allocating the timestamp and publishing happen under one
lock, so timestamps never go backwards within a channel (the invariant of
interfaces/messages.py). An idle channel gets a TICK every interval, so
consumers know how far time has advanced without data.

Invariant: `write` returns only after the broker acknowledged the message
durably; the returned timestamp is the one stamped on every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pyarrow as pa

from pelagos.interfaces.messages import DmlMessage, MessageKind, encode
from pelagos.schema import ROW_TIMESTAMP_COLUMN
from pelagos.storage.log.cancellation import raise_if_cancelled
from pelagos.storage.log.protocol import LogBroker

log = logging.getLogger("pelagos.proxy.writer")


class ChannelWriter:
    def __init__(
        self,
        broker: LogBroker,
        allocate_ts: Callable[[int], Awaitable[int]],
        *,
        tick_interval: float = 0.2,
    ) -> None:
        self._broker = broker
        self._allocate_ts = allocate_ts
        self._tick_interval = tick_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_write: dict[str, float] = {}
        self._channels: set[str] = set()
        self._ticker: asyncio.Task[None] | None = None

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    def track(self, channels: list[str]) -> None:
        """Keep ticking these channels."""
        self._channels.update(channels)

    def untrack(self, channels: list[str]) -> None:
        for ch in channels:
            self._channels.discard(ch)
            self._last_write.pop(ch, None)

    async def write(
        self,
        channel: str,
        kind: MessageKind,
        *,
        collection_id: int,
        partition_id: int = 0,
        rows: pa.Table | None = None,
        extra: dict[str, object] | None = None,
    ) -> int:
        """Stamp and publish one message; return its timestamp."""
        async with self._lock(channel):
            ts = await self._allocate_ts(1)
            if rows is not None:
                stamp = pa.array(np.full(rows.num_rows, ts, dtype=np.uint64))
                if ROW_TIMESTAMP_COLUMN in rows.column_names:
                    rows = rows.set_column(
                        rows.column_names.index(ROW_TIMESTAMP_COLUMN), ROW_TIMESTAMP_COLUMN, stamp
                    )
                else:
                    rows = rows.append_column(ROW_TIMESTAMP_COLUMN, stamp)
            msg = DmlMessage(kind, ts, collection_id, partition_id, rows, dict(extra or {}))
            await self._broker.publish(channel, [encode(msg)])
            self._last_write[channel] = time.monotonic()
            self._channels.add(channel)
            return ts

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_loop(), name="pelagos-time-ticks")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _tick_loop(self) -> None:
        while True:
            raise_if_cancelled()  # a tick's publish may have lost the cancel that stops this loop
            await asyncio.sleep(self._tick_interval)
            now = time.monotonic()
            for ch in list(self._channels):
                if now - self._last_write.get(ch, 0.0) < self._tick_interval:
                    continue
                try:
                    await self.write(ch, MessageKind.TICK, collection_id=0)
                except Exception as exc:  # a dropped channel, a broker hiccup: tick again later
                    log.debug("time tick on %s failed: %s", ch, exc)
