"""Cancellations a library lost, found again.

Python 3.11's `asyncio.wait_for` returns the awaited result when it
completes in the same turn of the event loop as a cancel of the waiting
task, and the CancelledError is gone (CPython gh-86296, fixed in 3.12).
nats-py waits for every reply (stream info, consumer creation, publish
acknowledgements) with `wait_for`, and its flush path swallows
CancelledError outright. Seen here: a query node channel released while
the event loop was busy with searches went on consuming; its `stop` gave up
after 10 s and the orphan then looped on "failed; resuming" once the
broker had closed.

The cancel is still counted: `Task.cancelling()` stays above zero until
someone calls `uncancel()` (and `asyncio.timeout` uncancels only its own).
Loops that await the broker call `raise_if_cancelled()` on every turn, so
they stop as asked, a turn late at worst.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError when the running task has a cancel pending that nobody delivered."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError("a cancellation lost by an awaited library")
