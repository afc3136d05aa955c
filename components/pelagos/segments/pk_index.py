"""Primary key -> row offset within one sealed segment.

`PrimaryKeyIndex` keeps the distinct pks of a segment sorted in a numpy array
(int64, or numpy's variable-width StringDType for VARCHAR pks) with the row
offset chosen for each, and answers lookups with `np.searchsorted`:
O(q log n) per batch of q keys, no hash table rebuilt per call, no per-key
Python. Building sorts in Arrow (about 0.2 s for 1M int pks, 0.65 s for 1M
strings on the dev machine).

Invariants:
- duplicates: when the same pk was inserted more than once in a segment,
  the pk maps to its LATEST row: the greatest `_ts`, and among rows with the
  same `_ts` the greatest offset (the row written last). Without timestamps
  the greatest offset wins. Older duplicates are shadowed, not reachable by
  lookup (deletes still reach them through deltas.alive_mask, which works on
  every row);
- strings compare by code point (numpy StringDType), the order Arrow and
  Python use too, so `min`/`max` agree with the manifest's pk statistics;
- looking up keys of the other pk type (int vs string) is a
  SchemaMismatchError, never a silent miss.

`in_pk_range` is the bloom-free first check against a segment's manifest
pk_min/pk_max: a pk outside [min, max] cannot be in the segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.dtypes import StringDType

from pelagos.errors import SchemaMismatchError
from pelagos.segments.deltas import normalise_pks

PkValue = int | str
PkInput: TypeAlias = pa.Array | pa.ChunkedArray | np.ndarray | Sequence[int] | Sequence[str]


def _to_numpy(pks: pa.Array) -> np.ndarray:
    if pks.type == pa.int64():
        return np.asarray(pks.to_numpy(zero_copy_only=False), dtype=np.int64)
    # one pass through Python objects per build/lookup batch; no per-key Python code of ours
    return np.asarray(pks.to_numpy(zero_copy_only=False), dtype=object).astype(StringDType())


def _as_arrow(pks: PkInput) -> pa.Array:
    if isinstance(pks, pa.Array | pa.ChunkedArray):
        return normalise_pks(pks)
    if isinstance(pks, np.ndarray) and pks.dtype.kind in "iu":
        return normalise_pks(pa.array(pks.astype(np.int64, copy=False)))
    if isinstance(pks, np.ndarray):
        return normalise_pks(pa.array(pks.astype(object), pa.string()))
    items = list(pks)
    if items and isinstance(items[0], str):
        return normalise_pks(pa.array(items, pa.string()))
    return normalise_pks(pa.array(items, pa.int64()))


class PrimaryKeyIndex:
    """Sorted distinct pks of one segment and the row offset of each."""

    __slots__ = ("_keys", "_offsets", "_row_count", "pk_type")

    def __init__(self, pks: pa.Array | pa.ChunkedArray, ts: np.ndarray | None = None) -> None:
        arr = normalise_pks(pks)
        self.pk_type: pa.DataType = arr.type
        n = len(arr)
        self._row_count = n
        ts_col = np.zeros(n, dtype=np.uint64) if ts is None else np.asarray(ts, dtype=np.uint64)
        if len(ts_col) != n:
            raise SchemaMismatchError(f"{n} primary keys but {len(ts_col)} timestamps")
        # sort in Arrow (C++, byte order == code point order for strings): by pk, then ts, then offset
        rows = pa.table({"k": arr, "t": ts_col, "o": np.arange(n, dtype=np.int64)})
        order = pc.sort_indices(rows, sort_keys=[("k", "ascending"), ("t", "ascending"), ("o", "ascending")])
        keys = arr.take(order)
        # the last row of each run of equal keys is the latest (greatest ts, then offset)
        last = np.ones(n, dtype=bool)
        if n > 1:
            diff = pc.not_equal(keys.slice(0, n - 1), keys.slice(1))
            last[:-1] = np.asarray(diff.to_numpy(zero_copy_only=False), dtype=bool)
        self._keys = _to_numpy(keys.filter(pa.array(last)))
        self._offsets = np.asarray(order.to_numpy(), dtype=np.int64)[last]

    def __len__(self) -> int:
        """Number of distinct pks."""
        return len(self._keys)

    @property
    def row_count(self) -> int:
        return self._row_count

    @property
    def min(self) -> PkValue | None:
        return self._item(0) if len(self._keys) else None

    @property
    def max(self) -> PkValue | None:
        return self._item(-1) if len(self._keys) else None

    def _item(self, i: int) -> PkValue:
        v = self._keys[i]
        return int(v) if self.pk_type == pa.int64() else str(v)

    def lookup(self, pks: PkInput) -> tuple[np.ndarray, np.ndarray]:
        """(row_offsets int64, found bool) per queried pk; offset -1 where not found."""
        q = _as_arrow(pks)
        if len(q) and q.type != self.pk_type:
            raise SchemaMismatchError(f"looking up {q.type} keys in a segment whose pks are {self.pk_type}")
        qn = _to_numpy(q) if len(q) else np.empty(0, dtype=self._keys.dtype)
        if not len(self._keys):
            return np.full(len(qn), -1, dtype=np.int64), np.zeros(len(qn), dtype=bool)
        pos = np.searchsorted(self._keys, qn)
        pos_in = np.minimum(pos, len(self._keys) - 1)
        found = cast(np.ndarray, self._keys[pos_in] == qn)
        offsets = np.where(found, self._offsets[pos_in], -1).astype(np.int64, copy=False)
        return offsets, found

    def contains(self, pks: PkInput) -> np.ndarray:
        """A bool per queried pk: present in the segment."""
        return self.lookup(pks)[1]


def in_pk_range(pks: PkInput, pk_min: PkValue | None, pk_max: PkValue | None) -> np.ndarray:
    """A bool per pk: within [pk_min, pk_max] (None bounds, an empty segment: all False)."""
    arr = _as_arrow(pks)
    if pk_min is None or pk_max is None:
        return np.zeros(len(arr), dtype=bool)
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    if isinstance(pk_min, str) != (arr.type == pa.string()):
        raise SchemaMismatchError(f"pk bounds {pk_min!r}..{pk_max!r} do not match {arr.type} keys")
    lo = pa.scalar(pk_min, arr.type)
    hi = pa.scalar(pk_max, arr.type)
    mask = pc.and_(pc.greater_equal(arr, lo), pc.less_equal(arr, hi))
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
