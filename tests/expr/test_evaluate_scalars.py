"""Evaluation over scalar fields: comparisons, ranges, in, like, arithmetic, logic, nulls, templates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

Ids = Callable[..., list[int]]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("price > 10", [2, 3]),
        ("price >= 20", [3]),
        ("price < 0", [4]),
        ("price <= 5", [1, 4]),
        ("category == 3", [2, 3]),
        ("category != 3", [1, 4]),
        ("10 < price", [2, 3]),
        # integer and float mix
        ("category > 2.5", [2, 3, 4]),
        ("price == 5", [1]),
        ("weight == 0.5", [1]),
        ("weight > 1", [2, 3]),
        ("price > category", [1, 2, 3]),
        # strings compare by code point
        ('tag == "abc"', [1]),
        ("tag == 'g042'", [3]),
        ('tag != "abc"', [2, 3, 4]),
        ('tag < "b"', [1, 4]),
        ('tag >= "g"', [2, 3]),
        ("tag == tag", [1, 2, 3, 4]),
        # bools
        ("in_stock == true", [1, 3]),
        ("in_stock != True", [2, 4]),
        ("in_stock == FALSE", [2, 4]),
        ("in_stock", [1, 3]),
        ("not in_stock", [2, 4]),
    ],
)
def test_comparisons(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 < category <= 3", [2, 3]),
        ("1 <= category < 3", [1]),
        ("5 > category >= 3", [2, 3, 4]),
        ("4 >= category > 1", [2, 3, 4]),
        ("0 <= price < 15.5", [1]),
        ("-5 < price + 1 < 7", [1, 4]),
        ('"a" <= tag < "h"', [1, 3]),
    ],
)
def test_ranges(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("category in [1, 4]", [1, 4]),
        ("category IN [1, 4]", [1, 4]),
        ("category not in [1, 4]", [2, 3]),
        ("category in []", []),
        ("category not in []", [1, 2, 3, 4]),
        ('tag in ["abc", "g042"]', [1, 3]),
        ('tag not in ["abc", "g042"]', [2, 4]),
        ("price in [5, 20.0]", [1, 3]),
        ("category in [3.0]", [2, 3]),
        ("in_stock in [false]", [2, 4]),
        ("category + 1 in [2, 5]", [1, 4]),
    ],
)
def test_in(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('tag like "abc%"', [1]),
        ('tag like "%abc"', [1]),
        ('tag like "%abc%"', [1, 2]),
        ('tag like "abc"', [1]),
        ('tag LIKE "%"', [1, 2, 3, 4]),
        ('tag like "g0_2"', [3]),
        ('tag like "_abc_"', [2]),
        ('tag like "50%off"', [4]),
        (r'tag like "%\%%"', [4]),
        (r'tag like "50\%\_off"', [4]),
        (r'tag like "5_\%%"', [4]),
        (r'tag like "x\%%"', []),
        ('tag like "%b%c%"', [1, 2]),
    ],
)
def test_like(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("category % 2 == 1", [1, 2, 3]),
        ("category % 2 == 0", [4]),
        ("price + 2 > category * 3", [1, 2, 3]),
        ("price * 2 == 10", [1]),
        ("price - 1 >= 4", [1, 2, 3]),
        ("-price > 0", [4]),
        ("+price > 19", [3]),
        ("category ** 2 == 16", [4]),
        ("2 ** category == 8", [2, 3]),
        ("price / 2 == 2.5", [1]),
        # INT / INT truncates toward zero and % takes the dividend's sign (as Milvus does)
        ("category / 2 == 1", [2, 3]),
        ("rating / 2 == -1", [3]),
        ("rating % 4 == -3", [3]),
        ("weight * 4 == 2", [1]),
        ("(price + 1) * 2 > 40", [3]),
        ("price > 2 * 5 + 0.5", [2, 3]),
    ],
)
def test_arithmetic(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("price / 0 > 1", []),
        ("not (price / 0 > 1)", []),
        ("category % 0 == 0", []),
        ("category / 0 == 0", []),
        ("price / (category - 3) < 0", [1, 4]),
        ("not (price / (category - 3) > 0)", [1, 4]),
        ("price > 1 / 0", []),
        ("not (price > 1 / 0)", []),
        ("price > 1 / 0 or category == 1", [1]),
        ("0 ** -1 < price", []),
    ],
)
def test_division_by_zero_matches_nothing(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("category == 3 and price > 16", [3]),
        ("category == 1 or price > 16", [1, 3]),
        ("not (category == 3)", [1, 4]),
        ("!(category == 3) && price > 0", [1]),
        ("category == 1 || category == 4", [1, 4]),
        ("(category == 1 or category == 3) and not in_stock", [2]),
        ("NOT (category == 3) OR tag == 'g042'", [1, 3, 4]),
        ("not not (category == 3)", [2, 3]),
        ("category == 1 and true", [1]),
        ("category == 1 or false", [1]),
        ("in_stock and price > 10", [3]),
    ],
)
def test_logic(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rating is null", [1]),
        ("rating IS NULL", [1]),
        ("rating is not null", [2, 3, 4]),
        ("rating IS NOT NULL", [2, 3, 4]),
        ("price is null", []),
        ("price is not null", [1, 2, 3, 4]),
        # nulls never match a comparison, nor its negation (SQL three-valued logic)
        ("rating != 5", [2, 3, 4]),
        ("rating > -10", [2, 3, 4]),
        ("not (rating > 0)", [3, 4]),
        ("rating > 0 or price > 0", [1, 2, 3]),
        ("rating > 0 and price > 0", [2]),
        ("not (rating > 0 and price > 100)", [1, 2, 3, 4]),
        ("not (rating > 0 or price > 100)", [3, 4]),
        ("rating in [7, 0]", [2, 4]),
        ("rating not in [7]", [3, 4]),
        ("rating + 1 > 0", [2, 4]),
        ("rating == rating", [2, 3, 4]),
        ("extra is null", [1]),
        ("extra is not null", [2, 3, 4]),
        ("labels is null", [2]),
    ],
)
def test_nulls(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "params", "expected"),
    [
        ("price > {p}", {"p": 10}, [2, 3]),
        ("price > {p}", {"p": 4.5}, [1, 2, 3]),
        ("category == {c}", {"c": np.int64(3)}, [2, 3]),
        ("price < {p}", {"p": np.float32(0.0)}, [4]),
        ("tag in {tags}", {"tags": ["abc", "g042"]}, [1, 3]),
        ("id in {ids}", {"ids": (2, 4)}, [2, 4]),
        ("category == {c} and in_stock == {b}", {"c": 3, "b": True}, [3]),
        ("tag like {pat}", {"pat": "%abc%"}, [1, 2]),
        ("category in [{a}, {b}]", {"a": 1, "b": 4}, [1, 4]),
        ('meta["n"] == {v}', {"v": 1}, [1]),
        ('meta["n"] == {v}', {"v": True}, [4]),
        ("{lo} < price <= {hi}", {"lo": 0, "hi": 15.5}, [1, 2]),
    ],
)
def test_templates(ids: Ids, expr: str, params: dict[str, Any], expected: list[int]) -> None:
    assert ids(expr, params) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("", [1, 2, 3, 4]),
        ("   ", [1, 2, 3, 4]),
        ("true", [1, 2, 3, 4]),
        ("TRUE", [1, 2, 3, 4]),
        ("false", []),
        ("1 < 2", [1, 2, 3, 4]),
        ("1 > 2", []),
        ("not (1 > 2)", [1, 2, 3, 4]),
        ('"a" like "a%"', [1, 2, 3, 4]),
        ("3 in [1, 2]", []),
    ],
)
def test_constant_expressions(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected
