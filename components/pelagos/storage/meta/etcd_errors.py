"""Translation of etcd client failures into Pelagos storage errors.

etcd3aio maps an unreachable server to its own exceptions, but lets other
gRPC statuses through as raw gRPC errors (a lease that is gone comes back as
NOT_FOUND "requested lease not found"). The engine must not import gRPC, so
this module reads those errors by duck typing (`exc.code().name`,
`exc.details()`) and is the only place that knows their shape.

Invariants:
- an unreachable etcd (connection refused, deadline passed) becomes
  StoreUnavailableError naming the endpoints and saying to check etcd runs;
- a lease that no longer exists becomes LeaseExpiredError;
- anything else the client raises becomes MetaStoreError; asyncio
  cancellation is never translated.
"""

from __future__ import annotations

from etcd3aio import EtcdConnectionError, EtcdError, EtcdTransientError

from pelagos.errors import LeaseExpiredError, MetaStoreError, StorageError, StoreUnavailableError

_UNAVAILABLE_STATUSES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


def rpc_status(exc: BaseException) -> tuple[str, str] | None:
    """(status name, details) of a gRPC error, or None for any other exception."""
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if not callable(code) or not callable(details):
        return None
    try:
        name = getattr(code(), "name", None)
        text = details()
    except Exception:
        return None
    if not isinstance(name, str):
        return None
    return name, text if isinstance(text, str) else ""


def is_lease_not_found(exc: BaseException) -> bool:
    status = rpc_status(exc)
    return status is not None and status[0] == "NOT_FOUND" and "lease not found" in status[1]


def translate(exc: Exception, *, operation: str, endpoints: str) -> StorageError:
    """The Pelagos error to raise for `exc`, raised by the etcd client during `operation`."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, EtcdConnectionError | EtcdTransientError | TimeoutError):
        return unavailable(operation, endpoints, exc)
    status = rpc_status(exc)
    if status is not None:
        name, details = status
        if name in _UNAVAILABLE_STATUSES:
            return unavailable(operation, endpoints, exc)
        if name == "NOT_FOUND" and "lease not found" in details:
            return LeaseExpiredError(
                f"etcd {operation} failed: the lease expired or was revoked; grant a new lease"
            )
        return MetaStoreError(f"etcd {operation} failed: {name}: {details}")
    if isinstance(exc, EtcdError):
        return MetaStoreError(f"etcd {operation} failed: {exc}")
    return MetaStoreError(f"etcd {operation} failed: {type(exc).__name__}: {exc}")


def unavailable(operation: str, endpoints: str, exc: BaseException | None = None) -> StoreUnavailableError:
    cause = f" ({exc})" if exc is not None and str(exc) else ""
    return StoreUnavailableError(
        f"etcd at {endpoints} is unreachable during {operation}{cause}; "
        f"check that etcd is running and that the endpoint is right"
    )
