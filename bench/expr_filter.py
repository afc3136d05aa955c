"""Filter expressions: latency of `FilterPlan.evaluate` (query-by-filter style) and of compiling.

A table of `--rows` rows (int64 pk, int32 category, double price, varchar
tag with 1,000 distinct values, int64 array `sizes`, and two JSON columns:
`meta`, whose texts repeat (2,000 distinct documents, as JSON attributes
usually do), and `doc`, where every row's text is unique (it carries the
row's own id), the worst case for the JSON path). Each expression is
compiled once (the plan cache makes later compiles a dict lookup) and
evaluated `--repeat` times; the figures are the median (and best) wall
time of one evaluation over the whole table. Compile figures: a new expression
(parse + plan) and a cached one.

Run: `.venv/bin/python bench/expr_filter.py [--rows 100000 1000000] [--repeat 5]`

On the 2-core dev machine (pyarrow 26, numpy 2.4, orjson 3.13), median ms
per evaluation of the quietest run (load average ~4 from other work on the
machine, so these are upper bounds; the best-of figures run up to 2x lower):

    expression                                              100k ms    1M ms   matches@1M
    tag == "g042"                                              0.40     3.85        961
    category == 3 and price > 10                               0.13     1.44      90106
    tag like "g04%"                                            0.39     3.96      10078
    tag in ["g001", "g042", "g777"]                            0.71     6.64       2952
    pk in [100 keys]                                           2.36     3.45        100
    price * 2 + category > 150 and category not in [1,2]       0.96     7.57     220866
    array_contains(sizes, 3)                                   1.34    13.61     180784
    meta["dims"]["w"] > 5  (repeating JSON)                    4.35    28.64     485087
    json_contains(meta["tags"], "t3")  (repeating JSON)        4.69    41.00     136751
    meta["brand"] == "b7" and price < 50                       5.13    36.73      10071
    doc["n"] > 500  (unique JSON)                             61.01   677.00     499000
    compile a new expression (parse + plan): ~190 us; a cached plan: ~2.3 us

Scalar filters run at memory speed (a few ns per row). JSON with repeating
texts costs one dictionary encoding plus gathers; JSON where every text is
unique is bound by parsing each text once (orjson, ~0.35 us per small
document on this machine) and is the case to avoid in hot filters.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import orjson
import pyarrow as pa

from pelagos.expr import compile_filter
from pelagos.schema import CollectionSchema, DataType, FieldSchema

SCHEMA = CollectionSchema(
    [
        FieldSchema("pk", DataType.INT64, is_primary=True),
        FieldSchema("category", DataType.INT32),
        FieldSchema("price", DataType.DOUBLE),
        FieldSchema("tag", DataType.VARCHAR, max_length=16),
        FieldSchema("sizes", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8),
        FieldSchema("meta", DataType.JSON),
        FieldSchema("doc", DataType.JSON),
    ]
)

PK_KEYS = list(range(0, 1_000_000, 10_000))

EXPRESSIONS: list[tuple[str, str]] = [
    ('tag == "g042"', 'tag == "g042"'),
    ("category == 3 and price > 10", "category == 3 and price > 10"),
    ('tag like "g04%"', 'tag like "g04%"'),
    ('tag in ["g001", "g042", "g777"]', 'tag in ["g001", "g042", "g777"]'),
    ("pk in [100 keys]", "pk in {keys}"),
    (
        "price * 2 + category > 150 and category not in [1, 2]",
        "price * 2 + category > 150 and category not in [1, 2]",
    ),
    ("array_contains(sizes, 3)", "array_contains(sizes, 3)"),
    ('meta["dims"]["w"] > 5  (repeating JSON)', 'meta["dims"]["w"] > 5'),
    ('json_contains(meta["tags"], "t3")  (repeating JSON)', 'json_contains(meta["tags"], "t3")'),
    ('meta["brand"] == "b7" and price < 50', 'meta["brand"] == "b7" and price < 50'),
    ('doc["n"] > 500  (unique JSON)', 'doc["n"] > 500'),
]


def make_table(rows: int, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    tags = np.array([f"g{i:03d}" for i in range(1000)], dtype=object)
    distinct_meta = [
        orjson.dumps(
            {
                "brand": f"b{k % 50}",
                "rating": int(k % 5) + 1,
                "dims": {"w": float(k % 97) / 9.7, "h": k % 13},
                "tags": [f"t{(k + j) % 11}" for j in range(k % 4)],
            }
        ).decode()
        for k in range(2000)
    ]
    meta = np.array(distinct_meta, dtype=object)[rng.integers(0, len(distinct_meta), rows)]
    doc = [orjson.dumps({"id": i, "n": i % 1000, "label": f"row-{i}"}).decode() for i in range(rows)]
    lengths = rng.integers(0, 5, rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    sizes = pa.ListArray.from_arrays(pa.array(offsets), pa.array(rng.integers(0, 10, int(offsets[-1]))))
    return pa.table(
        {
            "pk": pa.array(np.arange(rows, dtype=np.int64)),
            "category": pa.array(rng.integers(0, 10, rows).astype(np.int32)),
            "price": pa.array(rng.random(rows) * 100),
            "tag": pa.array(tags[rng.integers(0, len(tags), rows)], pa.string()),
            "sizes": sizes,
            "meta": pa.array(meta, pa.string()),
            "doc": pa.array(doc, pa.string()),
        }
    )


def time_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) wall time of one call, in ms."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    params = {"keys": PK_KEYS}
    results: dict[str, list[tuple[tuple[float, float], int]]] = {label: [] for label, _ in EXPRESSIONS}
    for rows in args.rows:
        t0 = time.perf_counter()
        table = make_table(rows)
        print(f"# {rows} rows built in {time.perf_counter() - t0:.1f}s ({table.nbytes / 1e6:.0f} MB)")
        for label, expr in EXPRESSIONS:
            plan = compile_filter(expr, SCHEMA, params)
            matches = int(plan.evaluate(table).sum())
            results[label].append((time_ms(partial(plan.evaluate, table), args.repeat), matches))
    header = (
        f"{'expression':54}" + "".join(f"{f'{r // 1000}k ms (best)':>20}" for r in args.rows) + "   matches"
    )
    print(header)
    for label, cells in results.items():
        figures = "".join(f"{f'{med:.2f} ({best:.2f})':>20}" for (med, best), _ in cells)
        print(f"{label:54}{figures}{cells[-1][1]:10d}")
    expr = 'category == 3 and price > {} and tag like "g0%" or meta["dims"]["w"] > 5'
    fresh = itertools.count()
    parse_and_plan = time_ms(lambda: compile_filter(expr.format(next(fresh)), SCHEMA), 200)[0]
    compile_filter(expr.format(-1), SCHEMA)
    cached = time_ms(lambda: compile_filter(expr.format(-1), SCHEMA), 200)[0]
    print(
        f"compile a new expression (parse + plan): {parse_and_plan * 1000:.0f} us; a cached one: {cached * 1000:.1f} us"
    )


if __name__ == "__main__":
    main()
