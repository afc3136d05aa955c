"""Metrics of the proxy: requests, latencies and rows, by method."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from pelagos.observability.metrics import RoleMetrics

_m = RoleMetrics("proxy")
REQUESTS = _m.counter("requests", "Requests handled by the proxy, by method and status", ["method", "status"])
LATENCY = _m.latency("request_latency", "Latency of proxy requests, by method", ["method"])
INSERTED_ROWS = _m.counter("inserted", "Rows inserted or upserted", unit="rows")
DELETED_ROWS = _m.counter("deleted", "Rows deleted", unit="rows")
SEARCH_VECTORS = _m.counter("searched", "Query vectors searched", unit="vectors")

P = ParamSpec("P")
R = TypeVar("R")


def measured(
    method: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Count and time an async proxy method."""

    def wrap(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        latency = LATENCY.labels(method)
        ok = REQUESTS.labels(method, "ok")
        failed = REQUESTS.labels(method, "error")

        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
            except BaseException:
                failed.inc()
                raise
            finally:
                latency.observe(time.perf_counter() - started)
            ok.inc()
            return result

        return inner

    return wrap
