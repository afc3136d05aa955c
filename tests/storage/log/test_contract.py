"""The LogBroker contract: what every log broker implementation must do.

Every test takes a `broker` (or `make_broker`) from conftest.py, so the
same suite runs on each implementation listed there.
"""

from __future__ import annotations

import asyncio

import pytest

from pelagos.errors import ChannelNotFoundError
from pelagos.storage.log.protocol import ChannelLimits, LogBroker
from tests.storage.log.conftest import BrokerFactory
from tests.storage.log.reading import read_n, read_through


async def test_publish_returns_increasing_positions_read_back_in_order(broker: LogBroker) -> None:
    await broker.create_channel("ch")
    payloads = [f"m{i}".encode() for i in range(50)]
    first = await broker.publish("ch", payloads[:20])
    second = await broker.publish("ch", payloads[20:])
    positions = first + second
    assert positions == list(range(1, 51))
    assert await broker.last_position("ch") == 50

    sub = await broker.subscribe("ch")
    got = await read_n(sub, 50)
    await sub.close()
    assert [m.payload for m in got] == payloads
    assert [m.position for m in got] == positions
    assert {m.channel for m in got} == {"ch"}


async def test_binary_and_empty_payloads_round_trip(broker: LogBroker) -> None:
    await broker.create_channel("bin")
    payloads = [bytes(range(256)), b"", b"\x00" * 1000, b"\r\n\r\nNATS/1.0\r\n"]
    positions = await broker.publish("bin", payloads)
    sub = await broker.subscribe("bin")
    got = await read_n(sub, len(payloads))
    await sub.close()
    assert [m.payload for m in got] == payloads
    assert [m.position for m in got] == positions


async def test_empty_publish_stores_nothing(broker: LogBroker) -> None:
    await broker.create_channel("none")
    assert await broker.publish("none", []) == []
    assert await broker.last_position("none") == 0


async def test_subscribe_from_a_middle_position(broker: LogBroker) -> None:
    await broker.create_channel("mid")
    positions = await broker.publish("mid", [f"m{i}".encode() for i in range(10)])
    sub = await broker.subscribe("mid", start_position=positions[6])
    got = await read_through(sub, positions[-1])
    assert await sub.next_batch(10, timeout=0.05) == []
    await sub.close()
    assert [m.position for m in got] == positions[6:]
    assert [m.payload for m in got] == [b"m6", b"m7", b"m8", b"m9"]


async def test_resume_after_the_last_applied_position(broker: LogBroker) -> None:
    await broker.create_channel("resume")
    await broker.publish("resume", [b"a", b"b", b"c"])
    sub = await broker.subscribe("resume")
    first = await read_n(sub, 2)
    await sub.close()
    checkpoint = first[-1].position
    await broker.publish("resume", [b"d"])
    again = await broker.subscribe("resume", start_position=checkpoint + 1)
    rest = await read_n(again, 2)
    await again.close()
    assert [m.payload for m in first + rest] == [b"a", b"b", b"c", b"d"]


async def test_live_tail_sees_messages_published_after_subscribing(broker: LogBroker) -> None:
    await broker.create_channel("live")
    await broker.publish("live", [b"old"])
    sub = await broker.subscribe("live", start_position=2)
    assert await sub.next_batch(10, timeout=0.2) == []

    async def publish_later() -> list[int]:
        await asyncio.sleep(0.1)
        return await broker.publish("live", [b"new1", b"new2"])

    publisher = asyncio.create_task(publish_later())
    got = await read_n(sub, 2, within=5.0)
    positions = await publisher
    await sub.close()
    assert [m.payload for m in got] == [b"new1", b"new2"]
    assert [m.position for m in got] == positions == [2, 3]


async def test_next_batch_returns_empty_on_timeout_and_respects_max(broker: LogBroker) -> None:
    await broker.create_channel("batch")
    sub = await broker.subscribe("batch")
    assert await sub.next_batch(5, timeout=0.1) == []
    await broker.publish("batch", [b"x"] * 7)
    first = await sub.next_batch(3, timeout=2.0)
    assert 1 <= len(first) <= 3
    rest = await read_n(sub, 7 - len(first))
    await sub.close()
    assert [m.position for m in first + rest] == list(range(1, 8))


async def test_many_channels_are_independent(broker: LogBroker) -> None:
    names = [f"shard-{i}" for i in range(12)]
    for name in names:
        await broker.create_channel(name)
    await broker.create_channel("other")
    for i, name in enumerate(names):
        assert await broker.publish(name, [name.encode()] * (i + 1)) == list(range(1, i + 2))
    assert await broker.list_channels("shard-") == sorted(names)
    assert set(await broker.list_channels()) == {*names, "other"}
    for i, name in enumerate(names):
        assert await broker.last_position(name) == i + 1
        sub = await broker.subscribe(name)
        got = await read_n(sub, i + 1)
        await sub.close()
        assert [m.payload for m in got] == [name.encode()] * (i + 1)


async def test_create_channel_is_idempotent(broker: LogBroker) -> None:
    await broker.create_channel("same")
    await broker.publish("same", [b"kept"])
    await broker.create_channel("same")
    assert await broker.last_position("same") == 1
    assert await broker.list_channels("same") == ["same"]


async def test_delete_channel_removes_it_and_is_idempotent(broker: LogBroker) -> None:
    await broker.create_channel("gone")
    await broker.publish("gone", [b"x"])
    await broker.delete_channel("gone")
    assert await broker.list_channels("gone") == []
    await broker.delete_channel("gone")
    await broker.delete_channel("never-existed")
    with pytest.raises(ChannelNotFoundError, match="create_channel"):
        await broker.publish("gone", [b"y"])


async def test_missing_channel_raises_channel_not_found(broker: LogBroker) -> None:
    with pytest.raises(ChannelNotFoundError, match="create it first"):
        await broker.publish("missing", [b"x"])
    with pytest.raises(ChannelNotFoundError):
        await broker.subscribe("missing")
    with pytest.raises(ChannelNotFoundError):
        await broker.last_position("missing")


async def test_message_limit_keeps_only_the_newest(broker: LogBroker) -> None:
    await broker.create_channel("capped", ChannelLimits(max_messages=5))
    positions = await broker.publish("capped", [f"m{i}".encode() for i in range(12)])
    assert await broker.last_position("capped") == positions[-1]
    sub = await broker.subscribe("capped")
    got = await read_through(sub, positions[-1])
    await sub.close()
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(7, 12)]
    assert [m.position for m in got] == positions[7:]


async def test_byte_limit_keeps_the_newest_within_the_budget(broker: LogBroker) -> None:
    await broker.create_channel("bytes", ChannelLimits(max_bytes=64 * 1024))
    positions = await broker.publish("bytes", [bytes([i]) * 4096 for i in range(64)])  # 256 KiB
    sub = await broker.subscribe("bytes")
    got = await read_through(sub, positions[-1])
    await sub.close()
    assert 0 < len(got) < 16
    assert got[-1].payload == bytes([63]) * 4096
    assert [m.position for m in got] == list(range(65 - len(got), 65))


async def test_limits_are_updated_on_an_existing_channel(broker: LogBroker) -> None:
    await broker.create_channel("grow", ChannelLimits(max_messages=3))
    await broker.create_channel("grow", ChannelLimits(max_messages=10))
    positions = await broker.publish("grow", [b"x"] * 8)
    sub = await broker.subscribe("grow")
    got = await read_through(sub, positions[-1])
    await sub.close()
    assert len(got) == 8


async def test_concurrent_publishers_get_distinct_increasing_positions(make_broker: BrokerFactory) -> None:
    brokers = [await make_broker() for _ in range(4)]
    await brokers[0].create_channel("shared")

    async def publish_all(k: int, broker: LogBroker) -> list[int]:
        positions: list[int] = []
        for batch in range(5):
            payloads = [f"p{k}-{batch}-{i}".encode() for i in range(40)]
            positions += await broker.publish("shared", payloads)
        return positions

    results = await asyncio.gather(*(publish_all(k, b) for k, b in enumerate(brokers)))
    everything = [p for positions in results for p in positions]
    assert sorted(everything) == list(range(1, 801))
    for positions in results:
        assert positions == sorted(positions)

    sub = await brokers[0].subscribe("shared")
    got = await read_n(sub, 800)
    await sub.close()
    assert [m.position for m in got] == list(range(1, 801))
    by_position = {m.position: m.payload for m in got}
    for k, positions in enumerate(results):
        expected = [f"p{k}-{b}-{i}".encode() for b in range(5) for i in range(40)]
        assert [by_position[p] for p in positions] == expected


async def test_concurrent_publishes_on_one_broker(broker: LogBroker) -> None:
    await broker.create_channel("one")
    results = await asyncio.gather(*(broker.publish("one", [bytes([k])] * 100) for k in range(5)))
    everything = sorted(p for positions in results for p in positions)
    assert everything == list(range(1, 501))
