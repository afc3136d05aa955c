"""IndexSpec: a validated description of one vector index (type, metric, dim, build params).

Invariants:
- An IndexSpec is only made by `IndexSpec.parse` (or `from_dict` of what
  `to_dict` wrote); once made, every field is valid for its index type and
  every build parameter the type takes has a value (defaults filled in).
- AUTOINDEX, "" and None resolve to a concrete type: HNSW M=18
  efConstruction=240 for float vectors (the values Milvus's own autoIndex
  config uses, so recall and memory match what Milvus users expect) and
  BIN_FLAT for binary vectors (a binary code is dim/8 bytes; an exact popcount
  scan is memory-bound, has perfect recall and needs no training).
  `requested_type` keeps what was asked for, so DescribeIndex can echo it.
- A missing metric is COSINE for float and HAMMING for binary vectors
  (Milvus 2.4+ defaults).
- Build parameter ranges are Milvus's: nlist 1..65536, M 2..2048,
  efConstruction 1..2^31-1, m 1..dim and dividing dim, nbits 1..16.
  A key an index type does not take is refused (except `mmap.enabled`,
  which Milvus clients attach to index params and which means nothing here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from pelagos.errors import IndexParamError
from pelagos.index.kinds import (
    AUTOINDEX,
    BINARY_INDEX_TYPES,
    BINARY_METRICS,
    FLOAT_INDEX_TYPES,
    FLOAT_METRICS,
    IndexType,
    MetricType,
)
from pelagos.index.param_values import as_int, as_name, flatten_params, same_value

INT32_MAX = 2**31 - 1
MAX_DIM = 32768
MAX_BINARY_DIM = MAX_DIM * 8

DEFAULT_NLIST = 128
DEFAULT_NBITS = 8
#: Milvus (knowhere) defaults when HNSW is asked for without parameters.
DEFAULT_HNSW_M = 30
DEFAULT_EF_CONSTRUCTION = 360
#: What AUTOINDEX builds for float vectors (Milvus's autoIndex.params.build).
AUTO_HNSW_M = 18
AUTO_EF_CONSTRUCTION = 240
AUTO_FLOAT_TYPE = IndexType.HNSW
AUTO_BINARY_TYPE = IndexType.BIN_FLAT

DEFAULT_FLOAT_METRIC = MetricType.COSINE
DEFAULT_BINARY_METRIC = MetricType.HAMMING

#: Build keys each index type takes (Milvus spelling, case-sensitive: HNSW "M" vs IVF_PQ "m").
BUILD_KEYS: dict[IndexType, tuple[str, ...]] = {
    IndexType.FLAT: (),
    IndexType.IVF_FLAT: ("nlist",),
    IndexType.IVF_SQ8: ("nlist",),
    IndexType.IVF_PQ: ("nlist", "m", "nbits"),
    IndexType.HNSW: ("M", "efConstruction"),
    IndexType.BIN_FLAT: (),
    IndexType.BIN_IVF_FLAT: ("nlist",),
}
#: Keys Milvus clients attach to index params that mean nothing to the index itself.
IGNORED_BUILD_KEYS = frozenset({"mmap.enabled"})
_META_KEYS = ("index_type", "metric_type")


def default_pq_m(dim: int) -> int:
    """The largest divisor of dim that is at most dim // 4 (4 dimensions per sub-quantizer), at least 1."""
    limit = max(1, dim // 4)
    return max(m for m in range(1, limit + 1) if dim % m == 0)


@dataclass(frozen=True, slots=True)
class IndexSpec:
    index_type: IndexType
    metric: MetricType
    dim: int
    nlist: int | None = None
    m: int | None = None
    nbits: int | None = None
    hnsw_m: int | None = None
    ef_construction: int | None = None
    #: the type the user asked for ("AUTOINDEX" or the concrete type)
    requested_type: str = ""

    @property
    def is_binary(self) -> bool:
        return self.index_type.for_binary

    @property
    def code_size(self) -> int:
        """Bytes per vector: dim / 8 for binary, 4 * dim for float."""
        return self.dim // 8 if self.is_binary else 4 * self.dim

    def build_params(self) -> dict[str, int]:
        """The build parameters in Milvus spelling, defaults included."""
        names = {"nlist": self.nlist, "m": self.m, "nbits": self.nbits}
        names |= {"M": self.hnsw_m, "efConstruction": self.ef_construction}
        return {k: v for k, v in names.items() if v is not None and k in BUILD_KEYS[self.index_type]}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["index_type"] = str(self.index_type)
        d["metric"] = str(self.metric)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IndexSpec:
        fields = dict(d)
        fields["index_type"] = IndexType(fields["index_type"])
        fields["metric"] = MetricType(fields["metric"])
        return cls(**fields)

    def same_index(self, other: IndexSpec) -> bool:
        """Equal as far as the built index is concerned (requested_type aside)."""
        return self.to_dict() | {"requested_type": ""} == other.to_dict() | {"requested_type": ""}

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.build_params().items())
        return f"{self.index_type}({self.metric}, dim={self.dim}{', ' + params if params else ''})"

    @classmethod
    def parse(
        cls,
        index_type: str | None,
        metric_type: str | None,
        params: Mapping[str, Any] | None,
        dim: int,
        is_binary: bool,
    ) -> IndexSpec:
        """Validate a create-index request; raises IndexParamError saying what is allowed."""
        flat = flatten_params(params, "index")
        index_name = _merge_meta(
            as_name(index_type, "index_type"), flat.pop("index_type", None), "index_type"
        )
        metric_name = _merge_meta(
            as_name(metric_type, "metric_type"), flat.pop("metric_type", None), "metric_type"
        )
        _check_dim(dim, is_binary)
        kind = "binary" if is_binary else "float"
        resolved = _resolve_type(index_name, is_binary)
        metric = _resolve_metric(metric_name, is_binary)
        context = f"{resolved} index"
        allowed_keys = BUILD_KEYS[resolved]
        values: dict[str, int] = {}
        for key, value in flat.items():
            if key in IGNORED_BUILD_KEYS:
                continue
            if key not in allowed_keys:
                takes = ", ".join(allowed_keys) if allowed_keys else "no build parameters"
                raise IndexParamError(
                    f"unknown build parameter {key!r} for {resolved} on {kind} vectors; "
                    f"{resolved} takes {takes}"
                )
            values[key] = _build_value(key, value, dim, context)
        auto = index_name in (None, AUTOINDEX)
        spec = cls(index_type=resolved, metric=metric, dim=dim, requested_type=index_name or AUTOINDEX)
        if resolved.is_ivf:
            spec = replace(spec, nlist=values.get("nlist", DEFAULT_NLIST))
        if resolved is IndexType.IVF_PQ:
            m = values.get("m", default_pq_m(dim))
            if dim % m:
                raise IndexParamError(
                    f"{context}: m must divide the dimension {dim}, got m={m}; "
                    f"divisors of {dim}: {_divisors(dim)}"
                )
            spec = replace(spec, m=m, nbits=values.get("nbits", DEFAULT_NBITS))
        if resolved is IndexType.HNSW:
            spec = replace(
                spec,
                hnsw_m=values.get("M", AUTO_HNSW_M if auto else DEFAULT_HNSW_M),
                ef_construction=values.get(
                    "efConstruction", AUTO_EF_CONSTRUCTION if auto else DEFAULT_EF_CONSTRUCTION
                ),
            )
        return spec


def _merge_meta(explicit: str | None, in_params: Any, key: str) -> str | None:
    nested = as_name(in_params, key)
    if explicit and nested and not same_value(explicit, nested):
        raise IndexParamError(f"{key} is given twice with different values ({explicit!r} and {nested!r})")
    return explicit or nested


def _check_dim(dim: int, is_binary: bool) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise IndexParamError(f"dimension must be an integer, got {dim!r}")
    if is_binary:
        if not 8 <= dim <= MAX_BINARY_DIM or dim % 8:
            raise IndexParamError(
                f"binary vector dimension must be a multiple of 8 in [8, {MAX_BINARY_DIM}], got {dim}"
            )
    elif not 1 <= dim <= MAX_DIM:
        raise IndexParamError(f"float vector dimension must be in [1, {MAX_DIM}], got {dim}")


def _resolve_type(name: str | None, is_binary: bool) -> IndexType:
    if name in (None, AUTOINDEX):
        return AUTO_BINARY_TYPE if is_binary else AUTO_FLOAT_TYPE
    allowed = BINARY_INDEX_TYPES if is_binary else FLOAT_INDEX_TYPES
    kind = "binary" if is_binary else "float"
    allowed_text = ", ".join([*allowed, AUTOINDEX])
    try:
        resolved = IndexType(name)
    except ValueError:
        raise IndexParamError(
            f"index type {name!r} is not supported; for {kind} vectors use one of {allowed_text}"
        ) from None
    if resolved not in allowed:
        raise IndexParamError(f"index type {name} does not fit {kind} vectors; use one of {allowed_text}")
    return resolved


def _resolve_metric(name: str | None, is_binary: bool) -> MetricType:
    if name is None:
        return DEFAULT_BINARY_METRIC if is_binary else DEFAULT_FLOAT_METRIC
    allowed = BINARY_METRICS if is_binary else FLOAT_METRICS
    kind = "binary" if is_binary else "float"
    allowed_text = ", ".join(allowed)
    try:
        metric = MetricType(name)
    except ValueError:
        raise IndexParamError(
            f"metric type {name!r} is not supported; for {kind} vectors use one of {allowed_text}"
        ) from None
    if metric not in allowed:
        raise IndexParamError(f"metric type {name} does not fit {kind} vectors; use one of {allowed_text}")
    return metric


def _build_value(key: str, value: Any, dim: int, context: str) -> int:
    ranges = {
        "nlist": (1, 65536),
        "M": (2, 2048),
        "efConstruction": (1, INT32_MAX),
        "m": (1, dim),
        "nbits": (1, 16),
    }
    low, high = ranges[key]
    return as_int(key, value, low, high, context)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
