"""One shard search prepared once: metric, filter plan, validated params, prepared queries.

Everything but the queries depends only on the request's shape (field,
metric, params, limit, filter) and the channel's schema and declared
indexes, so it is kept in a SearchSetup per shape (`SetupCache`, which the
channel empties whenever its view changes); the queries are checked per
request.

Invariants:
- Search params are validated before any segment is searched, against the
  index declared on the field (even if no segment has it built yet) or, with
  no index, against exact search; a bad key or value is an IndexParamError
  whatever state the segments are in.
- Radius / range_filter (range search) come out of the same validation, so
  their order is checked with the metric's semantics.
- Queries are checked once (shape, dtype, finite values); COSINE queries are
  also kept unit-length for the exact path, which scores normalised rows.
- The iterator bound is a float32, compared with float32 scores exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pelagos.errors import InvalidArgumentError
from pelagos.expr import compile_filter
from pelagos.expr.filter_plan import FilterPlan
from pelagos.index.exact import normalize_rows
from pelagos.index.inputs import as_vectors
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.search_params import SearchParams
from pelagos.index.spec import IndexSpec
from pelagos.index.user_params import spec_from_params
from pelagos.interfaces.keys import frozen
from pelagos.interfaces.roles import ShardSearch
from pelagos.interfaces.types import IndexInfo
from pelagos.schema import CollectionSchema, DataType


@dataclass(slots=True)
class SearchSetup:
    """What a search of one shape needs besides its queries."""

    metric: MetricType
    plan: FilterPlan
    #: the validated params of the declared (or exact) index
    params: SearchParams
    #: the spec params were validated against (the index declared on the field, or exact search)
    spec: IndexSpec
    #: params for built indexes whose spec differs from the declared one (filled on demand)
    per_spec: dict[IndexSpec, SearchParams] = field(default_factory=dict)


@dataclass(slots=True)
class SearchContext:
    req: ShardSearch
    metric: MetricType
    plan: FilterPlan
    #: queries as the index takes them (float32 or packed uint8)
    queries: np.ndarray
    #: queries for exact scoring (unit length for COSINE)
    exact_queries: np.ndarray
    #: the validated params of the declared (or exact) index
    params: SearchParams
    #: the spec params were validated against (the index declared on the field, or exact search)
    spec: IndexSpec
    _per_spec: dict[IndexSpec, SearchParams] = field(default_factory=dict)

    @property
    def nq(self) -> int:
        return len(self.queries)

    @property
    def is_range(self) -> bool:
        return self.params.radius is not None

    @property
    def is_grouping(self) -> bool:
        return bool(self.req.group_by_field)

    @property
    def is_iterator(self) -> bool:
        return self.req.iterator

    def params_for(self, spec: IndexSpec) -> SearchParams:
        """Params for a built index (its spec may differ from the declared one while an index is
        being replaced; keys that do not apply to it are ignored, as Milvus does)."""
        if spec == self.spec:
            return self.params
        got = self._per_spec.get(spec)
        if got is None:
            got = SearchParams.parse(self.req.params, spec, self.req.limit)
            self._per_spec[spec] = got
        return got


def exact_spec(metric: MetricType, dim: int, is_binary: bool) -> IndexSpec:
    kind = IndexType.BIN_FLAT if is_binary else IndexType.FLAT
    return IndexSpec.parse(str(kind), str(metric), None, dim, is_binary)


def declared_spec(specs: Sequence[IndexInfo], field_name: str, dim: int, is_binary: bool) -> IndexSpec | None:
    for info in specs:
        if info.field_name == field_name and "metric_type" in info.params:
            return spec_from_params(info.params, dim, is_binary)
    return None


#: distinct search shapes remembered per channel view
MAX_SETUPS = 256


class SetupCache:
    """SearchSetups by request shape, for one schema and set of declared indexes."""

    def __init__(self) -> None:
        self._setups: dict[tuple[Any, ...], SearchSetup] = {}

    def get(
        self, req: ShardSearch, schema: CollectionSchema, index_specs: Sequence[IndexInfo]
    ) -> SearchSetup:
        key = (
            req.field_name,
            req.metric_type,
            req.limit,
            req.filter,
            frozen(req.params),
            frozen(req.filter_params),
        )
        found = self._setups.get(key)
        if found is None:
            found = setup(req, schema, index_specs)
            if len(self._setups) >= MAX_SETUPS:
                self._setups.clear()
            self._setups[key] = found
        return found


def prepare(
    req: ShardSearch,
    schema: CollectionSchema,
    index_specs: Sequence[IndexInfo],
    cache: SetupCache | None = None,
) -> SearchContext:
    s = cache.get(req, schema, index_specs) if cache is not None else setup(req, schema, index_specs)
    queries = as_vectors(req.vectors, s.spec, "query vectors")
    exact_queries = normalize_rows(queries) if s.metric is MetricType.COSINE else queries
    return SearchContext(
        req=req,
        metric=s.metric,
        plan=s.plan,
        queries=queries,
        exact_queries=exact_queries,
        params=s.params,
        spec=s.spec,
        _per_spec=s.per_spec,
    )


def setup(req: ShardSearch, schema: CollectionSchema, index_specs: Sequence[IndexInfo]) -> SearchSetup:
    f = schema.field(req.field_name)
    if f is None or not f.dtype.is_vector or f.dim is None:
        raise InvalidArgumentError(f"field {req.field_name} is not a vector field of the collection")
    metric = MetricType.of(req.metric_type)
    is_binary = f.dtype == DataType.BINARY_VECTOR
    if metric.for_binary != is_binary:
        kind = "binary" if is_binary else "float"
        raise InvalidArgumentError(
            f"metric type {metric} does not fit {kind} vector field {f.name}; "
            f"use {'HAMMING or JACCARD' if is_binary else 'L2, IP or COSINE'}"
        )
    spec = declared_spec(index_specs, f.name, f.dim, is_binary) or exact_spec(metric, f.dim, is_binary)
    if spec.metric is not metric:
        spec = exact_spec(metric, f.dim, is_binary)
    params = SearchParams.parse(req.params, spec, req.limit)
    plan = compile_filter(req.filter, schema, req.filter_params)
    return SearchSetup(metric=metric, plan=plan, params=params, spec=spec)


def iterator_key_bound(ctx: SearchContext) -> float | None:
    """The iterator bound as a sort key (smaller is better), in float32 precision."""
    bound = ctx.req.iterator_bound
    if bound is None:
        return None
    b = float(np.float32(bound))
    return -b if ctx.metric.larger_is_better else b
