"""What only the local store has: files, directories and temporary files."""

from __future__ import annotations

import errno
import os
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


async def test_put_file_and_get_file_share_the_file_instead_of_copying(
    local_store: LocalObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "segment"
    source.write_bytes(b"columns" * 1000)
    await local_store.put_file("s/cols", source)
    stored = local_store.root / "s" / "cols"
    assert stored.stat().st_ino == source.stat().st_ino  # one file, two names: no copy
    source.unlink()  # what a data node does with its scratch file after the upload
    assert await local_store.get("s/cols") == b"columns" * 1000

    download = tmp_path / "down" / "cols"
    await local_store.get_file("s/cols", download)
    assert download.stat().st_ino == stored.stat().st_ino
    # a later put replaces the object whole: the file downloaded before keeps what it had
    await local_store.put("s/cols", b"new")
    assert download.read_bytes() == b"columns" * 1000
    assert await local_store.get("s/cols") == b"new"
    download.unlink()
    assert await local_store.get("s/cols") == b"new"


async def test_files_are_copied_where_they_cannot_be_linked(
    local_store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)  # as from a tmpfs scratch dir to a disk store
    source = tmp_path / "index"
    source.write_bytes(b"graph")
    await local_store.put_file("i/x", source)
    assert (local_store.root / "i" / "x").stat().st_ino != source.stat().st_ino
    download = tmp_path / "x"
    await local_store.get_file("i/x", download)
    assert download.read_bytes() == b"graph"
    assert download.stat().st_ino != (local_store.root / "i" / "x").stat().st_ino
    assert sorted(p.name for p in (local_store.root / "i").iterdir()) == ["x"]


async def test_put_file_of_a_missing_file_names_it(local_store: LocalObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectStoreError, match="does not exist"):
        await local_store.put_file("m/x", tmp_path / "gone")
    assert await local_store.list() == []
