"""Object-key layout: stable spellings, unique keys, refused bad IDs."""

from __future__ import annotations

import itertools

import pytest

from pelagos.errors import InvalidArgumentError
from pelagos.segments import layout


def test_keys_are_stable() -> None:
    # Stored metadata refers to these exact strings: changing one breaks every existing segment.
    assert layout.collection_prefix(7) == "collections/7/"
    assert layout.partition_prefix(7, 3) == "collections/7/segments/3/"
    assert layout.segment_prefix(7, 3, 42) == "collections/7/segments/3/42/"
    assert layout.manifest_key(7, 3, 42) == "collections/7/segments/3/42/manifest.json"
    assert layout.column_key(7, 3, 42, 101) == "collections/7/segments/3/42/columns/101.arrow"
    assert layout.column_key(7, 3, 42, "_ts") == "collections/7/segments/3/42/columns/n-_ts.arrow"
    assert layout.column_key(7, 3, 42, "$meta") == "collections/7/segments/3/42/columns/n-%24meta.arrow"
    assert layout.delta_key(7, 3, 42, 9) == "collections/7/segments/3/42/deltas/9.arrow"
    assert layout.index_prefix(7, 42, 5, 11) == "collections/7/indexes/42/5/11/"
    assert layout.index_key(7, 42, 5, 11) == "collections/7/indexes/42/5/11/index"
    assert layout.index_key(7, 42, 5, 11, "ivf.centroids") == "collections/7/indexes/42/5/11/ivf.centroids"


def test_keys_are_unique_across_kinds_and_ids() -> None:
    ids = [0, 1, 10, 2**62]
    keys: list[str] = []
    for c, p, s, x in itertools.product(ids, repeat=4):
        keys.append(layout.manifest_key(c, p, s))
        keys.append(layout.column_key(c, p, s, x or "x"))
        keys.append(layout.column_key(c, p, s, str(x)))  # a name that looks like an ID
        keys.append(layout.delta_key(c, p, s, x))
        keys.append(layout.index_key(c, s, p, x))
    unique = set(keys)
    # manifest keys ignore x (so repeat); every other key is distinct
    expected = len(ids) ** 3 + 2 * len(ids) ** 4 + len(ids) ** 4 + len(ids) ** 4
    assert len(unique) == expected
    for k in unique:
        assert not k.startswith("/") and "//" not in k


def test_segment_objects_live_under_their_prefixes() -> None:
    seg = layout.segment_prefix(1, 2, 3)
    assert seg.startswith(layout.partition_prefix(1, 2))
    assert layout.partition_prefix(1, 2).startswith(layout.collection_prefix(1))
    for key in (layout.manifest_key(1, 2, 3), layout.column_key(1, 2, 3, 100), layout.delta_key(1, 2, 3, 4)):
        assert key.startswith(seg)
    assert layout.index_key(1, 3, 4, 5).startswith(layout.collection_prefix(1))
    assert not layout.index_key(1, 3, 4, 5).startswith(seg)
    # segment 3 must not be a prefix match of segment 30
    assert not layout.manifest_key(1, 2, 30).startswith(seg)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "7", None])
def test_bad_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        layout.segment_prefix(1, 2, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        layout.delta_key(1, 2, 3, bad)  # type: ignore[arg-type]


def test_bad_column_and_index_names_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        layout.column_key(1, 2, 3, "")
    with pytest.raises(InvalidArgumentError, match="unassigned"):
        layout.column_key(1, 2, 3, 0)
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(InvalidArgumentError):
            layout.index_key(1, 2, 3, 4, bad)
