"""Grouping search: the best `limit` groups of up to `group_size` hits, with a proof of exactness.

Candidates are flat (query, sort key, group code) triples gathered from
several *parts* (the segments of a shard, or the shards of a collection).
Each part also gives, per query, an *unseen bound*: every hit of the part
that is not among its candidates has a sort key >= the bound, or belongs to
a group of which the part gave `group_size` candidates at least as good.
(A part that gave all it has has bound +inf.)

Invariants:
- Sort keys are MetricType.sort_key values: smaller is better, finite.
- A group's rank is the rank of its best hit (ties: smaller group code);
  hits within a group are best first; at most `group_size` per group.
- The selection is *proven* for a query when no unseen hit could change it:
  every part gave everything (the bound is +inf), or `limit` groups were
  found, each with `group_size` hits none worse than the smallest bound.
  Ties at the bound are interchangeable, so equality still proves.
- The selection is itself a part for the next merge up: its bound is the
  smaller of the parts' bound and the best key of the first group left out.
- No Python loop over hits, groups or queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Ids = npt.NDArray[np.int64]
Keys = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class GroupSelection:
    #: indices of the chosen candidates, by query, then group rank, then best first
    chosen: Ids
    #: the rank of each chosen hit's group within its query (0: the best group)
    chosen_group_rank: Ids
    #: hits chosen per query
    topks: Ids
    #: groups chosen per query
    group_counts: Ids
    #: per query: no unseen hit can change the selection
    proven: Flags
    #: per query: the unseen bound of the selection seen as a part
    bound: Keys


def select_groups(
    qidx: Ids,
    keys: Keys,
    groups: Ids,
    nq: int,
    limit: int,
    group_size: int,
    unseen: Keys,
) -> GroupSelection:
    """Choose, per query, the best `limit` groups with their best `group_size` hits each."""
    n = len(qidx)
    inf = np.full(nq, np.inf)
    if n == 0:
        zeros = np.zeros(nq, dtype=np.int64)
        none = np.zeros(0, np.int64)
        return GroupSelection(none, none, zeros, zeros, np.isposinf(unseen), unseen.copy())
    order = np.lexsort((keys, groups, qidx))  # by query, group, best first
    q_s, g_s, k_s = qidx[order], groups[order], keys[order]
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (q_s[1:] != q_s[:-1]) | (g_s[1:] != g_s[:-1])
    run_of = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    rank_in_group = np.arange(n) - run_start[run_of]
    run_q, run_best, run_group = q_s[run_start], k_s[run_start], g_s[run_start]
    run_len = np.diff(np.append(run_start, n))
    run_kept = np.minimum(run_len, group_size)
    # rank the groups of each query by their best hit
    g_order = np.lexsort((run_group, run_best, run_q))
    gq = run_q[g_order]
    g_first = np.searchsorted(gq, np.arange(nq))
    group_rank = np.empty(len(run_start), dtype=np.int64)
    group_rank[g_order] = np.arange(len(g_order)) - g_first[gq]
    selected = group_rank < limit
    hit_rows = np.flatnonzero((rank_in_group < group_size) & selected[run_of])
    out = np.lexsort((k_s[hit_rows], group_rank[run_of[hit_rows]], q_s[hit_rows]))
    chosen = order[hit_rows[out]]
    topks = np.bincount(q_s[hit_rows], minlength=nq).astype(np.int64)
    group_counts = np.bincount(run_q[selected], minlength=nq).astype(np.int64)
    # proof: every selected group full and no kept hit worse than the unseen bound
    short = np.bincount(run_q[selected & (run_kept < group_size)], minlength=nq) > 0
    worst_kept = np.full(nq, -np.inf)
    last_key = k_s[run_start + run_kept - 1]
    np.maximum.at(worst_kept, run_q[selected], last_key[selected])
    proven = np.isposinf(unseen) | ((group_counts == limit) & ~short & (worst_kept <= unseen))
    first_out = inf.copy()
    left_out = group_rank == limit
    first_out[run_q[left_out]] = run_best[left_out]
    chosen_group_rank = group_rank[run_of[hit_rows[out]]]
    return GroupSelection(
        chosen, chosen_group_rank, topks, group_counts, proven, np.minimum(unseen, first_out)
    )


def group_codes(values: pa.Array | pa.ChunkedArray) -> Ids:
    """Equal group values get equal codes (null is a group of its own)."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
