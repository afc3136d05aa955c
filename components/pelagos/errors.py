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


# --- engine (what a database user sees) -------------------------------------


class EngineError(PelagosError):
    """A request to the database was refused; the message is for the user."""


class InvalidArgumentError(EngineError):
    """The request itself is wrong (bad value, wrong type, wrong dimension)."""


class NameRuleError(InvalidArgumentError):
    """A collection, field, partition, alias, index or database name breaks the rules."""


class SchemaMismatchError(InvalidArgumentError):
    """The data does not fit the collection's schema (or the client's schema is stale)."""


class NotFoundError(EngineError):
    """Something named in the request does not exist."""


class DatabaseNotFoundError(NotFoundError):
    pass


class CollectionNotFoundError(NotFoundError):
    pass


class PartitionNotFoundError(NotFoundError):
    pass


class IndexNotFoundError(NotFoundError):
    pass


class AliasNotFoundError(NotFoundError):
    pass


class AlreadyExistsError(EngineError):
    """Something the request would create exists already."""


class CollectionNotLoadedError(EngineError):
    """Search or query on a collection that is not loaded."""


class ExpressionError(InvalidArgumentError):
    """A filter expression is malformed or does not type-check.

    `position` is the 0-based character offset in the expression where the
    problem is, when known.
    """

    def __init__(self, message: str, position: int | None = None, expression: str | None = None) -> None:
        self.position = position
        self.expression = expression
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}" + (f" in expression {expression!r}" if expression else ""))


class IndexParamError(InvalidArgumentError):
    """An index type, metric or build/search parameter is unknown or out of range."""


class UnsupportedError(EngineError):
    """The request is valid Milvus but Pelagos does not implement it (yet)."""


class ServiceUnavailableError(EngineError):
    """A component the request needs is not ready (starting, recovering, stopped)."""


class DeadlineExceededError(EngineError):
    """The request could not complete in time (e.g. consistency wait)."""


# --- segments ----------------------------------------------------------------


class SegmentFormatError(PelagosError):
    """A segment file, manifest or delete log cannot be decoded: written by a
    newer Pelagos (unknown format number), truncated, or not what its key says."""
