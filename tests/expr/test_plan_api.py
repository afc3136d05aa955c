"""FilterPlan beyond evaluate: fields, pk lookups, pruning, always-true, the plan cache."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from pelagos.errors import SchemaMismatchError
from pelagos.expr import FieldStats, compile_filter
from pelagos.schema import CollectionSchema, DataType, FieldSchema
from tests.expr.helpers import product_schema


@pytest.mark.parametrize(
    ("expr", "fields"),
    [
        ("", set()),
        ("price > 1", {"price"}),
        ('category == 3 and (tag like "a%" or not in_stock)', {"category", "tag", "in_stock"}),
        ('meta["a"]["b"] > 1', {"meta"}),
        ("color == 1 or exists size", {"$meta"}),
        ("array_contains(sizes, 1) and labels[0] == 'x'", {"sizes", "labels"}),
        ("array_length(sizes) > rating", {"sizes", "rating"}),
        ("rating is null", {"rating"}),
        ("price is null", set()),  # not nullable: folds to false
        ("price / 2 + weight ** 2 > -category", {"price", "weight", "category"}),
        ('json_contains(extra["q"], 1)', {"extra"}),
    ],
)
def test_fields(schema: CollectionSchema, expr: str, fields: set[str]) -> None:
    assert compile_filter(expr, schema).fields == fields


@pytest.mark.parametrize(
    ("expr", "params", "lookup"),
    [
        ("id == 3", None, [3]),
        ("3 == id", None, [3]),
        ("id in [4, 1, 4]", None, [4, 1]),
        ("id in []", None, []),
        ("id == 1 or id in [2, 5] or id == 1", None, [1, 2, 5]),
        ("id in {ids}", {"ids": [7, 8]}, [7, 8]),
        ("id == 2.0", None, [2]),
        ("id == 2.5", None, []),
        ("id in [1, 2.5]", None, [1]),
        ("false", None, []),
        ("id > 3", None, None),
        ("id != 3", None, None),
        ("id not in [1]", None, None),
        ("id == 1 and price > 2", None, None),
        ("id == 1 or price > 2", None, None),
        ("category == 3", None, None),
        ("", None, None),
        ("id + 0 == 1", None, None),
    ],
)
def test_primary_key_lookup(
    schema: CollectionSchema, expr: str, params: dict[str, Any] | None, lookup: list[Any] | None
) -> None:
    assert compile_filter(expr, schema, params).primary_key_lookup == lookup


def test_primary_key_lookup_on_varchar_keys() -> None:
    schema = CollectionSchema(
        [FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=8), FieldSchema("x", DataType.INT64)]
    )
    assert compile_filter('pk in ["a", "b"] or pk == "c"', schema).primary_key_lookup == ["a", "b", "c"]
    assert compile_filter('pk == "a" and x > 1', schema).primary_key_lookup is None
    plan = compile_filter('pk == "a"', schema)
    lookup = plan.primary_key_lookup
    assert lookup is not None
    lookup.append("mutated")
    assert plan.primary_key_lookup == ["a"]


@pytest.mark.parametrize(
    ("expr", "always"),
    [
        ("", True),
        (" ", True),
        ("true", True),
        ("1 < 2", True),
        ("not false", True),
        ("price > 1 or true", True),
        ("false", False),
        ("price > 1", False),
        ("price is not null", True),
        ("1 / 0 > 1", False),
        ("not (1 / 0 > 1)", False),  # unknown stays unknown
    ],
)
def test_is_always_true(schema: CollectionSchema, expr: str, always: bool) -> None:
    assert compile_filter(expr, schema).is_always_true is always


STATS = {
    "price": FieldStats(min=10.0, max=20.0, null_count=0, row_count=100),
    "category": FieldStats(min=3, max=3, null_count=0, row_count=100),
    "tag": FieldStats(min="b", max="d", null_count=0, row_count=100),
    "rating": FieldStats(min=None, max=None, null_count=100, row_count=100),
    "in_stock": FieldStats(min=False, max=True, null_count=0, row_count=100),
    "id": FieldStats(min=1, max=100, null_count=0, row_count=100),
}


@pytest.mark.parametrize(
    ("expr", "may"),
    [
        ("price > 25", False),
        ("price > 15", True),
        ("price >= 20", True),
        ("price > 20", False),
        ("price < 10", False),
        ("price <= 10", True),
        ("price == 9.5", False),
        ("price == 15", True),
        ("price != 15", True),
        ("category == 3", True),
        ("category == 4", False),
        ("category != 3", False),
        ("not (category == 3)", False),
        ("not (category != 3)", True),
        ("category in [1, 2]", False),
        ("category in [1, 3]", True),
        ("category not in [3]", False),
        ("category not in [3, 4]", False),
        ("category not in [4]", True),
        ("not (category in [3])", False),
        ("1 < category < 3", False),
        ("3 <= category <= 3", True),
        ("5 > price", False),
        ('tag == "a"', False),
        ('tag >= "c"', True),
        ('tag > "d"', False),
        ('tag in ["a", "e"]', False),
        ("rating > 0", False),
        ("rating != 0", False),
        ("rating is null", True),
        ("rating is not null", False),
        ("not (rating is null)", False),
        ("price is not null", True),
        ("price > 25 or category == 3", True),
        ("price > 25 or category == 4", False),
        ("price > 25 and category == 3", False),
        ("not (price > 25 or category == 4)", True),
        ("not (price <= 25 and category == 3)", True),  # a NaN price would match
        ("not (category <= 25 and id >= 1)", False),
        ("not (price <= 25 or category == 3)", False),
        ("not (price > 15)", True),  # float column: NaN could satisfy a negated comparison
        ("price != 10", True),
        ("id in [500, 600]", False),
        ("id == 50", True),
        ("in_stock == true", True),
        ("weight > 1000", True),  # no stats: unsure
        ('meta["a"] > 1000', True),
        ("array_contains(sizes, 1)", True),
        ("price * 2 > 1000", True),
        ("false", False),
        ("true", True),
        ("1 / 0 > 1", False),
        ("not (1 / 0 > 1)", False),
    ],
)
def test_may_match(schema: CollectionSchema, expr: str, may: bool) -> None:
    assert compile_filter(expr, schema).may_match(STATS) is may


def test_may_match_without_stats_or_with_empty_segments(schema: CollectionSchema) -> None:
    plan = compile_filter("price > 25", schema)
    assert plan.may_match({}) is True
    assert plan.may_match({"price": FieldStats(None, None, 0, 10)}) is True
    assert plan.may_match({"price": FieldStats(float("nan"), 3.0, 0, 10)}) is True
    assert plan.may_match({"price": FieldStats(None, None, 0, 0)}) is False
    assert plan.may_match({"price": FieldStats("a", "b", 0, 10)}) is True  # stats of another type: unsure


def test_plans_are_cached_by_text_schema_and_params(schema: CollectionSchema) -> None:
    a = compile_filter("price > {p}", schema, {"p": 1})
    assert compile_filter("price > {p}", schema, {"p": 1}) is a
    assert compile_filter("price > {p}", product_schema(), {"p": 1}) is a  # an equal schema
    assert compile_filter("price > {p}", schema, {"p": 2}) is not a
    assert compile_filter("price > {p}", schema, {"p": 1.0}) is not a
    other = product_schema()
    other.fields[1] = FieldSchema("price", DataType.VARCHAR, max_length=8)
    with pytest.raises(Exception, match="cannot compare VARCHAR"):
        compile_filter("price > {p}", other, {"p": 1})


def test_unhashable_params_still_compile(schema: CollectionSchema, table: pa.Table) -> None:
    class Weird(list[int]):
        __hash__ = None  # type: ignore[assignment,unused-ignore]

    plan = compile_filter("category in {c}", schema, {"c": Weird([3])})
    assert plan.evaluate(table).tolist() == [False, True, True, False]


def test_evaluate_record_batch_and_empty_table(schema: CollectionSchema, table: pa.Table) -> None:
    plan = compile_filter('category == 3 and json_contains(meta["tags"], "z") and sizes[0] > 0', schema)
    assert plan.evaluate(table.to_batches()[0]).tolist() == plan.evaluate(table).tolist()
    empty = table.slice(0, 0)
    out = plan.evaluate(empty)
    assert out.dtype == bool and out.shape == (0,)


def test_result_is_a_fresh_writable_array(schema: CollectionSchema, table: pa.Table) -> None:
    for expr in ["in_stock", "", "rating is null", "exists color", "price > 1"]:
        plan = compile_filter(expr, schema)
        first = plan.evaluate(table)
        first[:] = False
        second = plan.evaluate(table)
        assert isinstance(second, np.ndarray) and second.flags.writeable
        assert second.any(), expr


def test_missing_column_is_a_schema_mismatch(schema: CollectionSchema, table: pa.Table) -> None:
    plan = compile_filter("price > 1", schema)
    with pytest.raises(SchemaMismatchError, match="'price'"):
        plan.evaluate(table.drop_columns(["price"]))


def test_only_the_referenced_columns_are_needed(schema: CollectionSchema, table: pa.Table) -> None:
    plan = compile_filter('category == 3 and color == "blue"', schema)
    narrow = table.select(sorted(plan.fields))
    assert plan.evaluate(narrow).tolist() == [False, True, False, False]


@pytest.mark.parametrize(
    ("column", "wrong", "expr"),
    [
        ("price", pa.array(["1", "2", "3", "4"]), "price > 1"),
        ("tag", pa.array([1, 2, 3, 4]), 'tag == "a"'),
        ("meta", pa.array([1, 2, 3, 4]), 'meta["a"] == 1'),
        ("sizes", pa.array([1, 2, 3, 4]), "array_contains(sizes, 1)"),
        ("in_stock", pa.array([1, 0, 1, 0]), "in_stock"),
    ],
)
def test_a_column_of_the_wrong_type_is_a_schema_mismatch(
    schema: CollectionSchema, table: pa.Table, column: str, wrong: pa.Array, expr: str
) -> None:
    i = table.schema.get_field_index(column)
    bad = table.set_column(i, pa.field(column, wrong.type), wrong)
    with pytest.raises(SchemaMismatchError, match=repr(column)):
        compile_filter(expr, schema).evaluate(bad)


def test_thousands_of_or_ed_terms(schema: CollectionSchema, table: pa.Table) -> None:
    plan = compile_filter(" or ".join(f"id == {i}" for i in range(3000)), schema)
    assert plan.primary_key_lookup == list(range(3000))
    assert plan.evaluate(table).tolist() == [True, True, True, True]
    plan = compile_filter(" and ".join(f'(price > {i - 5} or tag == "abc")' for i in range(3000)), schema)
    assert plan.evaluate(table).tolist() == [True, False, False, False]


def test_absurd_nesting_is_an_expression_error(schema: CollectionSchema, table: pa.Table) -> None:
    from pelagos.errors import ExpressionError

    deep_parens = compile_filter("(" * 5000 + "price > 1" + ")" * 5000, schema)  # parentheses add no depth
    assert deep_parens.evaluate(table).tolist() == [True, True, True, False]
    with pytest.raises(ExpressionError, match="nests too deeply"):
        compile_filter("not " * 5000 + "price > 1", schema)
