"""ARRAY field columns (Arrow list arrays) for the evaluator: element access, length, contains.

Invariants:
- works on the list array's offsets and its child values directly, so a
  sliced array and null list entries (whatever their offsets) are handled
  without per-row Python;
- `arr[i]` beyond the end (or on an empty array) has no value (missing: a
  comparison on it is false); a null array is SQL-null for everything;
- contains: the child values are compared once as a whole, then a running
  count of hits read at the offsets tells which rows hold one;
- null elements inside an array equal nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.expr.plan_nodes import Kind
from pelagos.expr.vectors import Mask, Tri, Vec, bool_array, isin_numbers


class ArrayData:
    """One list column, taken apart into offsets, lengths and child values."""

    def __init__(self, column: pa.Array, element: Kind) -> None:
        self.n = len(column)
        self.element = element
        self.offsets: np.ndarray = np.asarray(column.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        self.null: Mask | None = (
            np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            if column.null_count
            else None
        )
        lengths = np.diff(self.offsets)
        if self.null is not None:
            lengths = np.where(self.null, 0, lengths)
        self.lengths = lengths
        self.child: pa.Array = column.values
        self._child_np: np.ndarray | None = None
        self._child_valid: Mask | None = (
            np.asarray(self.child.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            if self.child.null_count
            else None
        )

    def child_numpy(self) -> np.ndarray:
        """The child values as int64 / float64 / bool numpy (nulls as 0 / False)."""
        if self._child_np is None:
            child = self.child
            if self.element is Kind.STRING:
                raise TypeError("string elements stay in Arrow")
            if child.null_count:
                child = child.fill_null(False if self.element is Kind.BOOL else 0)
            arr = np.asarray(child.to_numpy(zero_copy_only=False))
            if self.element is Kind.INT:
                arr = arr.astype(np.int64, copy=False)
            elif self.element is Kind.FLOAT:
                arr = arr.astype(np.float64, copy=False)
            self._child_np = arr
        return self._child_np

    def element_at(self, index: int) -> Vec:
        ok = self.lengths > index
        pos = np.where(ok, self.offsets[:-1] + index, 0)
        if len(self.child) == 0:
            ok = np.zeros(self.n, dtype=bool)
        if self._child_valid is not None:
            ok &= self._child_valid[pos]
        values: Any
        if self.element is Kind.STRING:
            values = (
                self.child.take(pa.array(pos)) if len(self.child) else pa.array([""] * self.n, pa.string())
            )
        else:
            child = self.child_numpy()
            values = child[pos] if len(child) else np.zeros(self.n, dtype=child.dtype)
        return Vec(self.element, values, ok, self.null)

    def length(self) -> Vec:
        present = None if self.null is None else ~self.null
        return Vec(Kind.INT, self.lengths.astype(np.int64, copy=False), present, self.null)

    def _rows_with(self, element_hit: Mask) -> Mask:
        """Rows whose array has at least one element where `element_hit` (over the whole child) is set."""
        if self.n == 0:
            return np.zeros(0, dtype=bool)
        # hits before each offset, by a running count: a row has a hit when the count grows within it
        running = np.zeros(len(element_hit) + 1, dtype=np.int32 if len(element_hit) < 2**31 else np.int64)
        np.cumsum(element_hit, out=running[1:])
        out: Mask = running[self.offsets[1:]] > running[self.offsets[:-1]]
        if self.null is not None:
            out &= ~self.null
        return out

    def _element_equal(self, value: Any) -> Mask:
        if self.element is Kind.STRING:
            hit = bool_array(pc.equal(self.child, value))
        else:
            hit = np.asarray(self.child_numpy() == value, dtype=bool)
        if self._child_valid is not None:
            hit &= self._child_valid
        return hit

    def _element_in(self, values: list[Any]) -> Mask:
        if self.element is Kind.STRING:
            hit = bool_array(pc.is_in(self.child, value_set=pa.array(values, pa.string())))
        else:
            hit = isin_numbers(self.child_numpy(), values)
        if self._child_valid is not None:
            hit &= self._child_valid
        return hit

    def contains(self, values: list[Any], mode: str) -> Tri:
        """`mode` "one"/"all"/"any" over `values`, already of the element's class."""
        if mode == "all":
            truth = np.ones(self.n, dtype=bool) if self.null is None else ~self.null
            for v in dict.fromkeys(values):
                truth &= self._rows_with(self._element_equal(v))
        elif not values:
            truth = np.zeros(self.n, dtype=bool)
        elif mode == "one" or len(values) == 1:
            truth = self._rows_with(self._element_equal(values[0]))
        else:
            truth = self._rows_with(self._element_in(values))
        return Tri(truth, self.null)
