"""Test helper: read a subscription until enough messages came or time ran out."""

from __future__ import annotations

import asyncio

from pelagos.storage.log.protocol import LogMessage, LogSubscription


async def read_n(subscription: LogSubscription, n: int, within: float = 10.0) -> list[LogMessage]:
    """Up to `n` messages; fewer only when `within` seconds passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    got: list[LogMessage] = []
    while len(got) < n:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        got.extend(await subscription.next_batch(n - len(got), timeout=min(remaining, 1.0)))
    return got


async def read_through(
    subscription: LogSubscription, position: int, within: float = 10.0
) -> list[LogMessage]:
    """Messages until one at `position` or later arrived (or `within` seconds passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    got: list[LogMessage] = []
    while not got or got[-1].position < position:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        got.extend(await subscription.next_batch(256, timeout=min(remaining, 1.0)))
    return got
