"""Evaluation over JSON fields, the dynamic field and ARRAY fields."""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow as pa
import pytest

from pelagos.expr import compile_filter
from pelagos.schema import CollectionSchema, DataType, FieldSchema

Ids = Callable[..., list[int]]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('meta["a"]["b"] > 3', [1, 4]),
        ('meta["a"]["b"] == "4"', [2]),
        ('meta["a"] == 1', [3]),
        ('meta["a"] > 0', [3]),
        # numbers never equal bools; values of another kind simply don't match
        ('meta["n"] == 1', [1]),
        ('meta["n"] == 1.0', [1]),
        ('meta["n"] == true', [4]),
        ('meta["n"] > 2', [2]),
        ('meta["n"] == "2"', [3]),
        ('meta["n"] != 1', [2]),
        ('not (meta["n"] == 1)', [2, 3, 4]),
        ('meta["n"] in [1, "2"]', [1, 3]),
        ('meta["n"] not in [1, "2"]', [2, 4]),
        ('meta["n"] like "2%"', [3]),
        ('meta["flag"]', [1]),
        ('not meta["flag"]', [2, 3, 4]),
        ('meta["flag"] == false', [2]),
        ('meta["tags"][0] == "x"', [1]),
        ('meta["tags"][2] == "x"', [4]),
        ('meta["tags"][5] == "x"', []),
        ('meta["missing"] > 0', []),
        ('not (meta["missing"] > 0)', [1, 2, 3, 4]),
        ('meta["a"]["b"] + 1 > 4.5', [1, 4]),
        ('meta["n"] * 2 == 5', [2]),
        ('-meta["a"]["b"] < -5', [4]),
        ('meta["a"]["b"] > category', [1, 4]),
        ('meta["n"] == size', [1]),
        ('meta["tags"] == "x"', [3]),
    ],
)
def test_json_paths(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('color == "red"', [1]),
        ("color == 5", [4]),
        ('color like "b%"', [2]),
        ('$meta["color"] == "blue"', [2]),
        ("size + 1 == 4", [2]),
        ("size in [1, 3]", [1, 2]),
        ("exists color", [1, 2, 4]),
        ('exists $meta["size"]', [1, 2]),
        ("not exists color", [3]),
    ],
)
def test_dynamic_field(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('exists meta["a"]["b"]', [1, 2, 4]),
        ('exists meta["tags"][2]', [4]),
        ('exists extra["q"]', [2, 3, 4]),  # a key holding JSON null exists; a null field has no keys
        ('extra["q"] == 1', [2]),
        ('not (extra["q"] == 1)', [3, 4]),  # null field: unknown; null / missing key: false
    ],
)
def test_exists_and_nullable_json(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('json_contains(meta["tags"], "x")', [1, 4]),
        ('json_contains(meta["tags"], 1)', [4]),
        ('json_contains(meta["tags"], 1.0)', [4]),
        ('json_contains(meta["tags"], true)', []),
        ('JSON_CONTAINS(meta["tags"], "z")', [2]),
        ('json_contains_all(meta["tags"], ["x", "y"])', [1]),
        ('json_contains_all(meta["tags"], ["x", 2])', [4]),
        ('json_contains_any(meta["tags"], ["y", 2])', [1, 4]),
        ('json_contains_any(meta["tags"], [])', []),
        ('json_contains_all(meta["tags"], [])', [1, 2, 4]),
        ('array_contains(meta["tags"], "z")', [2]),
        ('array_length(meta["tags"]) == 3', [4]),
        ('array_length(meta["tags"]) >= 1', [1, 2, 4]),
        ('not json_contains(meta["tags"], "x")', [2, 3]),
    ],
)
def test_json_contains(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("array_contains(sizes, 4)", [4]),
        ("ARRAY_CONTAINS(sizes, 9)", [3]),
        ("array_contains(sizes, 2.0)", [1]),
        ("array_contains(sizes, 2.5)", []),
        ("array_contains_all(sizes, [4, 5])", [4]),
        ("array_contains_all(sizes, [4, 4])", [4]),
        ("array_contains_all(sizes, [1, 9])", []),
        ("array_contains_any(sizes, [1, 9])", [1, 3]),
        ("array_contains_any(sizes, [])", []),
        ("array_contains_all(sizes, [])", [1, 2, 3, 4]),
        ("json_contains(sizes, 3)", [1]),
        ("array_length(sizes) == 0", [2]),
        ("array_length(sizes) > 2", [1, 4]),
        ("array_length(labels) == 0", [3]),
        ("not (array_length(labels) == 0)", [1, 4]),
        ("sizes[0] > 3", [3, 4]),
        ("sizes[3] == 6", [4]),
        ("sizes[10] == 1", []),
        ("not (sizes[1] == 2)", [2, 3, 4]),
        ("sizes[0] + sizes[1] == 3", [1]),
        ('labels[0] == "red"', [1]),
        ('labels[0] like "b%"', [4]),
        ('array_contains(labels, "red")', [1]),
        ('not array_contains(labels, "red")', [3, 4]),
        ('array_contains_any(labels, ["big", "blue"])', [1, 4]),
    ],
)
def test_arrays(ids: Ids, expr: str, expected: list[int]) -> None:
    assert ids(expr) == expected


ARRAY_AND_JSON_EXPRESSIONS = [
    "array_contains(sizes, 4) or sizes[0] == 9",
    "array_contains_any(sizes, [2, 5])",
    "array_length(labels) >= 1",
    'labels[1] == "big"',
    'json_contains(meta["tags"], "x") and exists color',
    'meta["a"]["b"] > 3 or rating is null',
]


@pytest.mark.parametrize("expr", ARRAY_AND_JSON_EXPRESSIONS)
def test_sliced_and_chunked_tables_give_the_same_rows(
    schema: CollectionSchema, table: pa.Table, expr: str
) -> None:
    plan = compile_filter(expr, schema)
    whole = plan.evaluate(table)
    sliced = table.slice(1, 3)
    assert plan.evaluate(sliced).tolist() == whole[1:4].tolist()
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 2), table.slice(3)])
    assert chunked.column("sizes").num_chunks == 3
    assert plan.evaluate(chunked).tolist() == whole.tolist()
    for batch_start, batch in zip([0, 1, 3], chunked.to_batches(), strict=True):
        assert plan.evaluate(batch).tolist() == whole[batch_start : batch_start + batch.num_rows].tolist()


def test_dictionary_encoded_repeated_json(schema: CollectionSchema, table: pa.Table) -> None:
    """Many rows sharing few JSON texts: each text is parsed once, results per row still right."""
    repeated = pa.concat_tables([table] * 50).combine_chunks()
    plan = compile_filter('json_contains(meta["tags"], "x") and meta["a"]["b"] > 3', schema)
    assert plan.evaluate(repeated).tolist() == [True, False, False, True] * 50


def test_invalid_json_text_reads_as_empty_document(schema: CollectionSchema, table: pa.Table) -> None:
    broken = table.set_column(
        table.schema.get_field_index("meta"),
        table.schema.field("meta"),
        pa.array(['{"n": 1}', "{not json", '{"n": 1}', "[1,"], pa.string()),
    )
    assert compile_filter('meta["n"] == 1', schema).evaluate(broken).tolist() == [True, False, True, False]
    assert compile_filter('not exists meta["n"]', schema).evaluate(broken).tolist() == [
        False,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize("distinct", [True, False])
def test_large_json_columns_unique_or_repeating_texts(distinct: bool) -> None:
    """Past the sampling threshold both reading strategies (per row, per distinct text) agree with Python."""
    schema = CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("doc", DataType.JSON, nullable=True),
        ],
        enable_dynamic_field=True,
    )
    n = 3000
    docs: list[dict[str, int] | None] = [
        None if i % 7 == 0 else {"n": i if distinct else i % 5, "odd": i % 2} for i in range(n)
    ]
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "doc": pa.array([None if d is None else json.dumps(d) for d in docs], pa.string()),
            "$meta": pa.array(
                [None if i % 3 == 0 else json.dumps({"k": i % 4}) for i in range(n)], pa.string()
            ),
        }
    )
    plan = compile_filter('not (doc["n"] > 2) and not (k == 1)', schema)
    expected = [
        d is not None and not d["n"] > 2 and not (i % 3 != 0 and i % 4 == 1) for i, d in enumerate(docs)
    ]
    assert plan.evaluate(table).tolist() == expected
    exists = compile_filter('exists doc["odd"] or exists k', schema).evaluate(table).tolist()
    assert exists == [d is not None or i % 3 != 0 for i, d in enumerate(docs)]
