"""JSON columns (JSON fields and `$meta`, Arrow strings of JSON text) for the evaluator.

How it stays efficient: the column is dictionary-encoded first (Arrow, in
C++), so each *distinct* JSON text is parsed once (orjson when installed)
no matter how often it repeats; when a sample of 1,024 rows suggests more
than n/4 distinct texts, encoding would cost more than it saves, and each
row is parsed once instead. The cyclic GC is paused while the parsed
containers are built (it would otherwise rescan them all: 5x the time).
The values at each accessed path are extracted once per distinct
document, classified by type with a single `map(type)` pass, and turned
into typed numpy / Arrow arrays over the distinct documents. From then on
everything is vectorised: the per-row vectors are gathers of those arrays
by the row -> document indices. Per-distinct-document Python work is: one
parse, one dict/list step per path component, and for `*_contains*` /
`array_length` one small test per document. Parsed documents and
extracted paths are cached for the duration of one evaluation, so an
expression that touches several keys of one column parses it once.

Semantics (Milvus's):
- a path that is absent, steps through a non-object / non-array, or holds
  a value of another kind than the operation needs (or JSON null) has no
  value: comparisons on it are false, not unknown;
- numbers compare by value whether written as int or float (`1 == 1.0`),
  but never equal a bool; strings compare by code point; bools are only
  equal or unequal (an ordering comparison never holds for them);
- a null cell of a nullable JSON field is SQL-null (unknown); a null cell
  of `$meta` (or any non-nullable JSON column) reads as an empty document;
- text that is not valid JSON reads as an empty document.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.expr.plan_nodes import ConstValue, Kind
from pelagos.expr.vectors import Mask, Tri, Vec

try:
    import orjson

    _loads: Callable[[str], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency of the client stack
    _loads = json.loads


class _Missing:
    """No value at a path (distinct from JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

_C_MISSING, _C_NULL, _C_INT, _C_FLOAT, _C_STR, _C_BOOL, _C_LIST, _C_DICT, _C_OTHER = range(9)
_TYPE_CODE: defaultdict[type, int] = defaultdict(
    lambda: _C_OTHER,
    {
        _Missing: _C_MISSING,
        type(None): _C_NULL,
        int: _C_INT,
        float: _C_FLOAT,
        str: _C_STR,
        bool: _C_BOOL,
        list: _C_LIST,
        dict: _C_DICT,
    },
)


def json_key(v: Any) -> Any:
    """A hashable key under which two JSON values are equal exactly when Milvus calls them equal.

    Numbers share a class (so 1 and 1.0 meet), bools and strings have their
    own; lists (and tuples, the planner's list constants) compare element-wise.
    """
    t = type(v)
    if t is bool:
        return (_C_BOOL, v)
    if t is int or t is float:
        return (_C_INT, v)
    if t is str:
        return (_C_STR, v)
    if t is list or t is tuple:
        return (_C_LIST, tuple(json_key(x) for x in v))
    if t is dict:
        return (_C_DICT, tuple(sorted((k, json_key(x)) for k, x in v.items())))
    return (_C_NULL, None)


#: rows sampled to decide whether dictionary-encoding a JSON column pays off
_SAMPLE = 1024


def _mostly_distinct(column: pa.Array) -> bool:
    """Whether the column likely holds more than n/4 distinct texts (then encoding costs more than it saves).

    Birthday estimate from an evenly spread sample of s rows: with D distinct
    texts the sample repeats about s^2 / 2D times, so D >= n/4 when the
    repeats are at most 2 s^2 / n.
    """
    n = len(column)
    if n <= _SAMPLE or pa.types.is_dictionary(column.type):
        return False
    sample = column.take(pa.array(np.linspace(0, n - 1, _SAMPLE).astype(np.int64)))
    repeats = _SAMPLE - int(pc.count_distinct(sample, mode="all").as_py())
    return repeats <= 2 * _SAMPLE * _SAMPLE / n


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building millions of small containers (it would rescan them all)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_all(texts: list[str]) -> list[Any]:
    try:
        return list(map(_loads, texts))
    except (ValueError, TypeError):
        pass
    docs: list[Any] = []
    for t in texts:
        try:
            docs.append(_loads(t))
        except ValueError:
            docs.append({})
    return docs


def _step(values: list[Any], key: str | int) -> list[Any]:
    if isinstance(key, str):
        try:  # all objects (the usual case): C-speed lookups
            return list(map(dict.get, values, repeat(key), repeat(MISSING)))
        except TypeError:
            return [v.get(key, MISSING) if type(v) is dict else MISSING for v in values]
    return [v[key] if type(v) is list and len(v) > key else MISSING for v in values]


class JsonData:
    """One JSON column of one evaluation: distinct documents, row -> document index, caches."""

    def __init__(self, column: pa.Array, nullable: bool) -> None:
        self.n = len(column)
        null_rows: Mask | None = None
        if column.null_count:
            null_rows = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if _mostly_distinct(column):
            # dictionary-encoding unique texts would cost more than it saves
            texts: list[str] = (
                column.fill_null("null").to_pylist() if null_rows is not None else column.to_pylist()
            )
            rows = np.arange(self.n, dtype=np.intp)
            if null_rows is not None:
                rows[null_rows] = len(texts)
        else:
            encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
            texts = encoded.dictionary.to_pylist()
            indices = encoded.indices
            if indices.null_count:
                indices = indices.fill_null(len(texts))
            rows = np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.intp)
        with _gc_paused():
            docs = _parse_all(texts)
        # the last slot stands for null cells
        docs.append({} if not nullable else MISSING)
        self.size = len(docs)
        self.rows: np.ndarray = rows
        self.null: Mask | None = null_rows if nullable else None
        self.present_rows: Mask | None = None if self.null is None else ~self.null
        self._docs = docs
        self._values: dict[tuple[str | int, ...], list[Any]] = {(): docs}
        self._codes: dict[tuple[str | int, ...], np.ndarray] = {}
        self._typed: dict[tuple[tuple[str | int, ...], Kind], Vec] = {}

    # --- per distinct document ---------------------------------------------------

    def values(self, path: tuple[str | int, ...]) -> list[Any]:
        """The value at `path` for each distinct document (MISSING where there is none)."""
        cached = self._values.get(path)
        if cached is None:
            parent = self.values(path[:-1])
            with _gc_paused():
                cached = _step(parent, path[-1])
            self._values[path] = cached
        return cached

    def codes(self, path: tuple[str | int, ...]) -> np.ndarray:
        cached = self._codes.get(path)
        if cached is None:
            vals = self.values(path)
            cached = np.fromiter(map(_TYPE_CODE.__getitem__, map(type, vals)), dtype=np.int8, count=len(vals))
            self._codes[path] = cached
        return cached

    def _objects(self, path: tuple[str | int, ...], mask: Mask) -> np.ndarray:
        vals = self.values(path)
        objs = np.fromiter(vals, dtype=object, count=len(vals))
        selected: np.ndarray = objs[mask]
        return selected

    # --- per row -------------------------------------------------------------------

    def typed(self, path: tuple[str | int, ...], want: Kind) -> Vec:
        """The values of one class at `path`: numeric (INT/FLOAT), STRING or BOOL."""
        cls = Kind.FLOAT if want.is_numeric else want
        cached = self._typed.get((path, cls))
        if cached is not None:
            return cached
        codes = self.codes(path)
        dict_values: Any
        if cls is Kind.FLOAT:
            mask = (codes == _C_INT) | (codes == _C_FLOAT)
            numbers = self._objects(path, mask)
            if bool((codes == _C_FLOAT).any()):
                typed = numbers.astype(np.float64)
            else:
                try:
                    typed = numbers.astype(np.int64)
                except OverflowError:
                    typed = numbers.astype(np.float64)
            dict_values = np.zeros(self.size, dtype=typed.dtype)
            dict_values[mask] = typed
            row_values: Any = dict_values[self.rows]
            kind = Kind.INT if typed.dtype == np.int64 else Kind.FLOAT
        elif cls is Kind.STRING:
            mask = codes == _C_STR
            strings = np.full(self.size, "", dtype=object)
            strings[mask] = self._objects(path, mask)
            row_values = pa.array(strings, pa.string()).take(pa.array(self.rows))
            kind = Kind.STRING
        else:
            mask = codes == _C_BOOL
            dict_values = np.zeros(self.size, dtype=bool)
            dict_values[mask] = self._objects(path, mask).astype(bool)
            row_values = dict_values[self.rows]
            kind = Kind.BOOL
        vec = Vec(kind, row_values, mask[self.rows], self.null)
        self._typed[(path, cls)] = vec
        return vec

    def exists(self, path: tuple[str | int, ...]) -> Mask:
        """Rows where the key is there (even holding JSON null)."""
        present: Mask = (self.codes(path) != _C_MISSING)[self.rows]
        return present

    def scalar_present(self, path: tuple[str | int, ...]) -> Mask:
        """Rows holding a number, string or bool at `path`."""
        c = self.codes(path)
        ok: Mask = ((c == _C_INT) | (c == _C_FLOAT) | (c == _C_STR) | (c == _C_BOOL))[self.rows]
        return ok

    def length(self, path: tuple[str | int, ...]) -> Vec:
        vals = self.values(path)
        lengths = np.fromiter(
            (len(v) if type(v) is list else -1 for v in vals), dtype=np.int64, count=len(vals)
        )
        per_row = lengths[self.rows]
        return Vec(Kind.INT, per_row, per_row >= 0, self.null)

    def contains(self, path: tuple[str | int, ...], values: Iterable[ConstValue], mode: str) -> Tri:
        """Rows whose JSON array at `path` contains one / all / any of `values`."""
        needles = {json_key(v) for v in values}
        vals = self.values(path)
        test: Callable[[Any], bool]
        if mode == "one":
            (needle,) = needles

            def test(v: Any) -> bool:
                return any(json_key(x) == needle for x in v)

        elif mode == "all":

            def test(v: Any) -> bool:
                return needles.issubset(map(json_key, v))

        else:

            def test(v: Any) -> bool:
                return not needles.isdisjoint(map(json_key, v))

        hits = np.fromiter((type(v) is list and test(v) for v in vals), dtype=bool, count=len(vals))
        return Tri(hits[self.rows], self.null)
