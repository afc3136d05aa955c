"""Static questions about a plan: which fields it reads, whether a segment may hold a
match (min/max pruning), and whether it is a plain primary-key lookup.

Invariants:
- `may_match` is conservative: it answers False only when no row can
  match given the stats, True whenever unsure (no stats, unknown bounds,
  JSON, arrays, arithmetic, values of another type);
- negation is pushed down to the comparisons (`not (x < 5)` is `x >= 5`),
  which is exact under the evaluator's three-valued logic for columns
  without NaN; for FLOAT columns (where NaN satisfies `!=` and every
  negated comparison, yet stats ignore NaN) those cases answer True;
- `primary_key_values` recognises `pk == v`, `pk in [...]` and ORs of them,
  and returns the values (deduplicated, in order, of the pk's type), or
  None for anything else.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from pelagos.expr import plan_nodes as pn
from pelagos.expr.planner import flip
from pelagos.expr.stats import FieldStats

_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _children(node: pn.Predicate | pn.Value) -> Iterator[pn.Predicate | pn.Value]:
    if isinstance(node, pn.And | pn.Or):
        yield from node.operands
    elif isinstance(node, pn.Not):
        yield node.operand
    elif isinstance(node, pn.Compare | pn.Arith):
        yield node.left
        yield node.right
    elif isinstance(node, pn.InSet | pn.Like | pn.Truth | pn.Exists):
        yield node.value
    elif isinstance(node, pn.Contains | pn.Length):
        yield node.container
    elif isinstance(node, pn.Negate):
        yield node.operand
    elif isinstance(node, pn.ArrayElement):
        yield node.array


def referenced_fields(root: pn.Predicate) -> frozenset[str]:
    """Names of the columns the plan reads (schema fields and `$meta`)."""
    out: set[str] = set()
    stack: list[pn.Predicate | pn.Value] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, pn.ScalarColumn | pn.ArrayColumn):
            out.add(node.name)
        elif isinstance(node, pn.JsonValue | pn.IsNull):
            out.add(node.column)
        stack.extend(_children(node))
    return frozenset(out)


# --- pruning --------------------------------------------------------------------


def _unusable(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _compare_may(op: str, c: Any, s: FieldStats) -> bool:
    lo, hi = s.min, s.max
    if s.row_count - s.null_count <= 0:
        return False  # only nulls: no comparison holds
    if _unusable(lo) or _unusable(hi) or (isinstance(c, float) and math.isnan(c)):
        return True
    if isinstance(c, bool) != isinstance(lo, bool) or isinstance(c, str) != isinstance(lo, str):
        return True
    try:
        if op == "==":
            return bool(lo <= c <= hi)
        if op == "!=":
            return not (lo == hi == c)
        if op == "<":
            return bool(lo < c)
        if op == "<=":
            return bool(lo <= c)
        if op == ">":
            return bool(hi > c)
        return bool(hi >= c)
    except TypeError:
        return True


def _column_and_const(node: pn.Compare) -> tuple[pn.ScalarColumn, str, Any] | None:
    if isinstance(node.left, pn.ScalarColumn) and isinstance(node.right, pn.Const):
        return node.left, node.op, node.right.value
    if isinstance(node.right, pn.ScalarColumn) and isinstance(node.left, pn.Const):
        return node.right, flip(node.op), node.left.value
    return None


def may_match(node: pn.Predicate, stats: Mapping[str, FieldStats], negated: bool = False) -> bool:
    """Whether a segment with these per-field stats may hold a row where `node` (or its negation) is true."""
    if isinstance(node, pn.And):
        if negated:
            return any(may_match(p, stats, True) for p in node.operands)
        return all(may_match(p, stats) for p in node.operands)
    if isinstance(node, pn.Or):
        if negated:
            return all(may_match(p, stats, True) for p in node.operands)
        return any(may_match(p, stats) for p in node.operands)
    if isinstance(node, pn.Not):
        return may_match(node.operand, stats, not negated)
    if isinstance(node, pn.Constant):
        return node.value is (not negated)
    if isinstance(node, pn.Compare):
        parts = _column_and_const(node)
        if parts is None:
            return True
        col, op, c = parts
        s = stats.get(col.name)
        if s is None:
            return True
        if negated:
            if col.kind is pn.Kind.FLOAT:
                return True
            op = _NEGATE[op]
        if op == "!=" and col.kind is pn.Kind.FLOAT:
            return True
        return _compare_may(op, c, s)
    if isinstance(node, pn.InSet) and isinstance(node.value, pn.ScalarColumn):
        s = stats.get(node.value.name)
        if s is None:
            return True
        if node.negated != negated:  # effectively `not in`
            if node.value.kind is pn.Kind.FLOAT:
                return True
            if s.row_count - s.null_count <= 0:
                return False
            if _unusable(s.min) or s.min != s.max:
                return True
            return not any(_compare_may("==", v, s) for v in node.values)
        return any(_compare_may("==", v, s) for v in node.values)
    if isinstance(node, pn.IsNull):
        s = stats.get(node.column)
        if s is None:
            return True
        if node.negated != negated:  # effectively `is not null`
            return s.null_count < s.row_count
        return s.null_count > 0
    return True


# --- primary key lookups ----------------------------------------------------------------


def _pk_terms(node: pn.Predicate, pk: str) -> list[Any] | None:
    if isinstance(node, pn.Or):
        out: list[Any] = []
        for p in node.operands:
            part = _pk_terms(p, pk)
            if part is None:
                return None
            out.extend(part)
        return out
    if isinstance(node, pn.Compare) and node.op == "==":
        parts = _column_and_const(node)
        if parts is not None and parts[0].name == pk:
            return [parts[2]]
        return None
    if isinstance(node, pn.InSet) and not node.negated:
        value = node.value
        return list(node.values) if isinstance(value, pn.ScalarColumn) and value.name == pk else None
    if isinstance(node, pn.Constant) and node.value is not True:
        return []
    return None


def primary_key_values(root: pn.Predicate, pk: str | None, pk_kind: pn.Kind | None) -> list[Any] | None:
    """The primary keys the plan selects when it is exactly `pk == v` / `pk in [...]` (possibly OR-ed)."""
    if pk is None or pk_kind is None:
        return None
    terms = _pk_terms(root, pk)
    if terms is None:
        return None
    values: dict[Any, None] = {}
    for v in terms:
        if pk_kind is pn.Kind.INT:
            if isinstance(v, bool):
                continue
            if isinstance(v, float):
                if not v.is_integer():
                    continue  # no integer key equals it
                v = int(v)
            if isinstance(v, int):
                values[v] = None
        elif pk_kind is pn.Kind.STRING and isinstance(v, str):
            values[v] = None
    return list(values)
