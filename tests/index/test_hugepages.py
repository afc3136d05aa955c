"""Huge-page advice for faiss indexes: it never changes an answer, and the kernel takes it here."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pelagos.index import IndexSpec, create_index
from pelagos.index.hugepages import HUGE_PAGE, advise_index, advise_region


@pytest.mark.parametrize("kind", ["HNSW", "FLAT"])
def test_a_loaded_index_answers_the_same(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 64)).astype(np.float32)  # 5 MB of vectors: whole huge pages
    params = {"M": "8", "efConstruction": "40"} if kind == "HNSW" else None
    spec = IndexSpec.parse(kind, "L2", params, 64, False)
    index = create_index(spec)
    index.build(x)
    q = rng.standard_normal((5, 64)).astype(np.float32)
    before = index.search(q, 10)
    loaded = type(index).load(spec, index.serialize())  # type: ignore[attr-defined]
    after = loaded.search(q, 10)
    assert np.array_equal(before[1], after[1]) and np.array_equal(before[0], after[0])


def test_regions_smaller_than_a_huge_page_are_left_alone() -> None:
    buf = np.zeros(HUGE_PAGE // 2, np.uint8)
    assert not advise_region(buf.ctypes.data, buf.nbytes)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages are Linux's")
def test_linux_takes_the_advice_for_a_big_index() -> None:
    spec = IndexSpec.parse("FLAT", "L2", None, 128, False)
    index = create_index(spec)
    index.build(np.ones((40_000, 128), np.float32))  # 20 MB
    assert advise_index(index._index) >= 8 * HUGE_PAGE  # type: ignore[attr-defined]
