"""The Pelagos error hierarchy.

One base class, one subclass per layer; every message says what went wrong
and, where it can, what to do about it. The wire adapters map these onto
protocol status codes; nothing below them knows about any protocol.
"""

from __future__ import annotations


class PelagosError(Exception):
    """Base of every error Pelagos raises on purpose."""


# --- storage layer -----------------------------------------------------------


class StorageError(PelagosError):
    """A store (log broker, meta store, object store) failed or refused."""


class StoreUnavailableError(StorageError):
    """The store cannot be reached: it is down, or the address is wrong."""


class LogBrokerError(StorageError):
    """The log broker refused or failed an operation."""


class PayloadTooLargeError(LogBrokerError):
    """A log payload exceeds what the broker can carry, even split."""


class ChannelNotFoundError(LogBrokerError):
    """The named log channel does not exist."""


class MetaStoreError(StorageError):
    """The meta store refused or failed an operation."""


class LeaseExpiredError(MetaStoreError):
    """A meta store lease expired or was revoked."""


class ObjectStoreError(StorageError):
    """The object store refused or failed an operation."""


class ObjectNotFoundError(ObjectStoreError):
    """The object (or its bucket) does not exist."""


class BucketNotFoundError(ObjectNotFoundError):
    """The bucket does not exist."""


# --- runtime -----------------------------------------------------------------


class ConfigError(PelagosError):
    """The configuration is invalid: unknown key, bad value, bad file."""


class ServerProcessError(PelagosError):
    """A child server process (nats-server, etcd, weed) could not start or died."""
