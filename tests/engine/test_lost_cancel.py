"""Loops that await the log broker stop when the broker loses their cancel.

nats-py can swallow a cancel of the task waiting in it (Python 3.11's
wait_for returns a reply that lands in the same loop turn as the cancel; its
flush catches CancelledError): see pelagos/storage/log/cancellation.py. The
broker here loses every cancel that reaches its publish the same way; the
JetStream read path has its own test on a real nats-server
(tests/storage/log/test_jetstream.py).
"""

from __future__ import annotations

import asyncio

import pytest

from pelagos.proxy.writer import ChannelWriter
from pelagos.storage.log.cancellation import raise_if_cancelled


class _CancelLosingBroker:
    def __init__(self) -> None:
        self.published = 0
        self.losing = True

    async def publish(self, channel: str, payloads: list[bytes]) -> list[int]:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if not self.losing:
                raise
            # what nats-py's wait_for does when the ack arrives in the same turn
        self.published += 1
        return [self.published]


async def _ts(n: int) -> int:
    return 1 << 18


async def test_time_ticks_stop_when_a_publish_loses_the_cancel() -> None:
    broker = _CancelLosingBroker()
    writer = ChannelWriter(broker, _ts, tick_interval=0.01)  # type: ignore[arg-type]
    writer.track(["ch"])
    await writer.start()
    while broker.published == 0:  # ticks are flowing; most of the time one is publishing
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.02)
    ticker = writer._ticker
    assert ticker is not None
    stopping = asyncio.create_task(writer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=3.0)
    if not done:  # end the loop that ran on, so that the failure below does not hang the run
        broker.losing = False
        ticker.cancel()
        await stopping
    assert stopping in done, "the tick loop ran on after its cancel was lost"


async def test_raise_if_cancelled_sees_a_swallowed_cancel_and_nothing_else() -> None:
    swallowed = asyncio.Event()

    async def lossy_then_check() -> None:
        raise_if_cancelled()  # nothing pending: no effect
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.set()
        raise_if_cancelled()

    task = asyncio.create_task(lossy_then_check())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert swallowed.is_set()

    async def timed_out() -> str:
        try:
            async with asyncio.timeout(0.01):  # asyncio.timeout uncancels its own cancel
                await asyncio.sleep(10)
        except TimeoutError:
            pass
        raise_if_cancelled()
        return "ran on"

    assert await asyncio.create_task(timed_out()) == "ran on"
