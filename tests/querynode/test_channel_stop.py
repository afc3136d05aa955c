"""ServedChannel.stop: a release never hangs on the channel's task."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tests.querynode.test_search_channel import channel

from pelagos.querynode import served_channel


async def test_stop_cancels_and_awaits_the_task() -> None:
    ch = channel()
    ended = asyncio.Event()

    async def consume() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.set()

    ch._task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await ch.stop()
    assert ended.is_set()
    await ch.stop()  # a second stop is a no-op


async def test_stop_leaves_a_task_that_ignores_cancellation_and_says_where_it_waits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(served_channel, "STOP_WAIT_S", 0.2)
    ch = channel()
    let_go = asyncio.Event()

    async def stubborn_wait() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await let_go.wait()  # swallows the cancellation, as the hang seen once did

    stubborn = asyncio.create_task(stubborn_wait())
    ch._task = stubborn
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="pelagos.querynode"):
        await asyncio.wait_for(ch.stop(), timeout=5)
    assert not stubborn.done()
    assert "did not stop within" in caplog.text and "stubborn_wait" in caplog.text
    let_go.set()
    await stubborn
