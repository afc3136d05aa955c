"""Reading one channel from a position on, live, through an ephemeral JetStream pull consumer.

The checkpoint lives with the caller (in etcd), so the consumer carries no
state worth keeping: it is ephemeral, in memory, acknowledges nothing, and
is recreated from the next unread sequence whenever it is lost (server
restart, inactivity timeout, slow-consumer drop, deletion).

Invariants:
- `_next_seq` is the lowest stream sequence not yet read; every sequence
  below it (from the start position on) was read exactly once and in order,
  which a contiguous consumer delivery sequence proves; on any gap the
  consumer is recreated from `_next_seq`, and deliveries of an older
  consumer are ignored;
- messages are whole payloads, emitted in increasing position order, each
  exactly once (see chunking.py for what a position means for chunked
  payloads and how chunks from before the start are fetched back);
- `next_batch` returns as soon as at least one whole payload is ready, or an
  empty list once `timeout` has passed; when the connection is down for the
  whole `timeout` it raises StoreUnavailableError, and the subscription
  carries on from where it was once the server is back; it never raises a
  nats exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from pelagos.errors import LogBrokerError
from pelagos.storage.log.cancellation import raise_if_cancelled
from pelagos.storage.log.chunking import (
    CHUNK_HEADER,
    DEFAULT_HORIZON,
    MissingHead,
    Reassembler,
    parse_chunk_header,
)
from pelagos.storage.log.nats_errors import channel_not_found, translate, translated, unavailable
from pelagos.storage.log.protocol import LogMessage

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.subscription import Subscription
    from nats.js.client import JetStreamContext

log = logging.getLogger(__name__)

_STATUS = "Status"
_DESCRIPTION = "Description"
_HEARTBEAT = "100"


def _consumer_lost(status: str, description: str) -> bool:
    """Whether a status ending a pull request means the consumer must be recreated.

    404 (no messages), 408 (request expired) and most 409s (batch completed,
    too many waiting requests, leadership change) just end the request;
    503 (no consumer answers) and 409 "Consumer Deleted" mean it is gone.
    """
    if status == "503":
        return True
    if status == "409":
        text = description.lower()
        return "deleted" in text or "push" in text
    return status not in ("404", "408")


class _Request:
    """One pull request: how many messages it asked for, how many came, whether it ended."""

    __slots__ = ("batch", "delivered", "done", "subject")

    def __init__(self, subject: str, batch: int) -> None:
        self.subject = subject
        self.batch = batch
        self.delivered = 0
        self.done = False


def _ack_fields(reply: str) -> tuple[str, int, int] | None:
    """(consumer, stream sequence, delivery sequence) from a JetStream ack subject."""
    tokens = reply.split(".")
    try:
        if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
            return tokens[3], int(tokens[5]), int(tokens[6])
        if len(tokens) >= 11:  # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>...
            return tokens[5], int(tokens[7]), int(tokens[8])
    except ValueError:
        return None
    return None


class JetStreamSubscription:
    """A LogSubscription over one JetStream stream. Not safe for concurrent `next_batch` calls."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        *,
        channel: str,
        stream: str,
        start_position: int,
        api_prefix: str = api.DEFAULT_PREFIX,
        inactive_threshold: float = 30.0,
        request_max_bytes: int = 32 * 1024 * 1024,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        self.channel = channel
        self.stream = stream
        self._nc = nc
        self._js = js
        self._api_prefix = api_prefix
        self._inactive_threshold = inactive_threshold
        self._request_max_bytes = request_max_bytes
        self._start = start_position
        self._next_seq = start_position
        self._consumer: str | None = None
        self._expected_dseq = 1
        self._broken = False
        self._raw: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._ready: deque[LogMessage] = deque()
        self._request: _Request | None = None
        self._request_counter = 0
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._reassembler = Reassembler(channel, horizon)
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def next_position(self) -> int:
        """The lowest broker sequence this subscription has not read yet."""
        return self._next_seq

    async def open(self) -> None:
        with translated("subscribe", self.channel):
            self._sub = await self._nc.subscribe(
                f"{self._inbox}.*", cb=self._on_message, pending_msgs_limit=0, pending_bytes_limit=0
            )
        await self._create_consumer()

    async def next_batch(self, max_messages: int = 256, timeout: float = 1.0) -> list[LogMessage]:
        if max_messages < 1:
            raise LogBrokerError(f"max_messages must be at least 1, got {max_messages}")
        async with self._lock:
            if self._closed:
                raise LogBrokerError(f"the subscription to channel {self.channel!r} is closed")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max(timeout, 0.0)
            try:
                return await self._next_batch(max_messages, deadline)
            except LogBrokerError:
                raise
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                raise translate(exc, "read", self.channel) from exc

    async def _next_batch(self, max_messages: int, deadline: float) -> list[LogMessage]:
        loop = asyncio.get_running_loop()
        waiting_for_more = False
        while True:
            raise_if_cancelled()  # nats-py may have lost a cancel of this task (see cancellation.py)
            await self._process_raw()
            if self._ready:
                return self._take(max_messages)
            remaining = deadline - loop.time()
            if remaining <= 0:
                if not self._nc.is_connected:
                    raise unavailable(f"read of channel {self.channel!r} (the connection is down)")
                return []
            if self._nc.is_closed:
                raise unavailable(f"read of channel {self.channel!r}")
            if not self._nc.is_connected:
                await self._wait_connected(deadline)
                continue
            if self._broken or self._consumer is None:
                await self._create_consumer()
            if not waiting_for_more:
                # Everything the consumer has right now, without waiting.
                await self._pull(max_messages, deadline, no_wait=True)
                waiting_for_more = True
            else:
                # Nothing was there: one lingering request for the next message.
                await self._pull(1, deadline, no_wait=False)
                waiting_for_more = False

    def _take(self, max_messages: int) -> list[LogMessage]:
        n = min(max_messages, len(self._ready))
        return [self._ready.popleft() for _ in range(n)]

    async def _wait_connected(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._nc.is_connected:
            if self._nc.is_closed or loop.time() >= deadline:
                raise unavailable(f"read of channel {self.channel!r} (the connection is down)")
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))

    async def _pull(self, batch: int, deadline: float, *, no_wait: bool) -> None:
        loop = asyncio.get_running_loop()
        assert self._consumer is not None
        self._request_counter += 1
        request = _Request(f"{self._inbox}.{self._request_counter}", batch)
        self._request = request
        body: dict[str, object] = {"batch": batch, "max_bytes": self._request_max_bytes}
        if no_wait:
            body["no_wait"] = True
        else:
            # Let the server end the request a little before our own deadline.
            expires = int((deadline - loop.time()) * 1e9) - 20_000_000
            if expires <= 1_000_000:
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return
            body["expires"] = expires
        subject = f"{self._api_prefix}.CONSUMER.MSG.NEXT.{self.stream}.{self._consumer}"
        self._arrived.clear()
        await self._nc.publish(subject, json.dumps(body).encode(), reply=request.subject)
        while not request.done and not self._broken:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return
            self._arrived.clear()
            if not no_wait and self._raw:
                return  # something arrived: process it before asking for more

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers
        status = headers.get(_STATUS) if headers else None
        request = self._request
        if status is not None:
            if status == _HEARTBEAT or request is None or msg.subject != request.subject:
                return  # a heartbeat, or the end of an older request
            request.done = True
            if _consumer_lost(status, headers.get(_DESCRIPTION, "") if headers else ""):
                log.debug(
                    "channel %r: pull request ended with %s %s; recreating the consumer",
                    self.channel,
                    status,
                    headers.get(_DESCRIPTION) if headers else "",
                )
                self._broken = True
        else:
            self._raw.append(msg)
            if request is not None and msg.subject == request.subject:
                request.delivered += 1
                if request.delivered >= request.batch:
                    request.done = True
        self._arrived.set()

    async def _process_raw(self) -> None:
        raw = self._raw
        while raw:
            msg = raw.popleft()
            fields = _ack_fields(msg.reply)
            if fields is None:
                raise LogBrokerError(
                    f"channel {self.channel!r}: unexpected delivery with reply subject {msg.reply!r}"
                )
            consumer, sseq, dseq = fields
            if consumer != self._consumer or self._broken:
                continue  # delivered to a consumer we have given up
            if dseq != self._expected_dseq:
                log.debug(
                    "channel %r: delivery %d of consumer %s arrived, expected %d; recreating it from %d",
                    self.channel,
                    dseq,
                    consumer,
                    self._expected_dseq,
                    self._next_seq,
                )
                self._broken = True
                continue
            self._expected_dseq += 1
            if sseq < self._next_seq:
                continue
            self._next_seq = sseq + 1
            headers = msg.headers
            chunk_header = headers.get(CHUNK_HEADER) if headers else None
            info = parse_chunk_header(chunk_header) if chunk_header is not None else None
            result = self._reassembler.feed(sseq, info, msg.data)
            if isinstance(result, MissingHead):
                result = await self._recover_head(result)
            if result is not None:
                self._ready.append(LogMessage(self.channel, sseq, result))

    async def _recover_head(self, head: MissingHead) -> bytes | None:
        """Fetch, by sequence, the chunks of `head`'s payload published before the start position."""
        needed = set(range(head.info.index))
        found: dict[int, bytes] = {}
        first_found = head.seq
        with translated("read (fetching the earlier chunks of a large payload)", self.channel):
            info = await self._js.stream_info(self.stream)
            lowest = max(info.state.first_seq or 1, self._start - self._reassembler.horizon, 1)
            seq = min(self._start, head.seq) - 1
            while needed and seq >= lowest:
                try:
                    stored = await self._js.get_msg(self.stream, seq=seq)
                except nats.js.errors.NotFoundError:
                    seq -= 1
                    continue
                value = (stored.headers or {}).get(CHUNK_HEADER)
                if value is not None:
                    chunk = parse_chunk_header(value)
                    if chunk.msg_id == head.info.msg_id and chunk.index in needed:
                        found[chunk.index] = stored.data or b""
                        needed.discard(chunk.index)
                        first_found = seq
                seq -= 1
        return self._reassembler.restore(head, found, first_found)

    async def _create_consumer(self) -> None:
        old = self._consumer
        name = uuid.uuid4().hex
        config = api.ConsumerConfig(
            name=name,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._next_seq,
            ack_policy=api.AckPolicy.NONE,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=self._inactive_threshold,
        )
        try:
            await self._js.add_consumer(self.stream, config)
        except nats.js.errors.NotFoundError as exc:
            raise channel_not_found(self.channel) from exc
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise translate(exc, "subscribe", self.channel) from exc
        self._consumer = name
        self._expected_dseq = 1
        self._broken = False
        self._request = None
        if old is not None:
            await self._delete_consumer(old)

    async def _delete_consumer(self, name: str) -> None:
        if self._nc.is_closed or not self._nc.is_connected:
            return
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError, OSError):
            await self._js.delete_consumer(self.stream, name)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sub is not None and not self._nc.is_closed:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError, OSError):
                await self._sub.unsubscribe()
        self._sub = None
        if self._consumer is not None:
            await self._delete_consumer(self._consumer)
            self._consumer = None
        self._raw.clear()
        self._ready.clear()
