"""`compile_filter`: expression text + schema (+ template values) -> cached `FilterPlan`.

Invariants:
- parsing is memoised on the text (`parse_expression`); whole plans are
  memoised in a bounded LRU keyed by (text, schema fingerprint, template
  values), where the fingerprint is what planning depends on (field names,
  types, element types, nullability, primary key, dynamic field), so two
  equal schemas share plans and a changed schema never sees a stale one;
- template values that cannot be frozen into a key (unusual types) skip
  the cache rather than fail;
- an empty (or all-blank) expression is the always-true plan;
- errors are `ExpressionError` with a 0-based position and are not cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from numbers import Integral, Real
from typing import Any

from pelagos.errors import ExpressionError
from pelagos.expr import plan_nodes as pn
from pelagos.expr.filter_plan import FilterPlan
from pelagos.expr.parser import parse_expression
from pelagos.expr.planner import plan_expression
from pelagos.schema.types import CollectionSchema

PLAN_CACHE_SIZE = 1024


def schema_fingerprint(schema: CollectionSchema) -> Hashable:
    """What planning depends on in a schema, as a hashable key."""
    return (
        schema.enable_dynamic_field,
        tuple(
            (f.name, int(f.dtype), f.element_type, f.nullable, f.is_primary, f.is_dynamic)
            for f in schema.fields
        ),
    )


def _freeze(v: Any) -> Hashable:
    if isinstance(v, str | bool | Integral | Real):
        return (type(v).__name__, v)
    if isinstance(v, list | tuple):
        return ("seq", tuple(_freeze(x) for x in v))
    raise TypeError(type(v).__name__)


class _PlanCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._plans: OrderedDict[Hashable, FilterPlan] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> FilterPlan | None:
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
            return plan

    def put(self, key: Hashable, plan: FilterPlan) -> None:
        with self._lock:
            self._plans[key] = plan
            self._plans.move_to_end(key)
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()


_CACHE = _PlanCache(PLAN_CACHE_SIZE)


def _build(expression: str, schema: CollectionSchema, params: Mapping[str, Any] | None) -> FilterPlan:
    try:
        pk = schema.primary_field
        pk_name: str | None = pk.name
        pk_kind: pn.Kind | None = pn.kind_of(pk.dtype) if pk.dtype.is_scalar else None
    except (LookupError, ValueError):
        pk_name, pk_kind = None, None
    if not expression.strip():
        return FilterPlan(expression, pn.TRUE, pk_name, pk_kind)
    try:
        root = plan_expression(parse_expression(expression), expression, schema, params)
    except RecursionError:
        raise ExpressionError(
            "the expression nests too deeply; flatten its parentheses", None, expression
        ) from None
    return FilterPlan(expression, root, pk_name, pk_kind)


def compile_filter(
    expression: str, schema: CollectionSchema, params: Mapping[str, Any] | None = None
) -> FilterPlan:
    """The plan of a filter expression over a collection's schema.

    `params` fills template placeholders `{name}` (pymilvus `filter_params`).
    Raises `pelagos.errors.ExpressionError` (with `.position`) when the
    expression is malformed or does not type-check against the schema.
    """
    try:
        key: Hashable | None = (
            expression,
            schema_fingerprint(schema),
            tuple(sorted((k, _freeze(v)) for k, v in params.items())) if params else (),
        )
    except TypeError:
        key = None
    if key is not None:
        plan = _CACHE.get(key)
        if plan is not None:
            return plan
    plan = _build(expression, schema, params)
    if key is not None:
        _CACHE.put(key, plan)
    return plan


def clear_plan_cache() -> None:
    """Forget every cached plan (tests, or after many one-off expressions)."""
    _CACHE.clear()
