"""Evaluates a plan over an Arrow table or record batch, a whole column at a time.

Invariants:
- one `Evaluation` per call: it holds the table and caches what it derived
  from it (numpy columns, parsed JSON, list offsets), never anything
  beyond the call, so a plan is safe to share between threads;
- scalar columns become int64 / float64 / bool numpy arrays (zero-copy
  where Arrow allows), strings stay Arrow; nulls become the `null` mask;
- a value of statically unknown kind (JSON) is read in the class the
  operation needs; comparing two JSON values tries each class in turn and
  ORs the results (a row has one class, so at most one can hold);
- the result is a fresh numpy bool array of one entry per row: True where
  the predicate is true (false and unknown rows are both False).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pelagos.errors import SchemaMismatchError
from pelagos.expr import plan_nodes as pn
from pelagos.expr import vectors as vx
from pelagos.expr.array_columns import ArrayData
from pelagos.expr.json_columns import JsonData, json_key
from pelagos.expr.vectors import Mask, Tri, Vec

_NUMERIC = pn.Kind.FLOAT


def _classes(a: pn.Kind, b: pn.Kind, op: str) -> tuple[pn.Kind, ...]:
    """The comparison classes (numeric, string, bool) in which `a op b` can hold."""
    if a is pn.Kind.JSON and b is pn.Kind.JSON:
        return (_NUMERIC, pn.Kind.STRING, pn.Kind.BOOL) if op in ("==", "!=") else (_NUMERIC, pn.Kind.STRING)
    known = b if a is pn.Kind.JSON else a
    return (_NUMERIC,) if known.is_numeric else (known,)


def _class_of(v: Any) -> pn.Kind | None:
    if isinstance(v, bool):
        return pn.Kind.BOOL
    if isinstance(v, int | float):
        return _NUMERIC
    if isinstance(v, str):
        return pn.Kind.STRING
    return None


class Evaluation:
    def __init__(self, table: pa.Table | pa.RecordBatch) -> None:
        self.table = table
        self.n = table.num_rows
        self._arrays: dict[str, pa.Array] = {}
        self._scalars: dict[str, Vec] = {}
        self._json: dict[str, JsonData] = {}
        self._lists: dict[str, ArrayData] = {}

    # --- columns ---------------------------------------------------------------------

    def array(self, name: str) -> pa.Array:
        arr = self._arrays.get(name)
        if arr is None:
            try:
                col = self.table.column(name)
            except KeyError:
                raise SchemaMismatchError(
                    f"the rows have no column {name!r}, which the filter needs; "
                    "the data does not fit the collection's schema"
                ) from None
            if isinstance(col, pa.ChunkedArray):
                col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            arr = col
            self._arrays[name] = arr
        return arr

    def typed_array(self, name: str, kind: pn.Kind) -> pa.Array:
        """The column, checked to be of an Arrow type that holds `kind` values."""
        arr = self.array(name)
        t = arr.type
        fits = {
            pn.Kind.INT: pa.types.is_integer,
            pn.Kind.FLOAT: lambda x: pa.types.is_floating(x) or pa.types.is_integer(x),
            pn.Kind.BOOL: pa.types.is_boolean,
            pn.Kind.STRING: lambda x: pa.types.is_string(x) or pa.types.is_large_string(x),
            pn.Kind.JSON: lambda x: (
                pa.types.is_string(x)
                or pa.types.is_large_string(x)
                or (pa.types.is_dictionary(x) and pa.types.is_string(x.value_type))
            ),
            pn.Kind.ARRAY: lambda x: pa.types.is_list(x) or pa.types.is_large_list(x),
        }[kind]
        if not fits(t):
            raise SchemaMismatchError(
                f"column {name!r} is Arrow {t}, which cannot hold the {kind.value} values its field declares; "
                "the data does not fit the collection's schema"
            )
        return arr

    def scalar(self, node: pn.ScalarColumn) -> Vec:
        vec = self._scalars.get(node.name)
        if vec is not None:
            return vec
        arr = self.typed_array(node.name, node.kind)
        null: Mask | None = None
        if arr.null_count:
            null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        values: Any
        if node.kind is pn.Kind.STRING:
            values = arr
        else:
            if arr.null_count:
                arr = arr.fill_null(False if node.kind is pn.Kind.BOOL else 0)
            raw = arr.to_numpy(zero_copy_only=False)
            target = {pn.Kind.INT: np.int64, pn.Kind.FLOAT: np.float64, pn.Kind.BOOL: np.bool_}[node.kind]
            values = np.asarray(raw).astype(target, copy=False)
        vec = Vec(node.kind, values, None if null is None else ~null, null)
        self._scalars[node.name] = vec
        return vec

    def json(self, node: pn.JsonValue) -> JsonData:
        data = self._json.get(node.column)
        if data is None:
            data = JsonData(self.typed_array(node.column, pn.Kind.JSON), node.nullable)
            self._json[node.column] = data
        return data

    def list_column(self, node: pn.ArrayColumn) -> ArrayData:
        data = self._lists.get(node.name)
        if data is None:
            data = ArrayData(self.typed_array(node.name, pn.Kind.ARRAY), node.element)
            self._lists[node.name] = data
        return data

    # --- values ------------------------------------------------------------------------

    def value(self, node: pn.Value, want: pn.Kind) -> Vec:
        """The values of `node`; `want` is the class a JSON value is read in."""
        if isinstance(node, pn.Const):
            return Vec(node.kind, node.value)
        if isinstance(node, pn.ScalarColumn):
            return self.scalar(node)
        if isinstance(node, pn.JsonValue):
            return self.json(node).typed(node.path, want)
        if isinstance(node, pn.ArrayElement):
            return self.list_column(node.array).element_at(node.index)
        if isinstance(node, pn.Length):
            c = node.container
            if isinstance(c, pn.ArrayColumn):
                return self.list_column(c).length()
            return self.json(c).length(c.path)
        if isinstance(node, pn.Arith):
            a = self.value(node.left, _NUMERIC)
            b = self.value(node.right, _NUMERIC)
            return vx.arithmetic(node.op, a, b, node.kind, self.n)
        if isinstance(node, pn.Negate):
            return vx.negate(self.value(node.operand, _NUMERIC), node.kind)
        raise TypeError(f"{node!r} is not a scalar value")  # the planner never lets this through

    # --- predicates -------------------------------------------------------------------

    def predicate(self, node: pn.Predicate) -> Tri:
        n = self.n
        if isinstance(node, pn.And):
            acc = self.predicate(node.operands[0])
            for p in node.operands[1:]:
                acc = vx.logical_and(acc, self.predicate(p))
            return acc
        if isinstance(node, pn.Or):
            acc = self.predicate(node.operands[0])
            for p in node.operands[1:]:
                acc = vx.logical_or(acc, self.predicate(p))
            return acc
        if isinstance(node, pn.Not):
            return vx.logical_not(self.predicate(node.operand))
        if isinstance(node, pn.Compare):
            return self._compare(node)
        if isinstance(node, pn.InSet):
            return self._in(node)
        if isinstance(node, pn.Like):
            return vx.like(self.value(node.value, pn.Kind.STRING), node.pattern, n)
        if isinstance(node, pn.IsNull):
            isnull = np.asarray(self.array(node.column).is_null().to_numpy(zero_copy_only=False), dtype=bool)
            return Tri(~isnull if node.negated else isnull)
        if isinstance(node, pn.Exists):
            return Tri(self.json(node.value).exists(node.value.path))
        if isinstance(node, pn.Contains):
            return self._contains(node)
        if isinstance(node, pn.Truth):
            v = self.value(node.value, pn.Kind.BOOL)
            truth = np.broadcast_to(np.asarray(v.values, dtype=bool), (n,))
            truth = truth & v.present if v.present is not None else truth.copy()
            return Tri(truth, v.null)
        if isinstance(node, pn.Constant):
            if node.value is None:
                return Tri(vx.full(n, False), vx.full(n, True))
            return Tri(vx.full(n, node.value))
        raise TypeError(f"{node!r} is not a predicate")

    def _compare(self, node: pn.Compare) -> Tri:
        result: Tri | None = None
        for cls in _classes(node.left.kind, node.right.kind, node.op):
            a = self.value(node.left, cls)
            b = self.value(node.right, cls)
            t = vx.compare(node.op, a, b, self.n)
            result = t if result is None else Tri(result.truth | t.truth, vx.any_of(result.null, t.null))
        assert result is not None
        return result

    def _in(self, node: pn.InSet) -> Tri:
        n = self.n
        if node.value.kind is not pn.Kind.JSON:
            t = vx.is_in(self.value(node.value, node.value.kind), list(node.values), n)
            if not node.negated:
                return t
            vec = self.value(node.value, node.value.kind)
            present = vec.present if vec.present is not None else np.ones(n, dtype=bool)
            return Tri(present & ~t.truth, t.null)
        assert isinstance(node.value, pn.JsonValue)
        groups: dict[pn.Kind, list[Any]] = {_NUMERIC: [], pn.Kind.STRING: [], pn.Kind.BOOL: []}
        for v in node.values:
            cls = _class_of(v)
            if cls is not None:
                groups[cls].append(v)
        hit = np.zeros(n, dtype=bool)
        for cls, values in groups.items():
            if values:
                hit |= vx.is_in(self.value(node.value, cls), values, n).truth
        data = self.json(node.value)
        if not node.negated:
            return Tri(hit, data.null)
        return Tri(data.scalar_present(node.value.path) & ~hit, data.null)

    def _contains(self, node: pn.Contains) -> Tri:
        c = node.container
        if isinstance(c, pn.JsonValue):
            data = self.json(c)
            if not node.values:
                # all of nothing: any array; any of nothing: none
                lengths = data.length(c.path)
                ok = lengths.present if lengths.present is not None else vx.full(self.n, True)
                return Tri(ok.copy() if node.mode == "all" else vx.full(self.n, False), data.null)
            return data.contains(c.path, node.values, node.mode)
        values = list({json_key(v): v for v in node.values}.values())
        return self.list_column(c).contains(values, node.mode)


def evaluate(plan: pn.Predicate, table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """One bool per row: where `plan` is true."""
    truth = Evaluation(table).predicate(plan).truth
    # a fresh, writable array the caller owns (never a view of something cached)
    return np.array(np.broadcast_to(truth, (table.num_rows,)), dtype=bool)
