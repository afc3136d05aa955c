"""The background renewal loop of a meta store lease, shared by every store.

Invariants:
- the lease is renewed about every third of its TTL;
- a renewal that fails for a transient reason is retried soon, until the
  TTL counted from the last renewal that was *sent* and succeeded has run
  out; the loop then returns, so the caller marks the lease dead no later
  than the server drops it;
- a renewal that says the lease is gone ends the loop at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from pelagos.errors import LeaseExpiredError, StorageError

_log = logging.getLogger(__name__)

# a failed renewal is retried after this many seconds (or a sixth of the TTL if shorter)
_RETRY_S = 0.5


async def keep_alive_until_lost(
    renew: Callable[[float], Awaitable[float]],
    *,
    lease_id: int,
    ttl: float,
    granted_at: float,
) -> None:
    """Renew through `renew(timeout) -> remaining TTL` until the lease is lost.

    `granted_at` is the time.monotonic() at which the grant request was sent.
    Returns when the lease is gone or may be gone; cancel the task to stop.
    """
    deadline = granted_at + ttl
    interval = ttl / 3
    while True:
        now = time.monotonic()
        await asyncio.sleep(max(0.0, min(interval, deadline - now)))
        sent = time.monotonic()
        window = deadline - sent
        if window <= 0:
            _log.warning("lease %x: not renewed within its TTL of %.1fs; treating it as lost", lease_id, ttl)
            return
        try:
            remaining = await renew(window)
        except LeaseExpiredError:
            _log.warning("lease %x expired or was revoked", lease_id)
            return
        except StorageError as exc:
            _log.warning("lease %x: renewal failed (%s); retrying", lease_id, exc)
            interval = min(_RETRY_S, ttl / 6)
            continue
        if remaining <= 0:
            _log.warning("lease %x expired or was revoked", lease_id)
            return
        deadline = sent + remaining
        interval = remaining / 3
