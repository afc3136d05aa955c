"""Translate nats-py exceptions into the Pelagos storage errors.

Invariant: no exception of the nats package leaves pelagos.storage.log; each
becomes StoreUnavailableError (the server cannot be reached or is not
ready), ChannelNotFoundError (the channel's stream does not exist) or
LogBrokerError (anything else), with a message that names the operation and
the channel and says what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import nats.errors
import nats.js.errors

from pelagos.errors import (
    ChannelNotFoundError,
    LogBrokerError,
    PelagosError,
    StoreUnavailableError,
)

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.TooManyStalledMsgsError,
    asyncio.TimeoutError,
    ConnectionError,
    OSError,
)


def channel_not_found(channel: str) -> ChannelNotFoundError:
    return ChannelNotFoundError(
        f"log channel {channel!r} does not exist; create it first with create_channel({channel!r})"
    )


def unavailable(what: str, exc: BaseException | None = None) -> StoreUnavailableError:
    detail = f": {describe(exc)}" if exc is not None else ""
    return StoreUnavailableError(
        f"the log broker (nats-server) is unavailable during {what}{detail}; check that nats-server is "
        f"running with JetStream enabled and reachable at the configured address"
    )


def describe(exc: BaseException) -> str:
    if isinstance(exc, nats.js.errors.APIError):
        return f"{exc.description or type(exc).__name__} (code {exc.code}, err_code {exc.err_code})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException, what: str, channel: str | None = None) -> PelagosError:
    """The Pelagos error for a nats-py exception raised during `what` on `channel`."""
    if isinstance(exc, PelagosError):
        return exc
    if isinstance(exc, nats.js.errors.NoStreamResponseError) and channel is not None:
        return channel_not_found(channel)
    if isinstance(exc, nats.js.errors.NotFoundError) and channel is not None:
        return channel_not_found(channel)
    if isinstance(exc, _UNAVAILABLE):
        return unavailable(what, exc)
    where = f" on channel {channel!r}" if channel is not None else ""
    return LogBrokerError(f"log broker {what}{where} failed: {describe(exc)}")


@contextmanager
def translated(what: str, channel: str | None = None) -> Iterator[None]:
    """Run a block, re-raising any nats-py (or socket) exception as a Pelagos error."""
    try:
        yield
    except PelagosError:
        raise
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        raise translate(exc, what, channel) from exc
