"""The log broker: durable, ordered channels of byte payloads (DESIGN.md, invariant 1).

`protocol` defines what every broker offers; `JetStreamLogBroker` is the
implementation on NATS JetStream. Positions of chunked (large) payloads are
explained in `chunking`.
"""

from pelagos.storage.log.jetstream import JetStreamLogBroker
from pelagos.storage.log.jetstream_subscription import JetStreamSubscription
from pelagos.storage.log.protocol import ChannelLimits, LogBroker, LogMessage, LogSubscription

__all__ = [
    "ChannelLimits",
    "JetStreamLogBroker",
    "JetStreamSubscription",
    "LogBroker",
    "LogMessage",
    "LogSubscription",
]
