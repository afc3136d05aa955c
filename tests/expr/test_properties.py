"""Property: the vectorised evaluator agrees with a plain per-row Python oracle.

Hypothesis draws rows (int64, double, varchar, bool, nullable int64, a JSON
field with nested keys of mixed types, a nullable int array, dynamic keys)
and well-typed expressions over them (comparisons, ranges, in / not in,
like, arithmetic, is [not] null, exists, JSON paths and contains, array
elements / length / contains, and / or / not, templates), renders each
expression to text, and checks `compile_filter(text).evaluate(table)`
against `oracle_match`, written here row by row from the documented
semantics (SQL three-valued logic; missing JSON values and out-of-range
array elements compare false; division by zero is null; INT / INT
truncates). The same runs check that `may_match` never prunes a segment
holding a match, that `primary_key_lookup` selects exactly the matching
rows, and that `fields` names every column the evaluation needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pelagos.expr import FieldStats, compile_filter
from pelagos.schema import CollectionSchema, DataType, FieldSchema
from tests.expr.helpers import rows_to_table

SCHEMA = CollectionSchema(
    [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("i", DataType.INT64),
        FieldSchema("d", DataType.DOUBLE),
        FieldSchema("s", DataType.VARCHAR, max_length=16),
        FieldSchema("b", DataType.BOOL),
        FieldSchema("ni", DataType.INT64, nullable=True),
        FieldSchema("j", DataType.JSON),
        FieldSchema("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True),
    ],
    enable_dynamic_field=True,
)
SCALAR_COLUMNS = ("id", "i", "d", "s", "b", "ni")
INT_COLUMNS = ("id", "i", "ni")

# --- data ----------------------------------------------------------------------------

STRING_ALPHABET = "ab%_\\é\"'"
json_scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([-1.5, 0.0, 1.0, 2.5]),
    st.sampled_from(["", "a", "b", "ab", "é"]),
    st.booleans(),
    st.none(),
)
json_values = st.one_of(
    json_scalars,
    st.lists(json_scalars, max_size=3),
    st.fixed_dictionaries({}, optional={"x": json_scalars}),
)
json_docs = st.fixed_dictionaries(
    {},
    optional={
        "a": st.one_of(json_scalars, json_scalars, json_scalars, json_values),
        "b": st.one_of(st.lists(json_scalars, max_size=3), json_scalars),
        "c": st.one_of(st.fixed_dictionaries({}, optional={"x": json_values}), json_scalars),
    },
)
dynamic_docs = st.fixed_dictionaries({}, optional={"k": json_scalars, "m": json_values})
doubles = st.one_of(
    st.sampled_from([-2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0]),
    st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)


@st.composite
def rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 10))
    out = []
    for k in range(n):
        out.append(
            {
                "id": k + 1,
                "i": draw(st.integers(-6, 6)),
                "d": draw(doubles),
                "s": draw(st.text(STRING_ALPHABET, max_size=3)),
                "b": draw(st.booleans()),
                "ni": draw(st.none() | st.integers(-6, 6)),
                "j": draw(json_docs),
                "arr": draw(st.none() | st.lists(st.integers(-3, 3), max_size=4)),
                "dyn": draw(dynamic_docs),
            }
        )
    return out


def build_table(data: list[dict[str, Any]], layout: str) -> pa.Table:
    flat = [{**{k: v for k, v in r.items() if k != "dyn"}, **r["dyn"]} for r in data]
    if layout == "slice":
        filler = {"id": 0, "i": 0, "d": 0.0, "s": "", "b": False, "ni": None, "j": {"a": 1}, "arr": [1]}
        return rows_to_table(SCHEMA, [filler, *flat, filler]).slice(1, len(flat))
    table = rows_to_table(SCHEMA, flat)
    if layout == "chunks" and len(flat) > 1:
        half = len(flat) // 2
        return pa.concat_tables([table.slice(0, half), table.slice(half)])
    return table


# --- expressions as tuples ------------------------------------------------------------
# values:  ("col", name) ("int", v, templ) ("float", v, templ) ("str", v, templ) ("bool", v, spelling)
#          ("json", path) ("dyn", key, explicit) ("elem", k) ("len",) ("jlen", path)
#          ("arith", op, a, b) ("neg", a)
# predicates: ("cmp", op, a, b) ("range", lo, op1, mid, op2, hi) ("in", v, items, negated, templ)
#          ("like", v, pattern) ("isnull", col, negated) ("exists", v) ("contains", mode, container, values, prefix)
#          ("truth", v) ("const", bool) ("not", p, spelling) ("and", p, q, spelling) ("or", p, q, spelling)

JSON_PATHS: list[tuple[str | int, ...]] = [("a",), ("b",), ("c", "x"), ("a", 0), ("c",), ("b", 0), ("b", 1)]
int_consts = st.builds(lambda v, t: ("int", v, t), st.integers(-4, 4), st.booleans())
float_consts = st.builds(lambda v, t: ("float", v, t), st.sampled_from([-1.5, 0.0, 0.5, 2.0]), st.booleans())
json_refs = st.one_of(
    st.builds(lambda p: ("json", p), st.sampled_from(JSON_PATHS)),
    st.builds(lambda k, e: ("dyn", k, e), st.sampled_from(["k", "m"]), st.booleans()),
)
str_consts = st.builds(lambda v, t: ("str", v, t), st.text(STRING_ALPHABET, max_size=3), st.booleans())
bool_consts = st.builds(lambda v, s: ("bool", v, s), st.booleans(), st.integers(0, 2))


def num_values(depth: int) -> st.SearchStrategy[tuple[Any, ...]]:
    leaves = st.one_of(
        st.sampled_from([("col", c) for c in ("i", "d", "ni", "id")]),
        int_consts,
        float_consts,
        json_refs,
        st.builds(lambda k: ("elem", k), st.integers(0, 3)),
        st.just(("len",)),
        st.builds(lambda p: ("jlen", p), st.sampled_from(JSON_PATHS)),
    )
    if depth == 0:
        return leaves
    sub = num_values(depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda op, a, b: ("arith", op, a, b), st.sampled_from(["+", "-", "*", "/", "%"]), sub, sub),
        st.builds(
            lambda a, e: ("arith", "**", a, e),
            sub,
            st.sampled_from(
                [("int", 0, False), ("int", 2, False), ("int", -1, False), ("float", 0.5, False)]
            ),
        ),
        st.builds(lambda a: ("neg", a), sub),
    )


str_values = st.one_of(st.just(("col", "s")), json_refs, str_consts)
bool_values = st.one_of(st.just(("col", "b")), json_refs, bool_consts)
ORDER_OPS = ["<", "<=", ">", ">="]
ALL_OPS = ["==", "!=", *ORDER_OPS]


def leaf_predicates() -> st.SearchStrategy[tuple[Any, ...]]:
    num = num_values(2)
    mixed_items = st.lists(st.one_of(int_consts, float_consts, str_consts, bool_consts), max_size=4)
    return st.one_of(
        st.builds(lambda op, a, b: ("cmp", op, a, b), st.sampled_from(ALL_OPS), num, num),
        st.builds(lambda op, a, b: ("cmp", op, a, b), st.sampled_from(ALL_OPS), str_values, str_values),
        st.builds(
            lambda op, a, b: ("cmp", op, a, b), st.sampled_from(["==", "!="]), bool_values, bool_consts
        ),
        st.builds(
            lambda op, a, b: ("cmp", op, a, b),
            st.sampled_from(ALL_OPS),
            json_refs,
            st.one_of(int_consts, float_consts, str_consts, num_values(0)),
        ),
        st.builds(lambda op, a, b: ("cmp", op, a, b), st.sampled_from(["==", "!="]), json_refs, bool_consts),
        st.builds(
            lambda up, ops, lo, mid, hi: (
                "range",
                lo,
                ops[0] if up else ops[2],
                mid,
                ops[1] if up else ops[3],
                hi,
            ),
            st.booleans(),
            st.tuples(
                st.sampled_from(["<", "<="]),
                st.sampled_from(["<", "<="]),
                st.sampled_from([">", ">="]),
                st.sampled_from([">", ">="]),
            ),
            num_values(0),
            num_values(1),
            num_values(0),
        ),
        st.builds(
            lambda v, items, neg, t: ("in", v, items, neg, t),
            num_values(1),
            st.lists(st.one_of(int_consts, float_consts), max_size=4),
            st.booleans(),
            st.booleans(),
        ),
        st.builds(
            lambda items, neg: ("in", ("col", "id"), items, neg, False),
            st.lists(int_consts, max_size=4),
            st.booleans(),
        ),
        st.builds(
            lambda v, items, neg, t: ("in", v, items, neg, t),
            st.one_of(st.just(("col", "s")), json_refs),
            st.lists(str_consts, max_size=3),
            st.booleans(),
            st.booleans(),
        ),
        st.builds(lambda v, items, neg: ("in", v, items, neg, False), json_refs, mixed_items, st.booleans()),
        st.builds(
            lambda v, p: ("like", v, p),
            st.one_of(st.just(("col", "s")), json_refs),
            st.text(STRING_ALPHABET, max_size=4),
        ),
        st.builds(lambda c, neg: ("isnull", c, neg), st.sampled_from(["ni", "arr", "i", "j"]), st.booleans()),
        st.builds(lambda v: ("exists", v), json_refs),
        st.builds(
            lambda mode, values, prefix: ("contains", mode, ("arr",), values, prefix),
            st.sampled_from(["one", "all", "any"]),
            st.lists(st.one_of(int_consts, float_consts), min_size=1, max_size=3),
            st.sampled_from(["array", "json"]),
        ),
        st.builds(
            lambda mode, c, values, prefix: ("contains", mode, c, values, prefix),
            st.sampled_from(["one", "all", "any"]),
            json_refs,
            st.lists(st.one_of(int_consts, float_consts, str_consts, bool_consts), min_size=1, max_size=3),
            st.sampled_from(["array", "json"]),
        ),
        st.builds(lambda v: ("truth", v), st.one_of(st.just(("col", "b")), json_refs)),
        st.builds(lambda v: ("const", v), st.booleans()),
    )


def predicates(depth: int) -> st.SearchStrategy[tuple[Any, ...]]:
    if depth == 0:
        return leaf_predicates()
    sub = predicates(depth - 1)
    leaves = leaf_predicates()
    return st.one_of(
        leaves,
        leaves,
        st.builds(lambda p, s: ("not", p, s), sub, st.integers(0, 2)),
        st.builds(lambda p, q, s: ("and", p, q, s), sub, sub, st.integers(0, 2)),
        st.builds(lambda p, q, s: ("or", p, q, s), sub, sub, st.integers(0, 2)),
    )


# --- rendering -----------------------------------------------------------------------


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Renderer:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def template(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "{" + name + "}"

    def path(self, p: tuple[str | int, ...]) -> str:
        return "j" + "".join(f"[{quote(k)}]" if isinstance(k, str) else f"[{k}]" for k in p)

    def value(self, e: tuple[Any, ...]) -> str:
        tag = e[0]
        if tag == "col":
            return str(e[1])
        if tag in ("int", "float"):
            if e[2]:
                return self.template(e[1])
            return f"({e[1]!r})" if e[1] < 0 else repr(e[1])
        if tag == "str":
            return self.template(e[1]) if e[2] else quote(e[1])
        if tag == "bool":
            spellings = ["true", "True", "TRUE"] if e[1] else ["false", "False", "FALSE"]
            return spellings[int(e[2])]
        if tag == "json":
            return self.path(e[1])
        if tag == "dyn":
            return f'$meta["{e[1]}"]' if e[2] else str(e[1])
        if tag == "elem":
            return f"arr[{e[1]}]"
        if tag == "len":
            return "array_length(arr)"
        if tag == "jlen":
            return f"array_length({self.path(e[1])})"
        if tag == "arith":
            return f"({self.value(e[2])} {e[1]} {self.value(e[3])})"
        if tag == "neg":
            return f"(-{self.value(e[1])})"
        raise AssertionError(e)

    def const(self, e: tuple[Any, ...]) -> Any:
        return e[1]

    def pred(self, e: tuple[Any, ...]) -> str:
        tag = e[0]
        if tag == "cmp":
            return f"{self.value(e[2])} {e[1]} {self.value(e[3])}"
        if tag == "range":
            return f"{self.value(e[1])} {e[2]} {self.value(e[3])} {e[4]} {self.value(e[5])}"
        if tag == "in":
            kw = "not in" if e[3] else "in"
            if e[4]:
                return f"{self.value(e[1])} {kw} {self.template([self.const(x) for x in e[2]])}"
            return f"{self.value(e[1])} {kw} [{', '.join(self.value(x) for x in e[2])}]"
        if tag == "like":
            return f"{self.value(e[1])} like {quote(e[2])}"
        if tag == "isnull":
            return f"{e[1]} is {'not ' if e[2] else ''}null"
        if tag == "exists":
            return f"exists {self.value(e[1])}"
        if tag == "contains":
            fname = {"one": "contains", "all": "contains_all", "any": "contains_any"}[e[1]]
            container = "arr" if e[2] == ("arr",) else self.value(e[2])
            items = [self.value(x) for x in e[3]]
            arg = items[0] if e[1] == "one" else "[" + ", ".join(items) + "]"
            return f"{e[4]}_{fname}({container}, {arg})"
        if tag == "truth":
            return self.value(e[1])
        if tag == "const":
            return "true" if e[1] else "false"
        if tag == "not":
            return ["not ", "NOT ", "!"][int(e[2])] + f"({self.pred(e[1])})"
        if tag in ("and", "or"):
            words = {"and": ["and", "AND", "&&"], "or": ["or", "OR", "||"]}[tag]
            return f"({self.pred(e[1])}) {words[e[3]]} ({self.pred(e[2])})"
        raise AssertionError(e)


# --- the oracle: plain Python, one row at a time ---------------------------------------


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NULL = _Sentinel("NULL")  # SQL null: comparisons are unknown
MISSING = _Sentinel("MISSING")  # no value: comparisons are false


def klass(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "num"
    if isinstance(v, str):
        return "str"
    return None


def static_kind(e: tuple[Any, ...]) -> str:
    tag = e[0]
    if tag == "col":
        return "float" if e[1] == "d" else "int"
    if tag in ("int", "elem", "len", "jlen"):
        return "int"
    if tag == "float":
        return "float"
    if tag in ("json", "dyn"):
        return "json"
    if tag == "arith":
        a, b = static_kind(e[2]), static_kind(e[3])
        return "int" if a == "int" and b == "int" and e[1] != "**" else "float"
    if tag == "neg":
        return "float" if static_kind(e[1]) == "json" else static_kind(e[1])
    raise AssertionError(e)


def walk(doc: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(key, str):
            if not isinstance(doc, dict) or key not in doc:
                return MISSING
            doc = doc[key]
        else:
            if not isinstance(doc, list) or key >= len(doc):
                return MISSING
            doc = doc[key]
    return doc


def int_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return -q if (x < 0) != (y < 0) else q


def arith(op: str, x: Any, y: Any, kind: str) -> Any:
    if kind == "int":
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if y == 0:
            return NULL
        q = int_div(x, y)
        return q if op == "/" else x - q * y
    x, y = float(x), float(y)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op in ("/", "%"):
        if y == 0:
            return NULL
        return x / y if op == "/" else math.fmod(x, y)
    if (x == 0 and y < 0) or (x < 0 and not y.is_integer()):
        return NULL
    try:
        r = x**y
    except OverflowError:
        r = math.inf
    return NULL if math.isnan(r) else r


def value_of(e: tuple[Any, ...], row: dict[str, Any]) -> Any:
    tag = e[0]
    if tag == "col":
        v = row[e[1]]
        return NULL if v is None else v
    if tag in ("int", "float", "str", "bool"):
        return e[1]
    if tag == "json":
        return walk(row["j"], e[1])
    if tag == "dyn":
        return walk(row["dyn"], (e[1],))
    if tag == "elem":
        a = row["arr"]
        if a is None:
            return NULL
        return a[e[1]] if e[1] < len(a) else MISSING
    if tag == "len":
        return NULL if row["arr"] is None else len(row["arr"])
    if tag == "jlen":
        v = walk(row["j"], e[1])
        return len(v) if isinstance(v, list) else MISSING
    if tag == "arith":
        a, b = value_of(e[2], row), value_of(e[3], row)
        if a is NULL or b is NULL:
            return NULL
        if klass(a) != "num" or klass(b) != "num":
            return MISSING
        return arith(e[1], a, b, static_kind(e))
    if tag == "neg":
        a = value_of(e[1], row)
        if a is NULL or a is MISSING:
            return a
        if klass(a) != "num":
            return MISSING
        return -float(a) if static_kind(e) == "float" else -a
    raise AssertionError(e)


OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def compare(op: str, a: Any, b: Any) -> bool | None:
    if a is NULL or b is NULL:
        return None
    ka, kb = klass(a), klass(b)
    if ka is None or ka != kb:
        return False
    if ka == "bool" and op not in ("==", "!="):
        return False  # bools have no order (a static bool < x is a type error)
    return OPS[op](a, b)


def same(a: Any, b: Any) -> bool:
    return klass(a) is not None and klass(a) == klass(b) and a == b


def like(s: str, pattern: str) -> bool:
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(("lit", pattern[i + 1]))
            i += 2
            continue
        ch = pattern[i]
        tokens.append(("any", "") if ch == "%" else ("one", "") if ch == "_" else ("lit", ch))
        i += 1
    # match[k][m]: tokens[k:] match s[m:]
    match = [[False] * (len(s) + 1) for _ in range(len(tokens) + 1)]
    match[len(tokens)][len(s)] = True
    for k in range(len(tokens) - 1, -1, -1):
        kind, ch = tokens[k]
        for m in range(len(s), -1, -1):
            if kind == "any":
                match[k][m] = match[k + 1][m] or (m < len(s) and match[k][m + 1])
            elif m < len(s) and (kind == "one" or s[m] == ch):
                match[k][m] = match[k + 1][m + 1]
    return match[0][0]


def kleene_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def kleene_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def truth_of(e: tuple[Any, ...], row: dict[str, Any]) -> bool | None:
    tag = e[0]
    if tag == "cmp":
        return compare(e[1], value_of(e[2], row), value_of(e[3], row))
    if tag == "range":
        mid = value_of(e[3], row)
        return kleene_and(compare(e[2], value_of(e[1], row), mid), compare(e[4], mid, value_of(e[5], row)))
    if tag == "in":
        v = value_of(e[1], row)
        if v is NULL:
            return None
        if klass(v) is None:
            return False
        hit = any(same(v, x[1]) for x in e[2])
        return hit != bool(e[3])
    if tag == "like":
        v = value_of(e[1], row)
        if v is NULL:
            return None
        return isinstance(v, str) and like(v, e[2])
    if tag == "isnull":
        return (row[e[1]] is None) != bool(e[2])
    if tag == "exists":
        return value_of(e[1], row) is not MISSING
    if tag == "contains":
        if e[2] == ("arr",):
            elements = row["arr"]
            if elements is None:
                return None
        else:
            elements = value_of(e[2], row)
            if not isinstance(elements, list):
                return False
        values = [x[1] for x in e[3]]
        if e[1] == "one":
            values = values[:1]
        if e[1] == "all":
            return all(any(same(el, x) for el in elements) for x in values)
        return any(any(same(el, x) for el in elements) for x in values)
    if tag == "truth":
        v = value_of(e[1], row)
        return None if v is NULL else v is True
    if tag == "const":
        return bool(e[1])
    if tag == "not":
        t = truth_of(e[1], row)
        return None if t is None else not t
    if tag == "and":
        return kleene_and(truth_of(e[1], row), truth_of(e[2], row))
    if tag == "or":
        return kleene_or(truth_of(e[1], row), truth_of(e[2], row))
    raise AssertionError(e)


def oracle_match(e: tuple[Any, ...], data: list[dict[str, Any]]) -> list[bool]:
    return [truth_of(e, row) is True for row in data]


def stats_of(data: list[dict[str, Any]]) -> dict[str, FieldStats]:
    out = {}
    for name in SCALAR_COLUMNS:
        values = [r[name] for r in data if r[name] is not None]
        out[name] = FieldStats(
            min(values) if values else None,
            max(values) if values else None,
            len(data) - len(values),
            len(data),
        )
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=rows(),
    exprs=st.lists(predicates(2), min_size=2, max_size=4),
    layout=st.sampled_from(["one", "chunks", "slice"]),
)
def test_evaluator_agrees_with_the_row_by_row_oracle(
    data: list[dict[str, Any]], exprs: list[tuple[Any, ...]], layout: str
) -> None:
    table = build_table(data, layout)
    stats = stats_of(data)
    for e in exprs:
        renderer = Renderer()
        text = renderer.pred(e)
        plan = compile_filter(text, SCHEMA, renderer.params)
        got = plan.evaluate(table).tolist()
        expected = oracle_match(e, data)
        assert got == expected, f"{text} with {renderer.params}"
        if any(expected):
            assert plan.may_match(stats), f"{text} pruned a segment that has a match"
        lookup = plan.primary_key_lookup
        if lookup is not None:
            matching = {r["id"] for r, hit in zip(data, expected, strict=True) if hit}
            assert matching == set(lookup) & {r["id"] for r in data}, text
        if plan.fields and table.num_rows:
            assert plan.evaluate(table.select(sorted(plan.fields))).tolist() == expected, text
