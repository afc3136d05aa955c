"""reduce_topk: merge per-part top-k results (segments -> shard -> proxy) into one global top-k.

Invariants:
- Each part is (scores (nq, k_i), ids (nq, k_i)) for the same nq queries; the
  widths k_i may differ. Ids may be any numpy dtype: int64 primary keys,
  encoded (segment, offset) pairs, object arrays of string primary keys, or
  positions into an external primary-key array.
- A slot is missing when its score is not finite (every index pads with +inf
  for distances and -inf for similarities, id -1); missing slots never win
  and the output pads them again with the metric's pad score and `pad_id`.
- Output rows are sorted best first for the metric's direction; equal scores
  keep the order of the parts, then of the columns (a stable sort), so the
  result is deterministic.
- With `dedup=True` an id appearing more than once for a query (the same
  primary key in two segments, or a replica answering twice) is kept only at
  its best score.
- Vectorised: one concatenate, one argsort over (nq, sum k_i); no Python
  loop over queries or results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.index.kinds import MetricType

Part = tuple[npt.NDArray[Any], npt.NDArray[Any]]


def reduce_topk(
    parts: Sequence[Part],
    k: int,
    metric: MetricType | str,
    *,
    dedup: bool = False,
    pad_id: Any = -1,
    nq: int | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any]]:
    """The global top-k of several partial top-k results; see the module docstring."""
    metric = MetricType.of(metric)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not parts:
        if nq is None:
            raise ValueError("reduce_topk of no parts needs nq")
        return (
            np.full((nq, k), metric.pad_score, dtype=np.float32),
            np.full((nq, k), pad_id, dtype=np.asarray(pad_id).dtype),
        )
    score_parts = [np.asarray(s, dtype=np.float32) for s, _ in parts]
    id_parts = [np.asarray(i) for _, i in parts]
    rows = {s.shape[0] for s in score_parts} | {i.shape[0] for i in id_parts}
    if len(rows) != 1 or any(s.shape != i.shape for s, i in zip(score_parts, id_parts, strict=True)):
        raise ValueError("every part must have scores and ids of the same (nq, k_i) shape")
    scores = np.concatenate(score_parts, axis=1)
    ids = np.concatenate(id_parts, axis=1)
    n_rows, width = scores.shape
    keys = metric.sort_key(scores)
    order = np.argsort(keys, axis=1, kind="stable")
    keys = np.take_along_axis(keys, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    if dedup and width > 1:
        keys = _drop_duplicates(keys, ids)
        order = np.argsort(keys, axis=1, kind="stable")
        keys = np.take_along_axis(keys, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        ids = np.take_along_axis(ids, order, axis=1)
    take = min(k, width)
    out_scores = np.full((n_rows, k), metric.pad_score, dtype=np.float32)
    out_ids = np.full((n_rows, k), pad_id, dtype=np.result_type(ids.dtype, np.asarray(pad_id).dtype))
    valid = np.isfinite(keys[:, :take])
    out_scores[:, :take] = np.where(valid, scores[:, :take], metric.pad_score)
    out_ids[:, :take] = np.where(valid, ids[:, :take], pad_id)
    return out_scores, out_ids


def _drop_duplicates(keys: npt.NDArray[np.float64], ids: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Keys with every repeat of an id (after its first, best, occurrence in the row) set to +inf."""
    if ids.dtype.kind in "iub":
        codes = ids.astype(np.int64)
    else:
        _, inverse = np.unique(ids.ravel(), return_inverse=True)
        codes = inverse.reshape(ids.shape).astype(np.int64)
    position = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    by_id = np.lexsort((position, codes), axis=1)
    sorted_codes = np.take_along_axis(codes, by_id, axis=1)
    repeat = np.zeros(ids.shape, dtype=np.bool_)
    repeat[:, 1:] = sorted_codes[:, 1:] == sorted_codes[:, :-1]
    is_repeat = np.zeros(ids.shape, dtype=np.bool_)
    np.put_along_axis(is_repeat, by_id, repeat, axis=1)
    out = keys.copy()
    out[is_repeat] = np.inf
    return out
