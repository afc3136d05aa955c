"""What the JetStream broker adds to the contract: names, chunking, limits, restarts, outages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest

from pelagos.errors import (
    ChannelNotFoundError,
    LogBrokerError,
    PayloadTooLargeError,
    StoreUnavailableError,
)
from pelagos.runtime.servers.base import free_port
from pelagos.runtime.servers.nats import NatsServer
from pelagos.storage.log.chunking import CHUNK_HEADER, split_payload
from pelagos.storage.log.jetstream import DEFAULT_HARD_CAP, JetStreamLogBroker
from pelagos.storage.log.naming import subject_name
from pelagos.storage.log.protocol import ChannelLimits
from tests.fixtures.nats import unique_prefix
from tests.storage.log.reading import read_n, read_through

SMALL_MAX_PAYLOAD = 64 * 1024


def _payload(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 256 for i in range(256)) * (n // 256) + bytes(n % 256)


async def test_channel_names_nats_forbids_round_trip(log_broker: JetStreamLogBroker) -> None:
    names = ["a.b", "with space", "star*", "gt>", "under_score", "слой", "x/y\\z", "_"]
    for i, name in enumerate(names):
        await log_broker.create_channel(name)
        assert await log_broker.publish(name, [name.encode("utf-8")] * (i + 1)) == list(range(1, i + 2))
    assert await log_broker.list_channels() == sorted(names)
    for i, name in enumerate(names):
        sub = await log_broker.subscribe(name)
        got = await read_n(sub, i + 1)
        await sub.close()
        assert [m.payload for m in got] == [name.encode("utf-8")] * (i + 1)


async def test_prefixes_isolate_brokers(nats_server: NatsServer, log_broker: JetStreamLogBroker) -> None:
    other = await JetStreamLogBroker.connect(nats_server.url, stream_prefix=unique_prefix())
    try:
        await log_broker.create_channel("same")
        await other.create_channel("same")
        await log_broker.publish("same", [b"a", b"b"])
        assert await other.last_position("same") == 0
        assert await other.list_channels() == ["same"]
        await other.delete_channel("same")
        assert await log_broker.last_position("same") == 2
    finally:
        await other.close()


async def test_limits_map_to_the_stream(log_broker: JetStreamLogBroker) -> None:
    limits = ChannelLimits(max_age_seconds=3600.0, max_bytes=1 << 20, max_messages=1000)
    await log_broker.create_channel("limited", limits)
    assert await log_broker.channel_limits("limited") == limits
    # None keeps what an existing channel has; explicit limits replace it.
    await log_broker.create_channel("limited")
    assert await log_broker.channel_limits("limited") == limits
    short = ChannelLimits(max_age_seconds=1.0)
    await log_broker.create_channel("limited", short)
    assert await log_broker.channel_limits("limited") == short
    await log_broker.create_channel("open")
    assert await log_broker.channel_limits("open") == ChannelLimits()
    with pytest.raises(LogBrokerError, match="positive"):
        await log_broker.create_channel("bad", ChannelLimits(max_messages=0))


async def test_bad_arguments_are_refused(log_broker: JetStreamLogBroker) -> None:
    await log_broker.create_channel("args")
    with pytest.raises(LogBrokerError, match="start_position"):
        await log_broker.subscribe("args", start_position=0)
    sub = await log_broker.subscribe("args")
    with pytest.raises(LogBrokerError, match="max_messages"):
        await sub.next_batch(0)
    await sub.close()
    with pytest.raises(LogBrokerError, match="closed"):
        await sub.next_batch(1, timeout=0.01)
    with pytest.raises(LogBrokerError, match="prefix"):
        await JetStreamLogBroker.connect("nats://127.0.0.1:1", stream_prefix="bad.prefix")


async def test_payload_over_the_hard_cap_is_refused_before_sending(log_broker: JetStreamLogBroker) -> None:
    await log_broker.create_channel("cap")
    too_big = bytes(DEFAULT_HARD_CAP + 1)
    with pytest.raises(PayloadTooLargeError, match=r"64\.0 MiB.*split it into smaller payloads"):
        await log_broker.publish("cap", [b"fine", too_big])
    assert await log_broker.last_position("cap") == 0


async def test_hard_cap_is_configurable(nats_server: NatsServer) -> None:
    broker = await JetStreamLogBroker.connect(
        nats_server.url, stream_prefix=unique_prefix(), max_payload_hard_cap=1000
    )
    try:
        await broker.create_channel("c")
        assert await broker.publish("c", [bytes(1000)]) == [1]
        with pytest.raises(PayloadTooLargeError, match="1000 bytes"):
            await broker.publish("c", [bytes(1001)])
        await broker.delete_channel("c")
    finally:
        await broker.close()


async def test_large_payloads_round_trip_in_chunks(nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory(max_payload=SMALL_MAX_PAYLOAD)
    broker = await JetStreamLogBroker.connect(server.url)
    try:
        assert broker.max_payload == SMALL_MAX_PAYLOAD
        await broker.create_channel("big")
        big = _payload(3 * SMALL_MAX_PAYLOAD, seed=1)
        exact = _payload(SMALL_MAX_PAYLOAD, seed=2)
        payloads = [b"before", big, exact, b"after", _payload(SMALL_MAX_PAYLOAD + 1, seed=3)]
        positions = await broker.publish("big", payloads)
        assert positions == sorted(positions)
        assert positions[2] == positions[1] + 1  # `exact` fits in one message
        assert positions[1] - positions[0] == 4  # 3 x max_payload + headers -> 4 chunks
        assert await broker.last_position("big") == positions[-1]

        sub = await broker.subscribe("big")
        got = await read_n(sub, len(payloads))
        await sub.close()
        assert [m.payload for m in got] == payloads
        assert [m.position for m in got] == positions

        # The position of a chunked payload is its last chunk: subscribing there yields it whole.
        sub = await broker.subscribe("big", start_position=positions[1])
        got = await read_n(sub, len(payloads) - 1)
        await sub.close()
        assert [m.payload for m in got] == payloads[1:]
        # Resuming after it yields what follows, never a fragment.
        sub = await broker.subscribe("big", start_position=positions[1] + 1)
        got = await read_through(sub, positions[-1])
        await sub.close()
        assert [m.payload for m in got] == payloads[2:]
    finally:
        await broker.close()


async def test_interleaved_chunks_are_reassembled_and_resumable(
    nats_factory: Callable[..., NatsServer],
) -> None:
    """Chunks of two payloads from two publishers interleave; a reader resuming between them loses none."""
    server = nats_factory(max_payload=SMALL_MAX_PAYLOAD)
    broker = await JetStreamLogBroker.connect(server.url, stream_prefix="inter")
    nc = await nats.connect(server.url)
    try:
        await broker.create_channel("mix")
        a, b = _payload(150_000, seed=4), _payload(100_000, seed=5)
        ca, cb = split_payload(a, 40_000), split_payload(b, 40_000)  # 4 and 3 chunks
        js = nc.jetstream()
        subject = subject_name("inter", "mix")
        order = [ca[0], cb[0], ca[1], (b"small", None), cb[1], ca[2], cb[2], ca[3]]
        for data, info in order:
            headers = {CHUNK_HEADER: info.header_value()} if info is not None else None
            await js.publish(subject, data, headers=headers)
        # b completes at 7, `small` at 4, a at 8.
        sub = await broker.subscribe("mix")
        got = await read_n(sub, 3)
        await sub.close()
        assert [(m.position, m.payload) for m in got] == [(4, b"small"), (7, b), (8, a)]
        # A consumer that applied `small` (4) and resumes at 5 needs chunks 1-3 from before 5.
        for start, expected in [(5, [(7, b), (8, a)]), (8, [(8, a)]), (7, [(7, b), (8, a)])]:
            sub = await broker.subscribe("mix", start_position=start)
            got = await read_n(sub, len(expected))
            assert await sub.next_batch(5, timeout=0.05) == []
            await sub.close()
            assert [(m.position, m.payload) for m in got] == expected
    finally:
        await nc.close()
        await broker.close()


async def test_published_batch_survives_a_server_crash_and_restart(
    nats_factory: Callable[..., NatsServer],
) -> None:
    server = nats_factory()
    broker = await JetStreamLogBroker.connect(server.url)
    try:
        await broker.create_channel("durable", ChannelLimits(max_messages=10_000))
        payloads = [f"row-{i}".encode() for i in range(500)]
        positions = await broker.publish("durable", payloads)
        server.kill()
        assert not server.running()
        server.start()

        fresh = await JetStreamLogBroker.connect(server.url)
        try:
            assert await fresh.list_channels() == ["durable"]
            assert await fresh.channel_limits("durable") == ChannelLimits(max_messages=10_000)
            sub = await fresh.subscribe("durable")
            got = await read_n(sub, 500)
            await sub.close()
            assert [m.payload for m in got] == payloads
            assert [m.position for m in got] == positions
        finally:
            await fresh.close()

        # The first broker reconnected by itself and carries on from the next position.
        more = await broker.publish("durable", [b"after restart"])
        assert more == [501]
    finally:
        await broker.close()


async def test_subscription_recovers_after_a_server_restart(nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory()
    broker = await JetStreamLogBroker.connect(server.url)
    try:
        await broker.create_channel("tail")
        await broker.publish("tail", [b"one", b"two"])
        sub = await broker.subscribe("tail")
        assert [m.payload for m in await read_n(sub, 2)] == [b"one", b"two"]
        server.stop()
        with pytest.raises(StoreUnavailableError):
            await sub.next_batch(10, timeout=0.3)
        server.start()
        await broker.publish("tail", [b"three"])
        got = await read_n(sub, 1)
        await sub.close()
        assert [(m.position, m.payload) for m in got] == [(3, b"three")]
    finally:
        await broker.close()


async def test_a_broker_that_is_down_is_unavailable() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        await JetStreamLogBroker.connect(f"nats://127.0.0.1:{port}", connect_timeout=0.5)


async def test_publish_to_a_stopped_server_is_unavailable(nats_factory: Callable[..., NatsServer]) -> None:
    server = nats_factory()
    broker = await JetStreamLogBroker.connect(server.url, ack_timeout=0.5, request_timeout=0.5)
    try:
        await broker.create_channel("down")
        server.stop()
        with pytest.raises(StoreUnavailableError, match="nats-server"):
            await broker.publish("down", [b"x"] * 10)
        with pytest.raises(StoreUnavailableError):
            await broker.last_position("down")
    finally:
        await broker.close()


async def test_in_flight_window_is_bounded_and_freed(nats_server: NatsServer) -> None:
    broker = await JetStreamLogBroker.connect(nats_server.url, stream_prefix=unique_prefix(), max_inflight=4)
    try:
        await broker.create_channel("window")
        positions = await broker.publish("window", [b"x"] * 100)
        assert positions == list(range(1, 101))
        results = await asyncio.gather(*(broker.publish("window", [b"y"] * 50) for _ in range(3)))
        assert sorted(p for r in results for p in r) == list(range(101, 251))
        await broker.delete_channel("window")
    finally:
        await broker.close()


async def test_closed_broker_refuses_work(nats_server: NatsServer) -> None:
    broker = await JetStreamLogBroker.connect(nats_server.url, stream_prefix=unique_prefix())
    await broker.close()
    await broker.close()
    with pytest.raises(LogBrokerError, match="closed"):
        await broker.publish("x", [b"y"])


async def test_subscribe_beyond_the_end_waits_for_that_position(log_broker: JetStreamLogBroker) -> None:
    await log_broker.create_channel("ahead")
    await log_broker.publish("ahead", [b"1"])
    sub = await log_broker.subscribe("ahead", start_position=5)
    assert await sub.next_batch(10, timeout=0.05) == []
    await log_broker.publish("ahead", [b"2", b"3", b"4", b"5", b"6"])
    got = await read_n(sub, 2)
    await sub.close()
    assert [(m.position, m.payload) for m in got] == [(5, b"5"), (6, b"6")]


async def test_reading_a_deleted_channel_raises_channel_not_found(log_broker: JetStreamLogBroker) -> None:
    await log_broker.create_channel("vanishing")
    await log_broker.publish("vanishing", [b"x"])
    sub = await log_broker.subscribe("vanishing")
    assert len(await read_n(sub, 1)) == 1
    await log_broker.delete_channel("vanishing")
    with pytest.raises(ChannelNotFoundError, match="create it first"):
        for _ in range(3):
            await sub.next_batch(10, timeout=0.2)
    await sub.close()


async def test_a_cancel_nats_loses_still_stops_a_read(
    log_broker: JetStreamLogBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py can swallow a cancel of the task waiting in it (Python 3.11's wait_for returns the
    reply that landed in the same loop turn as the cancel; its flush catches CancelledError): a
    read must stop anyway. Before: a released query node channel consumed on (cancellation.py)."""
    await log_broker.create_channel("lost-cancel")
    sub = await log_broker.subscribe("lost-cancel")
    nc = sub._nc
    real_publish = nc.publish

    async def publish_losing_a_cancel(*args: object, **kwargs: object) -> None:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            pass  # what nats-py's wait_for / flush do with it
        await real_publish(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nc, "publish", publish_losing_a_cancel)
    try:
        read = asyncio.create_task(sub.next_batch(16, timeout=10.0))
        await asyncio.sleep(0.05)  # the read waits in its pull request's publish
        read.cancel()
        done, _ = await asyncio.wait({read}, timeout=3.0)
        assert read in done, "the read ran on after its cancel was lost"
        assert read.cancelled()
    finally:
        monkeypatch.undo()
        await sub.close()
