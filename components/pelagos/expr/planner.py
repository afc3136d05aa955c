"""Syntax tree + schema + template values -> typed plan (`pelagos.expr.plan_nodes`).

Invariants:
- every name is resolved here: a schema field, `$meta`, or (when the
  collection has the dynamic field) a bare key of `$meta`; schema fields win
  over dynamic keys;
- every type error is raised here as `ExpressionError` with the 0-based
  position of the offending operand or operator, so evaluation never fails
  on types: VARCHAR vs number, arithmetic on strings or bools, `like` on a
  non-string, subscripting a non-JSON scalar, array functions on a
  non-array, unknown fields and functions, missing template values;
- constant sub-trees are folded with the same semantics the evaluator
  applies to columns (`scalar_arith`), so folding never changes a result;
- int and float mix freely; INT op INT stays INT with C-like truncating
  `/` and `%` (the sign of `%` follows the dividend, as in Milvus); `**`
  and anything touching a JSON value is computed in float64; division (or
  `%`) by zero gives SQL null, which no comparison matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from pelagos.errors import ExpressionError
from pelagos.expr import plan_nodes as pn
from pelagos.expr import syntax_tree as st
from pelagos.expr.like import like_matches
from pelagos.schema.types import DYNAMIC_FIELD_NAME, CollectionSchema, DataType, FieldSchema

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_ORDERING = ("<", "<=", ">", ">=")
_ASCENDING = ("<", "<=")
_DESCENDING = (">", ">=")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

_CONTAINS = {
    "json_contains": "one",
    "array_contains": "one",
    "json_contains_all": "all",
    "array_contains_all": "all",
    "json_contains_any": "any",
    "array_contains_any": "any",
}
_FUNCTIONS = (*sorted(_CONTAINS), "array_length")


@dataclass(frozen=True, slots=True)
class _ListConst:
    """A list of constants (literal or template), with each element's position."""

    values: tuple[pn.ConstValue, ...]
    positions: tuple[int, ...]


_Planned = pn.Value | _ListConst


def flip(op: str) -> str:
    """The operator with its operands swapped: `a < b` is `b > a`."""
    return _FLIP[op]


def scalar_arith(op: str, x: Any, y: Any, kind: pn.Kind) -> int | float | None:
    """One arithmetic operation on Python numbers, with the evaluator's semantics (None = null)."""
    if x is None or y is None:
        return None
    if kind is pn.Kind.INT:
        xi, yi = int(x), int(y)
        if op == "+":
            return xi + yi
        if op == "-":
            return xi - yi
        if op == "*":
            return xi * yi
        if yi == 0:
            return None
        q = abs(xi) // abs(yi)
        if (xi < 0) != (yi < 0):
            q = -q
        return q if op == "/" else xi - q * yi
    xf, yf = float(x), float(y)
    if op == "+":
        return xf + yf
    if op == "-":
        return xf - yf
    if op == "*":
        return xf * yf
    if op == "/":
        return None if yf == 0 else xf / yf
    if op == "%":
        return None if yf == 0 else math.fmod(xf, yf)
    # op == "**"
    if xf == 0 and yf < 0:
        return None
    if xf < 0 and not yf.is_integer():
        return None
    try:
        r = xf**yf
    except OverflowError:
        odd = yf.is_integer() and int(yf) % 2 == 1
        r = -math.inf if (xf < 0 and odd) else math.inf
    return None if math.isnan(r) else r


def compare_scalars(op: str, x: Any, y: Any) -> bool | None:
    """`x op y` on Python constants already known to be comparable (None = null)."""
    if x is None or y is None:
        return None
    if op == "==":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def _const_kind(v: Any) -> pn.Kind | None:
    if isinstance(v, bool):
        return pn.Kind.BOOL
    if isinstance(v, int):
        return pn.Kind.INT
    if isinstance(v, float):
        return pn.Kind.FLOAT
    if isinstance(v, str):
        return pn.Kind.STRING
    return None


def _fits(kind: pn.Kind, v: pn.ConstValue) -> bool:
    """Whether constant `v` can be compared with values of `kind` (JSON takes any scalar)."""
    ck = _const_kind(v)
    if ck is None:
        return False
    if kind is pn.Kind.JSON:
        return True
    if kind.is_numeric:
        return ck.is_numeric
    return ck is kind


def _describe(v: _Planned) -> str:
    if isinstance(v, pn.Const):
        return "null" if v.value is None else f"the {v.kind.value} {v.value!r}"
    if isinstance(v, _ListConst):
        return "a list"
    if isinstance(v, pn.ScalarColumn):
        return f"{v.dtype.name} field {v.name!r}"
    if isinstance(v, pn.JsonValue):
        return f"JSON value {render_json_path(v)}"
    if isinstance(v, pn.ArrayColumn):
        return f"ARRAY field {v.name!r}"
    if isinstance(v, pn.ArrayElement):
        return f"array element {v.array.name}[{v.index}] ({v.kind.value})"
    if isinstance(v, pn.Length):
        return "array_length(...) (an integer)"
    return f"an {v.kind.value} expression" if v.kind is pn.Kind.INT else f"a {v.kind.value} expression"


def render_json_path(v: pn.JsonValue) -> str:
    return v.column + "".join(f"[{k!r}]" if isinstance(k, str) else f"[{k}]" for k in v.path)


class Planner:
    """Plans one expression against one schema; raises `ExpressionError` on anything ill-typed."""

    def __init__(self, text: str, schema: CollectionSchema, params: Mapping[str, Any] | None) -> None:
        self._text = text
        self._schema = schema
        self._params = params or {}
        self._dynamic = self._dynamic_field(schema)

    @staticmethod
    def _dynamic_field(schema: CollectionSchema) -> str | None:
        for f in schema.fields:
            if f.is_dynamic:
                return f.name
        return DYNAMIC_FIELD_NAME if schema.enable_dynamic_field else None

    def _error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, pos, self._text)

    # --- conditions -------------------------------------------------------------

    def condition(self, node: st.Node) -> pn.Predicate:
        """The predicate of a node that must be a condition (top level, and/or/not operands)."""
        if isinstance(node, st.And | st.Or):
            parts: list[pn.Predicate] = []
            self._flatten(node, type(node), parts)
            return make_and(parts) if isinstance(node, st.And) else make_or(parts)
        if isinstance(node, st.Not):
            return make_not(self.condition(node.operand))
        if isinstance(node, st.Comparison):
            return self._comparison(node)
        if isinstance(node, st.In):
            return self._in(node)
        if isinstance(node, st.Like):
            return self._like(node)
        if isinstance(node, st.IsNull):
            return self._is_null(node)
        if isinstance(node, st.Exists):
            return self._exists(node)
        if isinstance(node, st.Call) and node.name.lower() in _CONTAINS:
            return self._contains(node)
        v = self.value(node)
        if isinstance(v, pn.Const) and v.kind is pn.Kind.BOOL:
            return pn.Constant(None if v.value is None else bool(v.value))
        if isinstance(v, _ListConst) or v.kind not in (pn.Kind.BOOL, pn.Kind.JSON):
            raise self._error(f"expected a condition, got {_describe(v)}", node.pos)
        return pn.Truth(v)

    def _flatten(self, node: st.Node, cls: type, out: list[pn.Predicate]) -> None:
        """Operands of a run of one operator (`a or b or c ...`), without recursing per operand:
        generated filters chain thousands of terms."""
        stack: list[st.Node] = [node]
        while stack:
            top = stack.pop()
            if isinstance(top, st.And | st.Or) and type(top) is cls:
                stack.append(top.right)
                stack.append(top.left)
            else:
                out.append(self.condition(top))

    def _comparison(self, node: st.Comparison) -> pn.Predicate:
        ops = node.ops
        if len(ops) > 1:
            one_way = all(o in _ASCENDING for o in ops) or all(o in _DESCENDING for o in ops)
            if not one_way:
                raise self._error(
                    "a chained comparison must be a range in one direction, like 1 < x <= 5 or 5 > x >= 1",
                    node.op_positions[1],
                )
        values = [self.value(o) for o in node.operands]
        parts = [
            self._compare2(ops[i], values[i], values[i + 1], node.operands[i], node.operands[i + 1], pos)
            for i, pos in enumerate(node.op_positions)
        ]
        return make_and(parts)

    def _comparable(self, v: _Planned, node: st.Node) -> pn.Value:
        if isinstance(v, _ListConst):
            raise self._error("a list cannot be compared; use `in` or a contains function", node.pos)
        if v.kind is pn.Kind.ARRAY:
            raise self._error(
                f"{_describe(v)} cannot be compared as a whole; compare an element like "
                f"{getattr(v, 'name', 'arr')}[0] or use array_contains",
                node.pos,
            )
        return v

    def _compare2(
        self, op: str, a: _Planned, b: _Planned, na: st.Node, nb: st.Node, op_pos: int
    ) -> pn.Predicate:
        left = self._comparable(a, na)
        right = self._comparable(b, nb)
        ka, kb = left.kind, right.kind
        if pn.Kind.JSON not in (ka, kb) and not (ka.is_numeric and kb.is_numeric) and ka is not kb:
            raise self._error(f"cannot compare {_describe(left)} with {_describe(right)}", op_pos)
        if op in _ORDERING and pn.Kind.BOOL in (ka, kb):
            raise self._error("bool values can only be compared with == or !=", op_pos)
        if isinstance(left, pn.Const) and left.value is None:
            return pn.UNKNOWN
        if isinstance(right, pn.Const) and right.value is None:
            return pn.UNKNOWN
        if isinstance(left, pn.Const) and isinstance(right, pn.Const):
            return pn.Constant(compare_scalars(op, left.value, right.value))
        return pn.Compare(op, left, right)

    def _list_operand(self, node: st.Node, what: str) -> _ListConst:
        v = self.value(node)
        if not isinstance(v, _ListConst):
            raise self._error(f"{what} needs a list of constants like [1, 2], got {_describe(v)}", node.pos)
        return v

    def _check_elements(self, kind: pn.Kind, lst: _ListConst, target: str) -> None:
        for value, pos in zip(lst.values, lst.positions, strict=True):
            if not _fits(kind, value):
                shown = "a list" if isinstance(value, tuple) else repr(value)
                raise self._error(f"list element {shown} does not fit {target}", pos)

    def _in(self, node: st.In) -> pn.Predicate:
        value = self._comparable(self.value(node.value), node.value)
        lst = self._list_operand(node.container, "`in`")
        self._check_elements(value.kind, lst, _describe(value))
        if isinstance(value, pn.Const):
            if value.value is None:
                return pn.UNKNOWN
            found = any(_const_kind(x) is not pn.Kind.BOOL and x == value.value for x in lst.values)
            if value.kind is pn.Kind.BOOL:
                found = any(x is value.value for x in lst.values)
            return pn.Constant(found != node.negated)
        return pn.InSet(value, lst.values, node.negated)

    def _like(self, node: st.Like) -> pn.Predicate:
        value = self.value(node.value)
        if isinstance(value, _ListConst) or value.kind not in (pn.Kind.STRING, pn.Kind.JSON):
            raise self._error(
                f"`like` needs a VARCHAR field or a JSON value, got {_describe(value)}", node.op_pos
            )
        pattern = self.value(node.pattern)
        if not (isinstance(pattern, pn.Const) and isinstance(pattern.value, str)):
            raise self._error(
                f"a `like` pattern must be a string, got {_describe(pattern)}", node.pattern.pos
            )
        if isinstance(value, pn.Const):
            return pn.Constant(like_matches(str(value.value), pattern.value))
        return pn.Like(value, pattern.value)

    def _is_null(self, node: st.IsNull) -> pn.Predicate:
        target = node.value
        f = self._schema.field(target.name) if isinstance(target, st.Path) else None
        if not isinstance(target, st.Path) or target.subscripts or f is None:
            raise self._error(
                "`is null` applies to a field of the schema; to test a JSON key use `exists`", target.pos
            )
        self._field_ref(f, target)
        if not f.nullable:
            return pn.Constant(node.negated)
        return pn.IsNull(f.name, node.negated)

    def _exists(self, node: st.Exists) -> pn.Predicate:
        v = self.value(node.value)
        if not isinstance(v, pn.JsonValue) or not v.path:
            raise self._error(
                f'`exists` needs a JSON key like meta["a"] or a dynamic field key, got {_describe(v)}',
                node.value.pos,
            )
        return pn.Exists(v)

    def _container(self, node: st.Node, fname: str) -> pn.ArrayColumn | pn.JsonValue:
        v = self.value(node)
        if not isinstance(v, pn.ArrayColumn | pn.JsonValue):
            raise self._error(f"{fname} needs an ARRAY field or a JSON value, got {_describe(v)}", node.pos)
        return v

    def _contains(self, node: st.Call) -> pn.Predicate:
        fname = node.name.lower()
        mode = _CONTAINS[fname]
        self._arity(node, 2)
        container = self._container(node.args[0], fname)
        elem = container.element if isinstance(container, pn.ArrayColumn) else pn.Kind.JSON
        target = f"the elements of {_describe(container)}"
        arg = node.args[1]
        if mode == "one":
            v = self.value(arg)
            if isinstance(v, _ListConst):
                if elem is not pn.Kind.JSON:
                    raise self._error(
                        f"{fname} needs one value, not a list, for {_describe(container)}", arg.pos
                    )
                return pn.Contains(container, (v.values,), mode)
            if not isinstance(v, pn.Const):
                raise self._error(f"{fname} needs a constant value, got {_describe(v)}", arg.pos)
            if v.value is None:
                return pn.UNKNOWN
            if not _fits(elem, v.value):
                raise self._error(f"{v.value!r} does not fit {target}", arg.pos)
            return pn.Contains(container, (v.value,), mode)
        lst = self._list_operand(arg, fname)
        if elem is not pn.Kind.JSON:
            self._check_elements(elem, lst, target)
        if not lst.values:
            # contains all of nothing is vacuously true, any of nothing is false (like `in []`)
            return pn.Contains(container, (), mode)
        return pn.Contains(container, lst.values, mode)

    def _arity(self, node: st.Call, n: int) -> None:
        if len(node.args) != n:
            raise self._error(
                f"{node.name} takes {n} argument{'s' if n > 1 else ''}, got {len(node.args)}", node.pos
            )

    # --- values -----------------------------------------------------------------

    def value(self, node: st.Node) -> _Planned:
        if isinstance(node, st.Literal):
            return self._literal(node.value, node.pos)
        if isinstance(node, st.Template):
            return self._template(node)
        if isinstance(node, st.ListLiteral):
            return self._list(node)
        if isinstance(node, st.Path):
            return self._path(node)
        if isinstance(node, st.Unary):
            return self._unary(node)
        if isinstance(node, st.Arithmetic):
            return self._arith(node)
        if isinstance(node, st.Call):
            return self._call_value(node)
        raise self._error("a condition cannot be used as a value here", node.pos)

    def _literal(self, v: Any, pos: int) -> pn.Const:
        kind = _const_kind(v)
        if kind is None:
            raise self._error(f"unsupported literal {v!r}", pos)
        if kind is pn.Kind.INT and not INT64_MIN <= v <= INT64_MAX:
            raise self._error(f"integer {v} is out of the INT64 range", pos)
        return pn.Const(v, kind)

    def _template(self, node: st.Template) -> _Planned:
        if node.name not in self._params:
            raise self._error(
                f"no value for template {{{node.name}}}; pass it in the filter parameters", node.pos
            )
        raw = self._params[node.name]
        value = self._param_value(raw, node)
        if isinstance(value, tuple):
            return _ListConst(value, (node.pos,) * len(value))
        return self._literal(value, node.pos)

    def _param_value(self, raw: Any, node: st.Template) -> pn.ConstValue:
        if isinstance(raw, bool | str):
            return raw
        if isinstance(raw, Integral):
            if not INT64_MIN <= int(raw) <= INT64_MAX:
                raise self._error(f"template {{{node.name}}} holds {raw}, out of the INT64 range", node.pos)
            return int(raw)
        if isinstance(raw, Real):
            return float(raw)
        if isinstance(raw, Sequence) and not isinstance(raw, bytes | bytearray):
            return tuple(self._param_value(x, node) for x in raw)
        raise self._error(
            f"template {{{node.name}}} is a {type(raw).__name__}; use a number, string, bool or list",
            node.pos,
        )

    def _list(self, node: st.ListLiteral) -> _ListConst:
        values: list[pn.ConstValue] = []
        positions: list[int] = []
        for item in node.items:
            v = self.value(item)
            if isinstance(v, _ListConst):
                values.append(v.values)
            elif isinstance(v, pn.Const):
                if v.value is None:
                    raise self._error("division by zero in a list constant", item.pos)
                values.append(v.value)
            else:
                raise self._error(f"list elements must be constants, got {_describe(v)}", item.pos)
            positions.append(item.pos)
        return _ListConst(tuple(values), tuple(positions))

    def _path(self, node: st.Path) -> pn.Value:
        f = self._schema.field(node.name)
        if f is None:
            if self._dynamic is None:
                raise self._error(
                    f"unknown field {node.name!r}: the collection has no such field and no dynamic field",
                    node.pos,
                )
            keys = tuple(s.key for s in node.subscripts)
            if node.name == self._dynamic:
                return pn.JsonValue(self._dynamic, keys, nullable=False)
            return pn.JsonValue(self._dynamic, (node.name, *keys), nullable=False)
        return self._field_ref(f, node)

    def _field_ref(self, f: FieldSchema, node: st.Path) -> pn.Value:
        if f.dtype.is_vector:
            raise self._error(f"vector field {f.name!r} cannot be used in a filter", node.pos)
        subs = node.subscripts
        if f.dtype == DataType.JSON or f.is_dynamic:
            nullable = f.nullable and not f.is_dynamic
            return pn.JsonValue(f.name, tuple(s.key for s in subs), nullable=nullable)
        if f.dtype == DataType.ARRAY:
            if (
                f.element_type is None
                or not f.element_type.is_scalar
                or f.element_type
                in (
                    DataType.JSON,
                    DataType.ARRAY,
                )
            ):
                raise self._error(f"array field {f.name!r} has no usable element type", node.pos)
            arr = pn.ArrayColumn(f.name, pn.kind_of(f.element_type), f.nullable)
            if not subs:
                return arr
            first = subs[0]
            if not isinstance(first.key, int):
                raise self._error(
                    f"array field {f.name!r} takes an integer index like {f.name}[0], not a key", first.pos
                )
            if len(subs) > 1:
                raise self._error(f"{f.name}[{first.key}] is a scalar and cannot be indexed", subs[1].pos)
            return pn.ArrayElement(arr, first.key)
        if subs:
            raise self._error(
                f"{f.dtype.name} field {f.name!r} cannot be indexed; only JSON and ARRAY fields take [...]",
                subs[0].pos,
            )
        return pn.ScalarColumn(f.name, pn.kind_of(f.dtype), f.dtype, f.nullable)

    def _numeric(self, v: _Planned, pos: int) -> pn.Value:
        if isinstance(v, _ListConst) or not (v.kind.is_numeric or v.kind is pn.Kind.JSON):
            raise self._error(f"arithmetic needs numbers, got {_describe(v)}", pos)
        return v

    def _unary(self, node: st.Unary) -> pn.Value:
        if (
            node.op == "-"
            and isinstance(node.operand, st.Literal)
            and _const_kind(node.operand.value) is pn.Kind.INT
        ):
            return self._literal(-int(node.operand.value), node.pos)
        v = self._numeric(self.value(node.operand), node.pos)
        if node.op == "+":
            return v
        if isinstance(v, pn.Const):
            return pn.Const(None if v.value is None else -v.value, v.kind)  # type: ignore[operator]
        return pn.Negate(v, pn.Kind.FLOAT if v.kind is pn.Kind.JSON else v.kind)

    def _arith(self, node: st.Arithmetic) -> pn.Value:
        a = self._numeric(self.value(node.left), node.op_pos)
        b = self._numeric(self.value(node.right), node.op_pos)
        kind = (
            pn.Kind.INT
            if a.kind is pn.Kind.INT and b.kind is pn.Kind.INT and node.op != "**"
            else pn.Kind.FLOAT
        )
        a_null = isinstance(a, pn.Const) and a.value is None
        b_null = isinstance(b, pn.Const) and b.value is None
        if a_null or b_null:
            return pn.Const(None, kind)
        if isinstance(a, pn.Const) and isinstance(b, pn.Const):
            r = scalar_arith(node.op, a.value, b.value, kind)
            if kind is pn.Kind.INT and r is not None and not INT64_MIN <= r <= INT64_MAX:
                raise self._error("constant arithmetic overflows INT64", node.op_pos)
            return pn.Const(r, kind)
        return pn.Arith(node.op, a, b, kind)

    def _call_value(self, node: st.Call) -> pn.Value:
        fname = node.name.lower()
        if fname == "array_length":
            self._arity(node, 1)
            return pn.Length(self._container(node.args[0], fname))
        if fname in _CONTAINS:
            raise self._error(f"{node.name}(...) is a condition, not a value", node.pos)
        raise self._error(f"unknown function {node.name!r}; known: {', '.join(_FUNCTIONS)}", node.pos)


# --- predicate constructors with constant folding (Kleene logic) -------------


def make_and(parts: Sequence[pn.Predicate]) -> pn.Predicate:
    out: list[pn.Predicate] = []
    for p in parts:
        if isinstance(p, pn.Constant) and p.value is True:
            continue
        if isinstance(p, pn.Constant) and p.value is False:
            return pn.FALSE
        out.extend(p.operands if isinstance(p, pn.And) else (p,))
    if not out:
        return pn.TRUE
    return out[0] if len(out) == 1 else pn.And(tuple(out))


def make_or(parts: Sequence[pn.Predicate]) -> pn.Predicate:
    out: list[pn.Predicate] = []
    for p in parts:
        if isinstance(p, pn.Constant) and p.value is False:
            continue
        if isinstance(p, pn.Constant) and p.value is True:
            return pn.TRUE
        out.extend(p.operands if isinstance(p, pn.Or) else (p,))
    if not out:
        return pn.FALSE
    return out[0] if len(out) == 1 else pn.Or(tuple(out))


def make_not(p: pn.Predicate) -> pn.Predicate:
    if isinstance(p, pn.Constant):
        return pn.Constant(None if p.value is None else not p.value)
    if isinstance(p, pn.Not):
        return p.operand
    return pn.Not(p)


def plan_expression(
    node: st.Node, text: str, schema: CollectionSchema, params: Mapping[str, Any] | None
) -> pn.Predicate:
    """The typed predicate of a parsed expression; raises `ExpressionError` when ill-typed."""
    return Planner(text, schema, params).condition(node)
