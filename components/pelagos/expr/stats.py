"""Per-field statistics of a segment, as `FilterPlan.may_match` reads them.

Invariants:
- `min` / `max` are Python values (bool, int, float, str) over the
  non-null (and non-NaN) values of the field, or None when unknown or there
  are none; `null_count` nulls among `row_count` rows;
- stats only ever make pruning *more* conservative when absent: a field
  without stats, or with None bounds, is assumed to hold anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldStats:
    min: Any
    max: Any
    null_count: int
    row_count: int
