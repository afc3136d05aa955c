"""Ill-typed expressions fail at compile time with ExpressionError and the 0-based position."""

from __future__ import annotations

from typing import Any

import pytest

from pelagos.errors import ExpressionError, InvalidArgumentError
from pelagos.expr import compile_filter
from pelagos.schema import CollectionSchema
from tests.expr.helpers import product_schema


@pytest.mark.parametrize(
    ("expr", "position", "fragment"),
    [
        # comparing a VARCHAR with a number (position of the operator)
        ("tag > 3", 4, "cannot compare VARCHAR field 'tag' with the integer 3"),
        ("category == 'a'", 9, "cannot compare INT32 field 'category' with the string 'a'"),
        ("price == true", 6, "cannot compare DOUBLE field 'price' with the bool True"),
        ("in_stock < true", 9, "only be compared with == or !="),
        ('meta["a"] < false', 10, "only be compared with == or !="),
        # bad subscripts (position of the bracket)
        ('price["a"] > 1', 5, "DOUBLE field 'price' cannot be indexed"),
        ("tag[0] == 'a'", 3, "VARCHAR field 'tag' cannot be indexed"),
        ('sizes["x"] > 1', 5, "takes an integer index"),
        ("sizes[0][1] > 1", 8, "sizes[0] is a scalar"),
        # like on a number, arithmetic on strings and bools (position of the operator)
        ('category like "1%"', 9, "`like` needs a VARCHAR field or a JSON value, got INT32 field 'category'"),
        ("tag like category", 9, "a `like` pattern must be a string"),
        ("tag + 1 > 2", 4, "arithmetic needs numbers, got VARCHAR field 'tag'"),
        ("price * in_stock > 2", 6, "arithmetic needs numbers, got BOOL field 'in_stock'"),
        ('-tag == "a"', 0, "arithmetic needs numbers"),
        # array functions on non-arrays (position of the argument)
        (
            "array_contains(category, 1)",
            15,
            "needs an ARRAY field or a JSON value, got INT32 field 'category'",
        ),
        ("array_length(tag) == 1", 13, "needs an ARRAY field or a JSON value, got VARCHAR field 'tag'"),
        ('array_contains(sizes, "x")', 22, "'x' does not fit the elements of ARRAY field 'sizes'"),
        ("array_contains_all(sizes, 1)", 26, "needs a list of constants"),
        ('array_contains_any(sizes, [1, "a"])', 30, "list element 'a' does not fit"),
        ("array_contains(sizes)", 0, "takes 2 arguments, got 1"),
        ("array_contains(sizes, category)", 22, "needs a constant value"),
        ("array_length(sizes, 1) > 0", 0, "takes 1 argument, got 2"),
        ("sizes > 1", 0, "cannot be compared as a whole"),
        ("array_contains(sizes, 1) == true", 0, "is a condition, not a value"),
        # in / lists
        ("category in 1", 12, "`in` needs a list of constants"),
        ('category in [1, "a"]', 16, "list element 'a' does not fit INT32 field 'category'"),
        ("category in [1, price]", 16, "list elements must be constants"),
        ("tag in [1]", 8, "list element 1 does not fit VARCHAR field 'tag'"),
        ("[1, 2] == category", 0, "a list cannot be compared"),
        # is null / exists
        ('meta["a"] is null', 0, "applies to a field of the schema; to test a JSON key use `exists`"),
        ("color is null", 0, "applies to a field of the schema"),
        ("exists category", 7, "`exists` needs a JSON key"),
        ("exists meta", 7, "`exists` needs a JSON key"),
        # chains must be ranges in one direction
        ("1 < category > 0", 13, "a chained comparison must be a range"),
        ("1 == category == 1", 14, "a chained comparison must be a range"),
        # conditions vs values
        ("category", 0, "expected a condition, got INT32 field 'category'"),
        ("price + 1", 0, "expected a condition, got a float expression"),
        ("category == 1 and price", 18, "expected a condition, got DOUBLE field 'price'"),
        ("not tag", 4, "expected a condition, got VARCHAR field 'tag'"),
        ("array_length(sizes)", 0, "expected a condition"),
        ("(category > 1) == true", 1, "a condition cannot be used as a value"),
        ("1", 0, "expected a condition, got the integer 1"),
        # names and functions
        ("vec > 1", 0, "vector field 'vec' cannot be used in a filter"),
        ("nosuch(1)", 0, "unknown function 'nosuch'"),
        ("category == 9223372036854775808", 12, "out of the INT64 range"),
        ("category == 9223372036854775807 + 1", 32, "overflows INT64"),
    ],
)
def test_type_errors_have_positions(
    schema: CollectionSchema, expr: str, position: int, fragment: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_filter(expr, schema)
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)
    assert isinstance(info.value, InvalidArgumentError)


def test_int64_minimum_is_a_valid_literal(schema: CollectionSchema) -> None:
    assert compile_filter("category > -9223372036854775808", schema).fields == {"category"}


def test_unknown_field_without_dynamic_field() -> None:
    schema = product_schema(dynamic=False)
    with pytest.raises(ExpressionError) as info:
        compile_filter('price > 1 and color == "red"', schema)
    assert info.value.position == 14
    assert "unknown field 'color'" in str(info.value)
    assert "no dynamic field" in str(info.value)
    with pytest.raises(ExpressionError) as info:
        compile_filter('$meta["color"] == "red"', schema)
    assert info.value.position == 0


def test_unknown_name_with_dynamic_field_is_a_dynamic_key(schema: CollectionSchema) -> None:
    assert compile_filter('colour == "red"', schema).fields == {"$meta"}


@pytest.mark.parametrize(
    ("expr", "params", "position", "fragment"),
    [
        ("price > {p}", {}, 8, "no value for template {p}"),
        ("price > {p}", None, 8, "no value for template {p}"),
        ("price > {p}", {"p": "x"}, 6, "cannot compare DOUBLE field 'price' with the string 'x'"),
        ("price > {p}", {"p": {"a": 1}}, 8, "template {p} is a dict"),
        ("price > {p}", {"p": None}, 8, "template {p} is a NoneType"),
        ("category in {c}", {"c": [1, "x"]}, 12, "list element 'x' does not fit"),
        ("category in {c}", {"c": 1}, 12, "`in` needs a list of constants"),
        ("category == {c}", {"c": 2**64}, 12, "out of the INT64 range"),
        ("category in {c}", {"c": [2**64]}, 12, "out of the INT64 range"),
        ("tag like {p}", {"p": 1}, 9, "a `like` pattern must be a string"),
    ],
)
def test_template_errors(
    schema: CollectionSchema, expr: str, params: dict[str, Any] | None, position: int, fragment: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_filter(expr, schema, params)
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)


def test_error_message_names_the_expression(schema: CollectionSchema) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_filter("tag > 3", schema)
    assert info.value.expression == "tag > 3"
    assert str(info.value).endswith("at position 4 in expression 'tag > 3'")
