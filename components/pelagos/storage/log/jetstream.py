"""The log broker on NATS JetStream: one file-backed stream per channel.

Positions are stream sequences (1, 2, ...). A payload larger than the
server's max_payload is split into chunks and reassembled by subscriptions;
its position is the sequence of its LAST chunk (chunking.py explains why and
how a consumer resumes: from position + 1 of the last whole payload it
applied).

Invariants:
- `publish` returns only when every broker message of every payload was
  acknowledged by the server (stored in the stream), and returns one
  position per payload, increasing; payloads beyond `max_payload_hard_cap`
  are refused whole, before anything is sent;
- at most `max_inflight` messages await their acknowledgement at once per
  broker; when no acknowledgement arrives for `ack_timeout` seconds, the
  publish fails with StoreUnavailableError (some payloads may then be
  stored: delivery is at-least-once, callers that retry must tolerate
  duplicates);
- a channel's stream and subject are derived from its name (naming.py), so
  any process with the same `stream_prefix` finds the same channels;
- only Pelagos errors leave this module: StoreUnavailableError when the
  server cannot be reached, ChannelNotFoundError for a missing channel,
  PayloadTooLargeError, LogBrokerError for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import api

from pelagos.errors import LogBrokerError, PayloadTooLargeError
from pelagos.storage.log.chunking import CHUNK_HEADER, chunk_size_for, split_payload
from pelagos.storage.log.jetstream_subscription import JetStreamSubscription
from pelagos.storage.log.naming import (
    channel_of_stream,
    stream_name,
    subject_name,
    validate_prefix,
)
from pelagos.storage.log.nats_errors import translate, translated, unavailable
from pelagos.storage.log.protocol import ChannelLimits

log = logging.getLogger(__name__)

DEFAULT_HARD_CAP = 64 * 1024 * 1024
# nats-server refuses a stream whose duplicate window exceeds its max age.
_DEFAULT_DUPLICATE_WINDOW = 120.0
_ERR_STREAM_NAME_IN_USE = 10058


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


class JetStreamLogBroker:
    """LogBroker over one NATS connection. Create it with `await JetStreamLogBroker.connect(...)`."""

    def __init__(
        self,
        nc: NATS,
        *,
        stream_prefix: str,
        max_inflight: int,
        max_payload_hard_cap: int,
        ack_timeout: float,
        request_timeout: float,
        replicas: int,
    ) -> None:
        self._nc = nc
        self._prefix = validate_prefix(stream_prefix)
        self._js = nc.jetstream(timeout=request_timeout, publish_async_max_pending=max_inflight)
        self._hard_cap = max_payload_hard_cap
        self._ack_timeout = ack_timeout
        self._request_timeout = request_timeout
        self._replicas = replicas
        self._names: dict[str, tuple[str, str]] = {}
        self._subscriptions: weakref.WeakSet[JetStreamSubscription] = weakref.WeakSet()
        self._closed = False

    @classmethod
    async def connect(
        cls,
        servers: str | list[str],
        *,
        stream_prefix: str = "pelagos",
        max_inflight: int = 256,
        connect_timeout: float = 5.0,
        max_payload_hard_cap: int = DEFAULT_HARD_CAP,
        ack_timeout: float = 10.0,
        request_timeout: float = 5.0,
        replicas: int = 1,
    ) -> JetStreamLogBroker:
        """Connect to nats-server and check that JetStream answers.

        The connection reconnects by itself (forever) after it was
        established; StoreUnavailableError when no server answered within
        `connect_timeout` seconds or JetStream is not enabled there.
        """
        validate_prefix(stream_prefix)
        if max_inflight < 1:
            raise LogBrokerError(f"max_inflight must be at least 1, got {max_inflight}")
        urls = [servers] if isinstance(servers, str) else list(servers)
        nc = NATS()

        async def on_error(exc: Exception) -> None:
            log.debug("nats connection to %s: %s", urls, exc)

        async def on_disconnected() -> None:
            log.debug("nats connection to %s lost (or closed)", urls)

        async def on_reconnected() -> None:
            log.info("nats connection re-established to %s", nc.connected_url)

        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=urls,
                    name="pelagos-log",
                    # nats-py annotates these two as int but uses them as seconds (float).
                    connect_timeout=connect_timeout,  # type: ignore[arg-type]
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,  # type: ignore[arg-type]
                    ping_interval=20,
                    max_outstanding_pings=3,
                    error_cb=on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                ),
                timeout=connect_timeout,
            )
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise unavailable(f"connect to {', '.join(urls)}", exc) from exc
        broker = cls(
            nc,
            stream_prefix=stream_prefix,
            max_inflight=max_inflight,
            max_payload_hard_cap=max_payload_hard_cap,
            ack_timeout=ack_timeout,
            request_timeout=request_timeout,
            replicas=replicas,
        )
        try:
            await broker._js.account_info()
        except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError) as exc:
            await broker.close()
            raise unavailable(
                f"connect to {', '.join(urls)} (the server answers but JetStream does not: "
                f"start nats-server with -js or a jetstream block in its configuration)",
                exc,
            ) from exc
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            await broker.close()
            raise translate(exc, "connect") from exc
        return broker

    # --- names ------------------------------------------------------------

    @property
    def stream_prefix(self) -> str:
        return self._prefix

    @property
    def max_payload(self) -> int:
        """Largest broker message the connected server accepts (payloads above it are chunked)."""
        return int(self._nc.max_payload)

    @property
    def max_payload_hard_cap(self) -> int:
        return self._hard_cap

    def _stream_and_subject(self, channel: str) -> tuple[str, str]:
        names = self._names.get(channel)
        if names is None:
            names = (stream_name(self._prefix, channel), subject_name(self._prefix, channel))
            self._names[channel] = names
        return names

    def _check_open(self) -> None:
        if self._closed:
            raise LogBrokerError("the log broker connection is closed")

    # --- channels ---------------------------------------------------------

    async def create_channel(self, name: str, limits: ChannelLimits | None = None) -> None:
        """Create the channel if absent; apply `limits` if given.

        With `limits=None` an existing channel keeps its limits (a new one
        gets none); with limits, every field replaces the channel's current
        one (a None field means unlimited).
        """
        self._check_open()
        stream, subject = self._stream_and_subject(name)
        config = self._stream_config(stream, subject, limits or ChannelLimits())
        with translated("create_channel", name):
            try:
                await self._js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != _ERR_STREAM_NAME_IN_USE:
                    raise
                if limits is not None:
                    await self._js.update_stream(config)

    def _stream_config(self, stream: str, subject: str, limits: ChannelLimits) -> api.StreamConfig:
        if limits.max_age_seconds is not None and limits.max_age_seconds <= 0:
            raise LogBrokerError(f"max_age_seconds must be positive, got {limits.max_age_seconds}")
        if limits.max_bytes is not None and limits.max_bytes <= 0:
            raise LogBrokerError(f"max_bytes must be positive, got {limits.max_bytes}")
        if limits.max_messages is not None and limits.max_messages <= 0:
            raise LogBrokerError(f"max_messages must be positive, got {limits.max_messages}")
        max_age = limits.max_age_seconds or 0.0
        return api.StreamConfig(
            name=stream,
            subjects=[subject],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.OLD,
            num_replicas=self._replicas,
            max_age=max_age,
            max_bytes=limits.max_bytes if limits.max_bytes is not None else -1,
            max_msgs=limits.max_messages if limits.max_messages is not None else -1,
            duplicate_window=min(max_age, _DEFAULT_DUPLICATE_WINDOW)
            if max_age
            else _DEFAULT_DUPLICATE_WINDOW,
        )

    async def channel_limits(self, name: str) -> ChannelLimits:
        """The limits the channel's stream has now."""
        self._check_open()
        stream, _ = self._stream_and_subject(name)
        with translated("channel_limits", name):
            info = await self._js.stream_info(stream)
        cfg = info.config
        return ChannelLimits(
            max_age_seconds=cfg.max_age if cfg.max_age else None,
            max_bytes=cfg.max_bytes if cfg.max_bytes is not None and cfg.max_bytes >= 0 else None,
            max_messages=cfg.max_msgs if cfg.max_msgs is not None and cfg.max_msgs >= 0 else None,
        )

    async def delete_channel(self, name: str) -> None:
        self._check_open()
        stream, _ = self._stream_and_subject(name)
        with translated("delete_channel", name):
            try:
                await self._js.delete_stream(stream)
            except nats.js.errors.NotFoundError:
                pass

    async def list_channels(self, prefix: str = "") -> list[str]:
        self._check_open()
        names: list[str] = []
        offset = 0
        request = f"{api.DEFAULT_PREFIX}.STREAM.NAMES"
        with translated("list_channels"):
            while True:
                body = json.dumps({"offset": offset, "subject": f"{self._prefix}.log.>"}).encode()
                msg = await self._nc.request(request, body, timeout=self._request_timeout)
                resp = json.loads(msg.data)
                if "error" in resp:
                    raise nats.js.errors.APIError.from_error(resp["error"])
                page = resp.get("streams") or []
                names.extend(page)
                offset += len(page)
                if not page or offset >= int(resp.get("total", 0)):
                    break
        channels = (channel_of_stream(self._prefix, stream) for stream in names)
        return sorted(c for c in channels if c is not None and c.startswith(prefix))

    async def last_position(self, channel: str) -> int:
        self._check_open()
        stream, _ = self._stream_and_subject(channel)
        with translated("last_position", channel):
            info = await self._js.stream_info(stream)
        return int(info.state.last_seq or 0)

    # --- data -------------------------------------------------------------

    async def publish(self, channel: str, payloads: Sequence[bytes]) -> list[int]:
        """Store the payloads in order; return each one's position once all are acknowledged."""
        self._check_open()
        if not payloads:
            return []
        for i, payload in enumerate(payloads):
            if len(payload) > self._hard_cap:
                raise PayloadTooLargeError(
                    f"payload {i} of {len(payloads)} for channel {channel!r} is {len(payload)} bytes "
                    f"({_mib(len(payload))}); the log broker's limit is {self._hard_cap} bytes "
                    f"({_mib(self._hard_cap)}, max_payload_hard_cap): split it into smaller payloads "
                    f"(e.g. fewer rows per insert request), or raise max_payload_hard_cap"
                )
        _, subject = self._stream_and_subject(channel)
        max_payload = self.max_payload
        chunk_size = chunk_size_for(max_payload)
        futures: list[asyncio.Future[api.PubAck]] = []
        last_of_payload: list[int] = []
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._ack_timeout) as watchdog:
                watching = True
                # Push the deadline back on acknowledgements, at most ~20 times per ack_timeout.
                step = self._ack_timeout / 20
                deadline = loop.time() + self._ack_timeout

                def progress(_: asyncio.Future[api.PubAck]) -> None:
                    nonlocal deadline
                    now = loop.time()
                    if watching and now + self._ack_timeout - deadline > step:
                        deadline = now + self._ack_timeout
                        watchdog.reschedule(deadline)

                try:
                    for payload in payloads:
                        if len(payload) <= max_payload:
                            future = await self._js.publish_async(subject, payload)
                            future.add_done_callback(progress)
                            futures.append(future)
                        else:
                            for data, info in split_payload(payload, chunk_size):
                                future = await self._js.publish_async(
                                    subject, data, headers={CHUNK_HEADER: info.header_value()}
                                )
                                future.add_done_callback(progress)
                                futures.append(future)
                        last_of_payload.append(len(futures) - 1)
                    acks = await asyncio.gather(*futures)
                finally:
                    watching = False
        except TimeoutError as exc:
            self._abandon(futures)
            raise unavailable(
                f"publish to channel {channel!r} (no acknowledgement for {self._ack_timeout:.0f}s; "
                f"some payloads may have been stored)"
            ) from exc
        except (nats.errors.Error, OSError) as exc:
            self._abandon(futures)
            raise translate(exc, "publish", channel) from exc
        except BaseException:
            self._abandon(futures)
            raise
        return [int(acks[i].seq) for i in last_of_payload]

    @staticmethod
    def _abandon(futures: list[asyncio.Future[api.PubAck]]) -> None:
        """Cancel the acks still awaited, which frees their in-flight slots."""
        for future in futures:
            if not future.done():
                future.cancel()

    async def subscribe(self, channel: str, start_position: int = 1) -> JetStreamSubscription:
        """Read `channel` from `start_position` (inclusive) on, live; see chunking.py for positions."""
        self._check_open()
        if start_position < 1:
            raise LogBrokerError(f"start_position must be at least 1, got {start_position}")
        stream, _ = self._stream_and_subject(channel)
        with translated("subscribe", channel):
            await self._js.stream_info(stream)
        subscription = JetStreamSubscription(
            self._nc,
            self._js,
            channel=channel,
            stream=stream,
            start_position=start_position,
            request_max_bytes=max(32 * 1024 * 1024, 2 * self.max_payload),
        )
        await subscription.open()
        self._subscriptions.add(subscription)
        return subscription

    async def close(self) -> None:
        """Close every subscription and the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            with contextlib.suppress(Exception):
                await subscription.close()
        self._subscriptions.clear()
        with contextlib.suppress(Exception):
            await self._nc.close()
