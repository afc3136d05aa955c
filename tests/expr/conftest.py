"""Fixtures of the expr tests: the product schema and its rows (see helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pytest

from pelagos.expr import compile_filter
from pelagos.schema import CollectionSchema
from tests.expr.helpers import PRODUCT_ROWS, product_schema, rows_to_table


@pytest.fixture(scope="module")
def schema() -> CollectionSchema:
    return product_schema()


@pytest.fixture(scope="module")
def table(schema: CollectionSchema) -> pa.Table:
    return rows_to_table(schema, PRODUCT_ROWS)


@pytest.fixture(scope="module")
def ids(schema: CollectionSchema, table: pa.Table) -> Callable[..., list[int]]:
    """`ids(expr, params)`: the ids of the product rows the expression matches."""

    def run(expr: str, params: Mapping[str, Any] | None = None) -> list[int]:
        mask = compile_filter(expr, schema, params).evaluate(table)
        assert mask.dtype == bool and mask.shape == (table.num_rows,)
        return [int(i) for i in table.column("id").to_numpy()[mask]]

    return run
