"""Lifecycle: dependency order, concurrency within a wave, failure handling, health."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pelagos.runtime.lifecycle import Component, Health, Lifecycle


class Fake:
    def __init__(
        self,
        name: str,
        events: list[str],
        *,
        fail_start: bool = False,
        fail_stop: bool = False,
        healthy: bool = True,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.events = events
        self.fail_start = fail_start
        self.fail_stop = fail_stop
        self.healthy = healthy
        self.delay = delay

    async def start(self) -> None:
        self.events.append(f"start {self.name}")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.events.append(f"started {self.name}")

    async def stop(self) -> None:
        self.events.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")

    def health(self) -> Health:
        return Health(self.healthy, f"{self.name} detail")


def test_fake_is_a_component() -> None:
    assert isinstance(Fake("a", []), Component)


async def test_starts_in_dependency_order_and_stops_in_reverse() -> None:
    events: list[str] = []
    lc = Lifecycle()
    # added out of order on purpose
    lc.add(Fake("roles", events), depends_on=["log", "meta"])
    lc.add(Fake("log", events), depends_on=["nats"])
    lc.add(Fake("nats", events))
    lc.add(Fake("meta", events), depends_on=["etcd"])
    lc.add(Fake("etcd", events))
    assert lc.waves() == [["nats", "etcd"], ["log", "meta"], ["roles"]]
    await lc.start()
    started = [e.split()[1] for e in events if e.startswith("started")]
    assert started.index("nats") < started.index("log") < started.index("roles")
    assert started.index("etcd") < started.index("meta") < started.index("roles")
    assert lc.started == started
    events.clear()
    assert await lc.stop() == []
    assert [e.split()[1] for e in events] == list(reversed(started))
    assert lc.started == []


async def test_a_wave_starts_concurrently() -> None:
    events: list[str] = []
    lc = Lifecycle()
    lc.add(Fake("a", events, delay=0.01))
    lc.add(Fake("b", events, delay=0.01))
    await lc.start()
    # both began before either finished
    assert events[:2] == ["start a", "start b"]
    await lc.stop()


def test_cycle_is_rejected_naming_it() -> None:
    lc = Lifecycle()
    lc.add(Fake("a", []), depends_on=["c"])
    lc.add(Fake("b", []), depends_on=["a"])
    lc.add(Fake("c", []), depends_on=["b"])
    lc.add(Fake("d", []))
    with pytest.raises(ValueError, match=r"cycle.*a -> c -> b -> a"):
        lc.order()


async def test_cycle_is_rejected_before_anything_starts() -> None:
    events: list[str] = []
    lc = Lifecycle()
    lc.add(Fake("free", events))
    lc.add(Fake("a", events), depends_on=["b"])
    lc.add(Fake("b", events), depends_on=["a"])
    with pytest.raises(ValueError, match="cycle"):
        await lc.start()
    assert events == []


def test_bad_additions() -> None:
    lc = Lifecycle()
    lc.add(Fake("a", []))
    with pytest.raises(ValueError, match="already"):
        lc.add(Fake("a", []))
    with pytest.raises(ValueError, match="itself"):
        lc.add(Fake("b", []), depends_on=["b"])
    lc.add(Fake("c", []), depends_on=["missing"])
    with pytest.raises(ValueError, match=r"'c' depends on \['missing'\]"):
        lc.order()


async def test_start_failure_stops_what_started_and_reraises() -> None:
    events: list[str] = []
    lc = Lifecycle()
    lc.add(Fake("base", events))
    lc.add(Fake("ok", events), depends_on=["base"])
    lc.add(Fake("bad", events, fail_start=True), depends_on=["base"])
    lc.add(Fake("after", events), depends_on=["bad"])
    with pytest.raises(RuntimeError, match="bad cannot start"):
        await lc.start()
    assert "start after" not in events
    stops = [e for e in events if e.startswith("stop")]
    assert stops == ["stop ok", "stop base"]
    assert "stop bad" not in events  # it never started
    assert lc.started == []


async def test_stop_continues_past_a_failing_stop(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []
    lc = Lifecycle()
    lc.add(Fake("a", events))
    lc.add(Fake("b", events, fail_stop=True), depends_on=["a"])
    lc.add(Fake("c", events), depends_on=["b"])
    await lc.start()
    events.clear()
    with caplog.at_level(logging.ERROR):
        failures = await lc.stop()
    assert events == ["stop c", "stop b", "stop a"]
    assert [f.name for f in failures] == ["b"]
    assert "stopping b failed" in caplog.text


async def test_cancelled_start_stops_what_started() -> None:
    events: list[str] = []
    lc = Lifecycle()
    lc.add(Fake("fast", events))
    lc.add(Fake("slow", events, delay=10), depends_on=["fast"])
    task = asyncio.ensure_future(lc.start())
    while "start slow" not in events:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events[-1] == "stop fast"
    assert lc.started == []


async def test_start_is_incremental() -> None:
    events: list[str] = []
    lc = Lifecycle()
    lc.add(Fake("a", events))
    await lc.start()
    lc.add(Fake("b", events), depends_on=["a"])
    await lc.start()
    assert events == ["start a", "started a", "start b", "started b"]
    await lc.stop()


async def test_health_aggregates() -> None:
    events: list[str] = []
    lc = Lifecycle()
    a = Fake("a", events)
    lc.add(a)
    before = lc.health()
    assert not before.ok and before.components["a"] == Health(False, "not started")
    await lc.start()
    assert lc.health().ok
    assert lc.health().as_json() == {"ok": True, "components": {"a": {"ok": True, "detail": "a detail"}}}
    a.healthy = False
    assert not lc.health().ok

    class Broken(Fake):
        def health(self) -> Health:
            raise RuntimeError("probe exploded")

    a.healthy = True
    lc.add(Broken("z", events))
    await lc.start()
    health = lc.health()
    assert not health.ok
    assert "probe exploded" in health.components["z"].detail
    await lc.stop()
