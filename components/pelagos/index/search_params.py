"""SearchParams: validated per-request search parameters for one index.

Invariants:
- Made by `SearchParams.parse(params, spec, k)`; flat keys and a nested
  ``params`` dict/JSON string are both accepted (as for build params).
- Keys that apply: ``ef`` (HNSW; k <= ef <= 32768), ``nprobe`` (IVF types;
  1 <= nprobe <= the spec's nlist), ``radius`` and ``range_filter`` (range
  search, any type). ``metric_type`` may be repeated but must equal the
  index's metric.
- Tolerated and ignored (recorded in `ignored`): search keys of *other*
  Milvus index types (clients commonly send ``nprobe`` to an HNSW index or
  ``ef`` to an IVF one, and Milvus ignores them too: ``level``,
  ``search_list``, ``itopk_size``, ...), and request-level keys pymilvus
  mixes into search params (``offset``, ``limit``, ``round_decimal``, ...).
  Any other key is refused, so a typo such as ``nprob`` is caught.
- Range order follows Milvus: for L2/HAMMING/JACCARD a result satisfies
  range_filter <= score < radius, so range_filter must be < radius; for
  IP/COSINE radius < score <= range_filter, so range_filter must be > radius.
- Defaults when absent: ef = max(k, DEFAULT_EF), nprobe = DEFAULT_NPROBE
  (Milvus's default 8), both clamped to what the built index has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pelagos.errors import IndexParamError
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.param_values import as_float, as_int, as_name, flatten_params
from pelagos.index.spec import IndexSpec

DEFAULT_EF = 64
DEFAULT_NPROBE = 8
MAX_EF = 32768
MAX_NPROBE = 65536

#: Search keys of other Milvus index types; accepted and ignored.
OTHER_INDEX_SEARCH_KEYS = frozenset(
    {
        "ef",
        "nprobe",
        "level",
        "search_list",
        "search_list_size",
        "itopk_size",
        "search_width",
        "min_iterations",
        "max_iterations",
        "team_size",
        "reorder_k",
        "refine_k",
        "max_codes",
        "drop_ratio_search",
        "dim_max_score_ratio",
        "radius_filter",
    }
)
#: Request-level keys pymilvus puts among search params; the request carries them, the index ignores them.
REQUEST_KEYS = frozenset(
    {
        "anns_field",
        "topk",
        "limit",
        "offset",
        "round_decimal",
        "ignore_growing",
        "group_by_field",
        "group_size",
        "strict_group_size",
        "iterator",
        "iterator_batch_size",
        "page_retain_order",
        "hints",
        "consistency_level",
    }
)
RANGE_KEYS = ("radius", "range_filter")


def search_keys(index_type: IndexType) -> tuple[str, ...]:
    """The width keys that apply to an index type."""
    if index_type is IndexType.HNSW:
        return ("ef",)
    if index_type.is_ivf:
        return ("nprobe",)
    return ()


@dataclass(frozen=True, slots=True)
class SearchParams:
    ef: int | None = None
    nprobe: int | None = None
    radius: float | None = None
    range_filter: float | None = None
    #: keys that were accepted but do not apply to this index
    ignored: tuple[str, ...] = ()

    def ef_for(self, k: int) -> int:
        return max(k, self.ef if self.ef is not None else DEFAULT_EF)

    def nprobe_for(self, nlist: int) -> int:
        return max(1, min(nlist, self.nprobe if self.nprobe is not None else DEFAULT_NPROBE))

    @classmethod
    def parse(cls, params: Mapping[str, Any] | None, spec: IndexSpec, k: int | None = None) -> SearchParams:
        """Validate search params for `spec` (and top-k `k` when known); raises IndexParamError."""
        flat = flatten_params(params, "search")
        context = f"search on {spec.index_type} index"
        metric_name = as_name(flat.pop("metric_type", None), "metric_type")
        if metric_name is not None and metric_name != spec.metric:
            raise IndexParamError(
                f"{context}: metric_type {metric_name} does not match the index's metric {spec.metric}; "
                f"search with metric_type {spec.metric} or rebuild the index"
            )
        applies = search_keys(spec.index_type)
        ef: int | None = None
        nprobe: int | None = None
        radius: float | None = None
        range_filter: float | None = None
        ignored: list[str] = []
        for key, value in flat.items():
            if key == "ef" and "ef" in applies:
                ef = as_int("ef", value, max(1, k or 1), MAX_EF, context + f" with k={k}" if k else context)
            elif key == "nprobe" and "nprobe" in applies:
                nprobe = as_int(
                    "nprobe", value, 1, spec.nlist or MAX_NPROBE, context + f" (nlist={spec.nlist})"
                )
            elif key == "radius":
                radius = as_float("radius", value, context)
            elif key == "range_filter":
                range_filter = as_float("range_filter", value, context)
            elif key in OTHER_INDEX_SEARCH_KEYS or key in REQUEST_KEYS:
                ignored.append(key)
            else:
                takes = ", ".join([*applies, *RANGE_KEYS])
                raise IndexParamError(f"{context}: unknown search parameter {key!r}; it takes {takes}")
        if k is not None and k < 1:
            raise IndexParamError(f"{context}: k (limit) must be at least 1, got {k}")
        _check_range(radius, range_filter, spec.metric, context)
        return cls(ef=ef, nprobe=nprobe, radius=radius, range_filter=range_filter, ignored=tuple(ignored))


def _check_range(radius: float | None, range_filter: float | None, metric: MetricType, context: str) -> None:
    if range_filter is None:
        return
    if radius is None:
        raise IndexParamError(f"{context}: range_filter needs radius; give radius too")
    if metric.larger_is_better and not range_filter > radius:
        raise IndexParamError(
            f"{context}: for {metric}, results satisfy radius < score <= range_filter, "
            f"so range_filter ({range_filter}) must be greater than radius ({radius})"
        )
    if not metric.larger_is_better and not range_filter < radius:
        raise IndexParamError(
            f"{context}: for {metric}, results satisfy range_filter <= distance < radius, "
            f"so range_filter ({range_filter}) must be less than radius ({radius})"
        )


def check_range(radius: float, range_filter: float | None, metric: MetricType) -> None:
    """The same range checks for callers that pass radius/range_filter directly."""
    _check_range(radius, range_filter, metric, f"range search ({metric})")
