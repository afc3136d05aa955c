"""What only the local store has: files, directories and temporary files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pelagos.errors import ObjectStoreError
from pelagos.storage.objects.keys import TEMP_MARKER
from pelagos.storage.objects.local import LocalObjectStore


async def test_objects_are_files_under_root(local_store: LocalObjectStore) -> None:
    await local_store.put("a/b/c", b"data")
    assert (local_store.root / "a" / "b" / "c").read_bytes() == b"data"


async def test_no_temporary_file_is_left_or_listed(local_store: LocalObjectStore, tmp_path: Path) -> None:
    await local_store.put("d/k", b"one")
    await local_store.put("d/k", b"two")
    source = tmp_path / "src"
    source.write_bytes(b"three")
    await local_store.put_file("d/f", source)
    assert sorted(p.name for p in (local_store.root / "d").iterdir()) == ["f", "k"]
    # a temporary file left by a crash is invisible
    (local_store.root / "d" / f"{TEMP_MARKER}crashed").write_bytes(b"partial")
    assert [info.key for info in await local_store.list()] == ["d/f", "d/k"]


async def test_delete_prunes_empty_directories(local_store: LocalObjectStore) -> None:
    await local_store.put("x/y/z/obj", b"1")
    await local_store.put("x/other", b"2")
    await local_store.delete("x/y/z/obj")
    assert not (local_store.root / "x" / "y").exists()
    assert (local_store.root / "x" / "other").exists()
    assert await local_store.delete_prefix("x/") == 1
    assert list(local_store.root.iterdir()) == []
    assert local_store.root.is_dir()


async def test_object_and_directory_of_same_name_conflict(local_store: LocalObjectStore) -> None:
    await local_store.put("a", b"object")
    with pytest.raises(ObjectStoreError, match="'a' is an object"):
        await local_store.put("a/b", b"nested")
    await local_store.put("d/e", b"nested")
    with pytest.raises(ObjectStoreError, match="directory of other objects"):
        await local_store.put("d", b"object")
    assert await local_store.get("a") == b"object"
    assert await local_store.get("d/e") == b"nested"
    assert [info.key for info in await local_store.list()] == ["a", "d/e"]


async def test_keys_cannot_escape_root(local_store: LocalObjectStore, tmp_path: Path) -> None:
    for key in ["../escape", "a/../../escape", "/tmp/escape"]:
        with pytest.raises(ObjectStoreError):
            await local_store.put(key, b"evil")
    assert not (tmp_path / "escape").exists()


async def test_reopen_sees_objects(tmp_path: Path) -> None:
    first = LocalObjectStore(tmp_path / "store")
    await first.put("k/1", b"persisted")
    await first.close()
    second = LocalObjectStore(tmp_path / "store")
    assert await second.get("k/1") == b"persisted"
