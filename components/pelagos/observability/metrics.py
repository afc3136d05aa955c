"""Prometheus metrics: one registry, one naming convention, shared label names.

Every metric is named `pelagos_<role>_<what>[_<unit>]`:
- role: the component that owns it (proxy, coordinator, datanode, querynode,
  indexnode, runtime, storage, ...), lower snake case;
- what: what is measured, lower snake case (`search_requests`, `inserted`);
- unit: a base unit from UNITS (seconds, bytes, rows, ...); counters get the
  `_total` suffix from the client library (pelagos_proxy_inserted_rows_total).

Declare metrics through `RoleMetrics(role)`; it checks names and label names
(one spelling per concept: LABEL_SYNONYMS maps the rejected spellings to the
accepted one) and returns the already-declared metric when the same name is
declared again with the same kind and labels, so two instances of a role in
one process (standalone, tests) share their metrics instead of failing.

Invariants:
- every Pelagos metric lives in REGISTRY (plus process and platform
  collectors); `render()` is the /metrics body;
- latency histograms use LATENCY_BUCKETS (0.5 ms .. 10 s) unless told otherwise;
- a name or label that breaks the convention raises ValueError at declaration.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

PREFIX = "pelagos"

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds: from a cached point lookup (0.5 ms) to a large flush or load (10 s)."""

SIZE_BUCKETS: tuple[float, ...] = tuple(float(4**i * 1024) for i in range(11))
"""Bytes: 1 KiB .. 1 GiB by factors of 4 (payloads, segment files)."""

UNITS = frozenset({"", "seconds", "bytes", "rows", "messages", "vectors", "segments", "requests", "ratio"})

LABEL_SYNONYMS: dict[str, str] = {
    "collection_name": "collection",
    "coll": "collection",
    "partition_name": "partition",
    "vchannel": "channel",
    "pchannel": "channel",
    "shard_id": "shard",
    "node": "node_id",
    "nodeid": "node_id",
    "op": "operation",
    "rpc": "method",
    "rpc_method": "method",
    "state": "status",
    "result": "status",
    "error_code": "code",
    "type": "kind",
}
"""Rejected label spellings and the label name to use instead."""

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

_M = TypeVar("_M", Counter, Gauge, Histogram)

_declared: dict[str, tuple[type[Any], tuple[str, ...], Any]] = {}
_lock = threading.Lock()


def metric_name(role: str, what: str, unit: str = "") -> str:
    """`pelagos_<role>_<what>[_<unit>]`, checked against the convention."""
    for part, value in (("role", role), ("what", what)):
        if not _NAME.match(value):
            raise ValueError(f"metric {part} {value!r} must be lower snake case (e.g. 'search_requests')")
    if unit not in UNITS:
        raise ValueError(f"metric unit {unit!r} is not one of {sorted(UNITS)}")
    if what.endswith("_total") or (unit and what.endswith("_" + unit)):
        raise ValueError(f"metric {what!r}: leave the unit and the _total suffix out of `what`")
    return "_".join(p for p in (PREFIX, role, what, unit) if p)


def check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    for label in labels:
        if label in LABEL_SYNONYMS:
            raise ValueError(f"metric label {label!r}: use {LABEL_SYNONYMS[label]!r} (one name per concept)")
        if not _NAME.match(label):
            raise ValueError(f"metric label {label!r} must be lower snake case")
    if len(set(labels)) != len(labels):
        raise ValueError(f"metric labels {list(labels)} repeat a name")
    return tuple(labels)


class RoleMetrics:
    """Declares the metrics of one role, all in REGISTRY."""

    def __init__(self, role: str, registry: CollectorRegistry = REGISTRY) -> None:
        metric_name(role, "x")  # validates the role
        self.role = role
        self._registry = registry

    def counter(self, what: str, doc: str, labels: Sequence[str] = (), unit: str = "") -> Counter:
        """A counter `pelagos_<role>_<what>[_<unit>]_total`."""
        return self._declare(Counter, metric_name(self.role, what, unit), doc, labels)

    def gauge(self, what: str, doc: str, labels: Sequence[str] = (), unit: str = "") -> Gauge:
        return self._declare(Gauge, metric_name(self.role, what, unit), doc, labels)

    def histogram(
        self,
        what: str,
        doc: str,
        labels: Sequence[str] = (),
        unit: str = "seconds",
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """A histogram; latency buckets by default, SIZE_BUCKETS for bytes."""
        if buckets is None:
            buckets = SIZE_BUCKETS if unit == "bytes" else LATENCY_BUCKETS
        return self._declare(
            Histogram, metric_name(self.role, what, unit), doc, labels, buckets=tuple(buckets)
        )

    def latency(self, what: str, doc: str, labels: Sequence[str] = ()) -> Histogram:
        """A latency histogram `pelagos_<role>_<what>_seconds` with LATENCY_BUCKETS."""
        return self.histogram(what, doc, labels, unit="seconds", buckets=LATENCY_BUCKETS)

    def _declare(self, kind: type[_M], name: str, doc: str, labels: Sequence[str], **kw: Any) -> _M:
        label_names = check_labels(labels)
        key = f"{id(self._registry)}:{name}"
        with _lock:
            found = _declared.get(key)
            if found is not None:
                found_kind, found_labels, metric = found
                if found_kind is not kind or found_labels != label_names:
                    raise ValueError(
                        f"metric {name} is declared already as a {found_kind.__name__.lower()} "
                        f"with labels {list(found_labels)}"
                    )
                return metric  # type: ignore[no-any-return]
            metric = kind(name, doc, labelnames=label_names, registry=self._registry, **kw)
            _declared[key] = (kind, label_names, metric)
            return metric


def render(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The Prometheus text exposition of `registry` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
