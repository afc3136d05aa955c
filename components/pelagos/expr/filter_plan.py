"""`FilterPlan`: a compiled filter expression, ready to evaluate, prune and look up by key.

Invariants:
- immutable once built and holds no data, so one plan is cached and
  shared by every caller and thread;
- `evaluate` returns one bool per row (True = the row matches); it never
  raises on type grounds (the planner rejected ill-typed expressions);
- `fields` names every column `evaluate` reads (schema fields, `$meta`),
  so callers can read only those;
- `may_match` is conservative (False only when no row can match);
- `primary_key_lookup` is not None exactly when the expression is
  `pk == v` / `pk in [...]` / an OR of those (or folds to false: `[]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from pelagos.expr import plan_nodes as pn
from pelagos.expr.analysis import may_match, primary_key_values, referenced_fields
from pelagos.expr.evaluator import evaluate
from pelagos.expr.stats import FieldStats


class FilterPlan:
    __slots__ = ("_pk_values", "_root", "expression", "fields")

    def __init__(
        self, expression: str, root: pn.Predicate, pk_name: str | None, pk_kind: pn.Kind | None
    ) -> None:
        self.expression = expression
        self._root = root
        #: names of the columns `evaluate` reads
        self.fields: frozenset[str] = referenced_fields(root)
        pk = primary_key_values(root, pk_name, pk_kind)
        self._pk_values: tuple[Any, ...] | None = None if pk is None else tuple(pk)

    @property
    def root(self) -> pn.Predicate:
        """The typed predicate tree (see `pelagos.expr.plan_nodes`)."""
        return self._root

    @property
    def is_always_true(self) -> bool:
        """True when the expression matches every row whatever the data (e.g. empty, `true`, `1 < 2`)."""
        return isinstance(self._root, pn.Constant) and self._root.value is True

    @property
    def primary_key_lookup(self) -> list[Any] | None:
        """The primary keys selected when the expression is a pure pk equality / `in` (possibly OR-ed)."""
        return None if self._pk_values is None else list(self._pk_values)

    def evaluate(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """One bool per row of `table`: where the filter holds. Columns are named after fields."""
        return evaluate(self._root, table)

    def may_match(self, stats: Mapping[str, FieldStats]) -> bool:
        """Whether a segment with these per-field stats may hold a matching row (True when unsure)."""
        for name in self.fields:
            s = stats.get(name)
            if s is not None and s.row_count == 0:
                return False
        return may_match(self._root, stats)

    def __repr__(self) -> str:
        return f"FilterPlan({self.expression!r})"
