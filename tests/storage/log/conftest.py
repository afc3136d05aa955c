"""Fixtures of the log broker contract suite.

`make_broker()` opens a broker; brokers made in one test share one backend
and one namespace (as several processes with the same configuration do).
To run the contract on another LogBroker implementation, add its name to
`params` and open it in `make`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pelagos.storage.log.jetstream import JetStreamLogBroker
from pelagos.storage.log.protocol import LogBroker
from tests.fixtures.nats import drop_channels, unique_prefix

BrokerFactory = Callable[[], Awaitable[LogBroker]]


@pytest.fixture(params=["jetstream"])
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    opened: list[LogBroker] = []
    prefix = unique_prefix()
    url = request.getfixturevalue("nats_server").url if request.param == "jetstream" else ""

    async def make() -> LogBroker:
        broker: LogBroker = await JetStreamLogBroker.connect(url, stream_prefix=prefix)
        opened.append(broker)
        return broker

    try:
        yield make
    finally:
        for i, broker in enumerate(opened):
            if i == 0 and isinstance(broker, JetStreamLogBroker):
                await drop_channels(broker)
            await broker.close()


@pytest.fixture
async def broker(make_broker: BrokerFactory) -> LogBroker:
    return await make_broker()
