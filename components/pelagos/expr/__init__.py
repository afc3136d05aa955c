"""Filter expressions (Milvus's dialect): grammar, planner, vectorised evaluator.

The whole public API:

    plan = compile_filter('category == 3 and price > {p}', schema, {"p": 10})
    plan.fields                  # frozenset of column names the filter reads
    plan.evaluate(table)         # numpy bool array, one per row (Arrow Table/RecordBatch)
    plan.may_match(stats)        # segment pruning with {field: FieldStats(min, max, null_count, row_count)}
    plan.primary_key_lookup      # [pk values] for `pk in [...]` / `pk == v` (OR-ed), else None
    plan.is_always_true

Errors: `pelagos.errors.ExpressionError` with `.position` (0-based), raised
by `compile_filter`, never by `evaluate`.

Inside: `parser` (lark LALR grammar -> `syntax_tree`), `planner` (names and
types against the schema -> `plan_nodes`), `evaluator` (numpy /
pyarrow.compute over whole columns; `json_columns`, `array_columns`,
`vectors`, `like`), `analysis` (fields, pruning, pk lookups), `compile`
(the LRU plan cache).
"""

from pelagos.expr.compile import clear_plan_cache, compile_filter
from pelagos.expr.filter_plan import FilterPlan
from pelagos.expr.stats import FieldStats

__all__ = ["FieldStats", "FilterPlan", "clear_plan_cache", "compile_filter"]
