"""Column-at-a-time values and three-valued truths, and the kernels over them.

`Vec`: one value per row of a kind, plus two masks:
- `present`: the row has a value of this kind (None = every row);
- `null`: the row is SQL-null (None = no row).
A row in neither is *missing*: a JSON key that is absent or holds another
kind, an array index out of range. Missing never matches a comparison (the
comparison is false); null makes it unknown. `present` and `null` are
disjoint.

`Tri`: a three-valued truth per row: `truth` (bool array) and `null`
(unknown rows, None = none); disjoint. Logic is Kleene's (SQL's): `not
unknown` is unknown; `false and unknown` is false; `true or unknown` is
true. A row matches when its truth is true.

Invariants: everything is a whole-array numpy / pyarrow.compute operation,
never a per-row Python loop; numeric values are int64 or float64; strings
stay Arrow arrays (compared by UTF-8 bytes, i.e. by code point); a constant
operand is a Python scalar and broadcasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.expr.like import parse_like
from pelagos.expr.plan_nodes import Kind

Mask = np.ndarray


@dataclass(slots=True)
class Vec:
    kind: Kind
    values: Any  # numpy array / pyarrow array, or a Python scalar for a constant
    present: Mask | None = None
    null: Mask | None = None


@dataclass(slots=True)
class Tri:
    truth: Mask
    null: Mask | None = None


def all_of(a: Mask | None, b: Mask | None) -> Mask | None:
    """Intersection of two `present`-style masks (None = all rows)."""
    if a is None:
        return b
    if b is None:
        return a
    both: Mask = a & b
    return both


def any_of(a: Mask | None, b: Mask | None) -> Mask | None:
    """Union of two `null`-style masks (None = no row)."""
    if a is None:
        return b
    if b is None:
        return a
    either: Mask = a | b
    return either


def bool_array(arr: pa.Array | pa.ChunkedArray) -> Mask:
    """An Arrow boolean result as a numpy bool array, nulls read as False."""
    if arr.null_count:
        arr = arr.fill_null(False)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    out: Mask = arr.to_numpy(zero_copy_only=False)
    return out


def full(n: int, value: bool) -> Mask:
    return np.full(n, value, dtype=bool)


# --- predicates over vectors -------------------------------------------------------

_NP_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_PC_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


def _finish(n: int, hit: Mask, present: Mask | None, null: Mask | None) -> Tri:
    if hit.ndim == 0:
        hit = np.full(n, bool(hit))
    truth = hit if present is None else hit & present
    return Tri(truth, null)


def compare(op: str, a: Vec, b: Vec, n: int) -> Tri:
    """`a op b` row by row; both of one comparison class (numeric, string or bool)."""
    if a.kind is Kind.STRING:
        hit = bool_array(_PC_COMPARE[op](a.values, b.values))
    else:
        with np.errstate(invalid="ignore"):
            hit = np.asarray(_NP_COMPARE[op](a.values, b.values), dtype=bool)
    return _finish(n, hit, all_of(a.present, b.present), any_of(a.null, b.null))


def is_in(a: Vec, values: list[Any], n: int) -> Tri:
    """Rows whose value is one of `values` (already of `a`'s class); missing and null rows never are."""
    if not values:
        return Tri(full(n, False), a.null)
    if a.kind is Kind.STRING:
        hit = bool_array(pc.is_in(a.values, value_set=pa.array(values, pa.string())))
    elif a.kind is Kind.BOOL:
        hit = np.isin(a.values, np.asarray(values, dtype=bool))
    else:
        hit = isin_numbers(a.values, values)
    return _finish(n, hit, a.present, a.null)


#: up to this many values, `in` is a chain of equalities (faster than np.isin's sort or table)
SMALL_SET = 16


def isin_numbers(values: np.ndarray, candidates: list[Any]) -> Mask:
    """`values` (numeric numpy) equal to one of `candidates`."""
    unique = list(dict.fromkeys(candidates))
    if len(unique) > SMALL_SET:
        found: Mask = np.isin(values, np.asarray(unique))
        return found
    hit = np.zeros(len(values), dtype=bool)
    for c in unique:
        hit |= values == c
    return hit


def like(a: Vec, pattern: str, n: int) -> Tri:
    """Rows whose string matches the `like` pattern, with the cheapest Arrow kernel for its shape."""
    p = parse_like(pattern)
    arr = a.values
    if p.shape == "equal":
        hit = bool_array(pc.equal(arr, p.literal))
    elif p.shape == "prefix":
        hit = bool_array(pc.starts_with(arr, p.literal)) if p.literal else full(n, True)
    elif p.shape == "suffix":
        hit = bool_array(pc.ends_with(arr, p.literal))
    elif p.shape == "contains":
        hit = bool_array(pc.match_substring(arr, p.literal))
    else:
        hit = bool_array(pc.match_substring_regex(arr, p.regex))
    return _finish(n, hit, a.present, a.null)


def logical_not(t: Tri) -> Tri:
    truth = ~t.truth if t.null is None else ~(t.truth | t.null)
    return Tri(truth, t.null)


def logical_and(a: Tri, b: Tri) -> Tri:
    truth = a.truth & b.truth
    if a.null is None and b.null is None:
        return Tri(truth, None)
    unknown = any_of(a.null, b.null)
    assert unknown is not None
    # unknown unless one side is definitely false
    a_false = ~(a.truth | a.null) if a.null is not None else ~a.truth
    b_false = ~(b.truth | b.null) if b.null is not None else ~b.truth
    return Tri(truth, unknown & ~a_false & ~b_false)


def logical_or(a: Tri, b: Tri) -> Tri:
    truth = a.truth | b.truth
    unknown = any_of(a.null, b.null)
    return Tri(truth, None if unknown is None else unknown & ~truth)


# --- arithmetic ----------------------------------------------------------------


def _as_number(values: Any, kind: Kind) -> Any:
    if isinstance(values, np.ndarray):
        target = np.int64 if kind is Kind.INT else np.float64
        return values if values.dtype == target else values.astype(target)
    return int(values) if kind is Kind.INT else float(values)


def arithmetic(op: str, a: Vec, b: Vec, kind: Kind, n: int) -> Vec:
    """`a op b` with kind INT (truncating / and %, sign of % from the dividend) or FLOAT.

    Rows where the result is undefined (division or % by zero, `0 ** -1`,
    a NaN power such as `(-8) ** 0.5`) become null.
    """
    x = _as_number(a.values, kind)
    y = _as_number(b.values, kind)
    present = all_of(a.present, b.present)
    null = any_of(a.null, b.null)
    bad: Any = False
    with np.errstate(all="ignore"):
        if op == "+":
            r = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op in ("/", "%"):
            zero = np.equal(y, 0)
            safe = np.where(zero, 1, y) if isinstance(zero, np.ndarray) else (1 if zero else y)
            if kind is Kind.INT:
                rem = np.fmod(x, safe)
                r = rem if op == "%" else (x - rem) // safe
            else:
                r = np.fmod(x, safe) if op == "%" else np.divide(x, safe)
            bad = zero
        else:  # "**", always float
            xf = np.asarray(x, dtype=np.float64)
            yf = np.asarray(y, dtype=np.float64)
            r = np.power(xf, yf)
            bad = np.isnan(r) | ((xf == 0) & (yf < 0))
    r = np.broadcast_to(np.asarray(r), (n,))
    bad_mask = np.asarray(bad)
    if bad_mask.any():
        bad_mask = np.broadcast_to(bad_mask, (n,))
        if present is not None:
            bad_mask = bad_mask & present
        null = any_of(null, bad_mask)
        present = ~bad_mask if present is None else present & ~bad_mask
    return Vec(kind, r, present, null)


def negate(a: Vec, kind: Kind) -> Vec:
    return Vec(kind, -_as_number(a.values, kind), a.present, a.null)
