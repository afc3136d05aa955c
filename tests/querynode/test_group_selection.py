"""index/grouping.select_groups: the selection it proves exact is the exact grouping of all hits."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pelagos.index.grouping import group_codes, select_groups


def naive(keys: np.ndarray, groups: np.ndarray, limit: int, size: int) -> list[int]:
    """Indices of the exact grouping of one query's hits, by group then best first."""
    chosen: dict[int, list[int]] = {}
    for j in np.argsort(keys, kind="stable"):
        members = chosen.setdefault(int(groups[j]), [])
        if len(members) < size:
            members.append(int(j))
    return [j for members in list(chosen.values())[:limit] for j in members]


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    parts=st.integers(1, 4),
    rows=st.integers(0, 60),
    n_groups=st.integers(1, 8),
    limit=st.integers(1, 5),
    size=st.integers(1, 6),
    nq=st.integers(1, 3),
)
def test_a_proven_selection_is_the_exact_grouping(
    seed: int, parts: int, rows: int, n_groups: int, limit: int, size: int, nq: int
) -> None:
    rng = np.random.default_rng(seed)
    # every part holds `rows` hits per query; it gives only its best `shown` ones, as a segment would
    keys = rng.permutation(nq * parts * rows).reshape(nq, parts, rows).astype(np.float64)
    groups = rng.integers(0, n_groups, (nq, parts, rows))
    shown = rng.integers(0, rows + 1, parts)
    qidx, ks, gs, origin = [], [], [], []
    unseen = np.full(nq, np.inf)
    for q in range(nq):
        for p in range(parts):
            order = np.argsort(keys[q, p])[: shown[p]]
            qidx += [q] * len(order)
            ks += keys[q, p, order].tolist()
            gs += groups[q, p, order].tolist()
            origin += [(p, int(j)) for j in order]
            if shown[p] < rows:
                unseen[q] = min(unseen[q], keys[q, p, order[-1]] if len(order) else -np.inf)
    sel = select_groups(
        np.array(qidx, np.int64), np.array(ks), np.array(gs, np.int64), nq, limit, size, unseen
    )
    assert int(sel.topks.sum()) == len(sel.chosen)
    bounds = np.concatenate([[0], np.cumsum(sel.topks)])
    for q in range(nq):
        if not sel.proven[q]:
            continue
        got = [origin[i] for i in sel.chosen[bounds[q] : bounds[q + 1]]]
        flat_keys, flat_groups = keys[q].reshape(-1), groups[q].reshape(-1)
        want = [divmod(j, rows) for j in naive(flat_keys, flat_groups, limit, size)]
        assert got == [(p, j) for p, j in want]
    if (shown == rows).all():
        assert sel.proven.all()


def test_group_codes_are_shared_across_chunks_and_null_is_a_group() -> None:
    import pyarrow as pa

    codes = group_codes(pa.chunked_array([pa.array(["a", None, "b"]), pa.array(["b", "a", None])]))
    assert codes[0] == codes[4] and codes[2] == codes[3] and codes[1] == codes[5]
    assert len(set(codes.tolist())) == 3


def test_the_selection_bound_covers_the_groups_left_out() -> None:
    keys = np.array([1.0, 2.0, 3.0, 4.0])
    groups = np.array([0, 1, 2, 2], np.int64)
    sel = select_groups(np.zeros(4, np.int64), keys, groups, 1, 2, 1, np.full(1, np.inf))
    assert sel.chosen.tolist() == [0, 1] and sel.proven.all()
    assert sel.bound.tolist() == [3.0]  # group 2 was left out with its best hit at 3.0
    assert sel.chosen_group_rank.tolist() == [0, 1]
