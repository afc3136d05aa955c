"""Primary keys of search hits: int64 keys as a numpy array, string keys as an Arrow array.

A search answers with a handful of hits, so what it costs is per call, not per
row: each Arrow conversion (`pa.array`, `pa.table`, `to_numpy`) costs
~20 us on the cold caches a request meets between calls, against ~1 us hot.
Hits of an int64-keyed collection therefore travel from the segment's
zero-copy key column to the reply as numpy; only string keys use Arrow.

Invariants:
- int64 keys are a 1-D numpy int64 array, string keys a pa.Array (never
  chunked); one collection's hits always use one form;
- every function here keeps the form it was given (`arrow_keys` aside);
- slicing (`keys[lo:hi]`) and `len` work on both forms as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

HitKeys: TypeAlias = pa.Array | npt.NDArray[np.int64]
Ids = npt.NDArray[np.int64]


def empty_keys(pk_type: pa.DataType) -> HitKeys:
    """No keys, in the form of `pk_type`'s keys."""
    return np.zeros(0, np.int64) if pa.types.is_int64(pk_type) else pa.array([], pk_type)


def arrow_keys(keys: HitKeys) -> pa.Array:
    """The keys as Arrow, for what only Arrow computes (ranks, dictionary encoding)."""
    return pa.array(keys) if isinstance(keys, np.ndarray) else keys


def concat_keys(parts: Sequence[HitKeys]) -> HitKeys:
    if parts and all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
    return pa.concat_arrays([arrow_keys(p) for p in parts])


def take_keys(keys: HitKeys, which: Ids) -> HitKeys:
    return keys[which] if isinstance(keys, np.ndarray) else keys.take(pa.array(which))


def key_ranks(keys: HitKeys) -> Ids:
    """The rank of each key in ascending order (equal keys share no rank): what orders hits by key."""
    return np.asarray(pc.rank(arrow_keys(keys), sort_keys="ascending").to_numpy(), dtype=np.int64)


def keys_list(keys: HitKeys) -> list[int] | list[str]:
    """The keys as Python values (for a wire format)."""
    return keys.tolist() if isinstance(keys, np.ndarray) else keys.to_pylist()  # type: ignore[no-any-return]


def key_at(keys: HitKeys, i: int) -> int | str:
    return int(keys[i]) if isinstance(keys, np.ndarray) else keys[i].as_py()  # type: ignore[no-any-return]
