"""Reading parameter values the way Milvus clients send them.

Invariants:
- Parameters arrive flat, or nested under a ``params`` key whose value is a
  dict or a JSON object string, or both; `flatten_params` merges them and
  refuses a key given twice with different values.
- Integers may arrive as ints, integral floats or decimal strings ("16");
  booleans are never numbers. Floats may arrive as numbers or strings.
- Every refusal is an `IndexParamError` naming the key, the value and what
  is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pelagos.errors import IndexParamError

NESTED_KEY = "params"


def flatten_params(params: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """One flat dict from flat keys plus the keys of a nested ``params`` dict or JSON string."""
    flat: dict[str, Any] = {}
    if not params:
        return flat
    nested_raw = None
    for key, value in params.items():
        if not isinstance(key, str):
            raise IndexParamError(f"{what} parameter names must be strings, got {key!r}")
        if key == NESTED_KEY:
            nested_raw = value
        else:
            flat[key] = value
    if nested_raw is None or nested_raw == "":
        return flat
    nested: Any = nested_raw
    if isinstance(nested_raw, str | bytes):
        try:
            nested = json.loads(nested_raw)
        except ValueError as exc:
            raise IndexParamError(
                f"{what} parameter 'params' must be a JSON object, got {nested_raw!r}: {exc}"
            ) from None
    if not isinstance(nested, Mapping):
        raise IndexParamError(f"{what} parameter 'params' must be a JSON object, got {nested_raw!r}")
    for key, value in flatten_params(nested, what).items():
        if key in flat and not same_value(flat[key], value):
            raise IndexParamError(
                f"{what} parameter {key!r} is given twice with different values "
                f"({flat[key]!r} and {value!r}); give it once"
            )
        flat[key] = value
    return flat


def same_value(a: Any, b: Any) -> bool:
    """Equal as given, as text, or as numbers (16, 16.0 and "16" are the same value)."""
    if a == b or str(a).strip() == str(b).strip():
        return True
    try:
        return float(str(a).strip()) == float(str(b).strip())
    except ValueError:
        return False


def as_int(key: str, value: Any, low: int, high: int, context: str) -> int:
    """An integer in [low, high] from an int, an integral float or a decimal string."""
    parsed: int | None = None
    if isinstance(value, bool):
        parsed = None
    elif isinstance(value, int):
        parsed = value
    elif isinstance(value, float) and value.is_integer():
        parsed = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                parsed = None
            else:
                parsed = int(as_float) if as_float.is_integer() else None
    if parsed is None:
        raise IndexParamError(f"{context}: {key} must be an integer in [{low}, {high}], got {value!r}")
    if not low <= parsed <= high:
        raise IndexParamError(f"{context}: {key} must be in [{low}, {high}], got {parsed}")
    return parsed


def as_float(key: str, value: Any, context: str) -> float:
    """A finite float from a number or a numeric string."""
    parsed: float | None = None
    if isinstance(value, bool):
        parsed = None
    elif isinstance(value, int | float):
        parsed = float(value)
    elif isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            parsed = None
    if parsed is None or not math.isfinite(parsed):
        raise IndexParamError(f"{context}: {key} must be a finite number, got {value!r}")
    return parsed


def as_name(value: Any, key: str) -> str | None:
    """An upper-cased type name, or None when absent or empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise IndexParamError(f"{key} must be a string, got {value!r}")
    text = value.strip().upper()
    return text or None
