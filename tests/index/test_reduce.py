"""reduce_topk against a naive per-query merge, for both score directions, with and without dedup."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pelagos.index import reduce_topk

METRICS = ("L2", "IP", "HAMMING", "COSINE")


def _naive(parts: list[tuple[np.ndarray, np.ndarray]], k: int, metric: str, dedup: bool) -> list[list[Any]]:
    larger = metric in ("IP", "COSINE")
    out = []
    for row in range(parts[0][0].shape[0]):
        entries = [
            (float(s[row, c]), i[row, c])
            for s, i in parts
            for c in range(s.shape[1])
            if np.isfinite(s[row, c])
        ]
        entries.sort(key=lambda e: -e[0] if larger else e[0])  # stable: part order, then column
        seen: set[Any] = set()
        kept = []
        for score, ident in entries:
            if dedup and ident in seen:
                continue
            seen.add(ident)
            kept.append((score, ident))
        out.append(kept[:k])
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[np.ndarray, np.ndarray]], int, str, bool]:
    metric = draw(st.sampled_from(METRICS))
    dedup = draw(st.booleans())
    nq = draw(st.integers(1, 4))
    k = draw(st.integers(1, 8))
    pad = np.inf if metric not in ("IP", "COSINE") else -np.inf
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        width = draw(st.integers(0, 6))
        scores = np.array(
            draw(
                st.lists(
                    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5, -1.0, pad]),
                    min_size=nq * width,
                    max_size=nq * width,
                )
            ),
            dtype=np.float32,
        ).reshape(nq, width)
        # with dedup, ids repeat across parts; without, ids are unique as global primary keys would be
        pool = range(6) if dedup else range(1000)
        ids = np.array(
            draw(st.lists(st.sampled_from(pool), min_size=nq * width, max_size=nq * width, unique=not dedup)),
            dtype=np.int64,
        ).reshape(nq, width)
        ids[~np.isfinite(scores)] = -1
        parts.append((scores, ids))
    return parts, k, metric, dedup


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_reduce_matches_naive_merge(case: tuple[list[tuple[np.ndarray, np.ndarray]], int, str, bool]) -> None:
    parts, k, metric, dedup = case
    scores, ids = reduce_topk(parts, k, metric, dedup=dedup)
    expected = _naive(parts, k, metric, dedup)
    pad = np.inf if metric not in ("IP", "COSINE") else -np.inf
    assert scores.shape == ids.shape == (parts[0][0].shape[0], k)
    for row, kept in enumerate(expected):
        n = len(kept)
        assert scores[row, :n].tolist() == [s for s, _ in kept]
        assert ids[row, :n].tolist() == [i for _, i in kept]
        assert (scores[row, n:] == pad).all() and (ids[row, n:] == -1).all()


def test_string_primary_keys_and_dedup() -> None:
    a = (np.array([[0.1, 0.4]], np.float32), np.array([["x", "y"]], dtype=object))
    b = (np.array([[0.2, 0.3]], np.float32), np.array([["y", "z"]], dtype=object))
    scores, ids = reduce_topk([a, b], 3, "L2", dedup=True, pad_id="")
    assert ids.tolist() == [["x", "y", "z"]]
    np.testing.assert_allclose(scores, [[0.1, 0.2, 0.3]])
    scores, ids = reduce_topk([a, b], 5, "IP", pad_id="")
    assert ids.tolist() == [["y", "z", "y", "x", ""]]


def test_segment_then_shard_merge_equals_one_merge() -> None:
    rng = np.random.default_rng(0)
    parts = []
    for seg in range(6):
        s = np.sort(rng.random((3, 5)).astype(np.float32), axis=1)
        parts.append((s, (np.arange(15).reshape(3, 5) + 100 * seg).astype(np.int64)))
    once = reduce_topk(parts, 5, "L2")
    shards = [reduce_topk(parts[:3], 5, "L2"), reduce_topk(parts[3:], 5, "L2")]
    twice = reduce_topk(shards, 5, "L2")
    np.testing.assert_array_equal(once[0], twice[0])
    np.testing.assert_array_equal(once[1], twice[1])


def test_no_parts_and_bad_shapes() -> None:
    scores, ids = reduce_topk([], 3, "COSINE", nq=2)
    assert ids.tolist() == [[-1] * 3] * 2 and (scores == -np.inf).all()
    with pytest.raises(ValueError, match="needs nq"):
        reduce_topk([], 3, "L2")
    with pytest.raises(ValueError, match="same"):
        reduce_topk([(np.zeros((2, 3), np.float32), np.zeros((2, 2), np.int64))], 3, "L2")
