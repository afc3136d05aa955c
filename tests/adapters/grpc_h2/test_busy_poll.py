"""BusyPoll keeps the loop turning for its window after an answer, then lets it sleep."""

from __future__ import annotations

import asyncio
import time

from pelagos.adapters.grpc_h2.busy_poll import BusyPoll


async def _turns_during(seconds: float) -> int:
    """Turns of the loop a probe task gets (each `sleep(0)` is one) within `seconds`."""
    turns = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0)
        turns += 1
    return turns


async def test_spins_for_the_window_then_stops() -> None:
    poll = BusyPoll(0.05)
    loop = asyncio.get_running_loop()
    poll.answered(loop)
    assert poll._spinning
    await asyncio.sleep(0.02)
    assert poll._spinning  # still within the window
    await asyncio.sleep(0.06)
    assert not poll._spinning


async def test_each_answer_extends_the_window() -> None:
    poll = BusyPoll(0.03)
    loop = asyncio.get_running_loop()
    poll.answered(loop)
    for _ in range(4):
        await asyncio.sleep(0.02)
        poll.answered(loop)
    assert poll._spinning
    await asyncio.sleep(0.06)
    assert not poll._spinning


async def test_a_zero_window_never_spins_and_the_loop_sleeps() -> None:
    poll = BusyPoll(0.0)
    poll.answered(asyncio.get_running_loop())
    assert not poll._spinning
    started = time.process_time()
    await asyncio.sleep(0.2)
    assert time.process_time() - started < 0.1  # asleep, not burning the CPU


async def test_other_work_runs_while_spinning() -> None:
    poll = BusyPoll(0.2)
    poll.answered(asyncio.get_running_loop())
    assert await _turns_during(0.05) > 10
    assert await asyncio.wait_for(asyncio.sleep(0.01, result="ran"), timeout=1) == "ran"
