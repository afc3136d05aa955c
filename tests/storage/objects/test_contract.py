"""The ObjectStore contract, run on S3 (weed mini) and on local disk alike.

No test stores a key under another object's key ("a" and "a/b"): S3 allows
it, local disk refuses it (see test_local.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pelagos.errors import ObjectNotFoundError, ObjectStoreError
from pelagos.storage.objects.keys import InvalidObjectArgumentError
from pelagos.storage.objects.protocol import ObjectInfo, ObjectStore
from tests.storage.objects.conftest import BIG_SIZE, file_sha256, sha256


async def test_put_get_stat_exists(store: ObjectStore) -> None:
    assert not await store.exists("seg/1")
    await store.put("seg/1", b"hello world")
    assert await store.get("seg/1") == b"hello world"
    assert await store.stat("seg/1") == ObjectInfo(key="seg/1", size=11)
    assert await store.exists("seg/1")
    assert not await store.exists("seg/2")
    assert not await store.exists("seg")  # a "directory" is not an object


async def test_empty_object(store: ObjectStore) -> None:
    await store.put("empty", b"")
    assert await store.get("empty") == b""
    assert await store.stat("empty") == ObjectInfo(key="empty", size=0)
    assert await store.get_range("empty", 0, 10) == b""
    assert [info.key for info in await store.list()] == ["empty"]


async def test_overwrite_replaces_whole_object(store: ObjectStore) -> None:
    await store.put("k", b"a much longer first version")
    await store.put("k", b"short")
    assert await store.get("k") == b"short"
    assert (await store.stat("k")).size == 5


async def test_list_is_recursive_sorted_and_by_string_prefix(store: ObjectStore) -> None:
    assert await store.list() == []
    keys = ["b/2", "a/b/c", "a/bc", "a/bd/e", "a/c/d/e", "z", "a0"]
    for i, key in enumerate(keys):
        await store.put(key, b"x" * i)
    listed = await store.list()
    assert [info.key for info in listed] == sorted(keys)
    assert {info.key: info.size for info in listed} == {key: i for i, key in enumerate(keys)}
    assert [info.key for info in await store.list("a/b")] == ["a/b/c", "a/bc", "a/bd/e"]
    assert [info.key for info in await store.list("a/")] == ["a/b/c", "a/bc", "a/bd/e", "a/c/d/e"]
    assert [info.key for info in await store.list("a/c/d/")] == ["a/c/d/e"]
    assert await store.list("nothing/") == []
    assert await store.list("a/c/d/e/") == []


async def test_delete_and_delete_prefix(store: ObjectStore) -> None:
    for key in ["c/1/x", "c/1/y", "c/1/z/w", "c/10/x", "c/2/x"]:
        await store.put(key, b"data")
    await store.delete("c/1/x")
    await store.delete("c/1/x")  # absent: no error
    await store.delete("never/was")
    assert not await store.exists("c/1/x")
    assert await store.delete_prefix("c/1/") == 2
    assert [info.key for info in await store.list()] == ["c/10/x", "c/2/x"]
    assert await store.delete_prefix("c/1/") == 0
    assert await store.delete_prefix("c/") == 2
    assert await store.list() == []


async def test_get_range(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4
    await store.put("r", data)
    assert await store.get_range("r", 0, 10) == data[:10]
    assert await store.get_range("r", 100, 50) == data[100:150]
    assert await store.get_range("r", 1000, 100) == data[1000:]  # fewer at the end
    assert await store.get_range("r", 1023, 1) == data[1023:]
    assert await store.get_range("r", 1024, 10) == b""  # at the end
    assert await store.get_range("r", 5000, 10) == b""  # past the end
    assert await store.get_range("r", 7, 0) == b""
    with pytest.raises(ObjectNotFoundError, match="'missing'"):
        await store.get_range("missing", 0, 10)
    with pytest.raises(ObjectNotFoundError, match="'missing'"):
        await store.get_range("missing", 0, 0)
    with pytest.raises(InvalidObjectArgumentError):
        await store.get_range("r", -1, 10)
    with pytest.raises(InvalidObjectArgumentError):
        await store.get_range("r", 0, -1)


@pytest.mark.parametrize(
    "key",
    [
        "a/b/c/d/e/f/g",
        "unicode/日本語/ünïcödé/😀",
        "spaces and+plus=eq&amp?q#frag%20",
        "dots/.hidden/file.v1.parquet",
        "x" * 200 + "/" + "y" * 200,
    ],
)
async def test_keys_with_slashes_and_unicode(store: ObjectStore, key: str) -> None:
    payload = key.encode() + b"\x00\xff"
    await store.put(key, payload)
    assert await store.get(key) == payload
    assert await store.stat(key) == ObjectInfo(key=key, size=len(payload))
    assert [info.key for info in await store.list()] == [key]
    first_part = key.split("/")[0] + "/" if "/" in key else key[:3]
    assert [info.key for info in await store.list(first_part)] == [key]
    await store.delete(key)
    assert await store.list() == []


async def test_missing_key_is_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError, match="'no/such/key'"):
        await store.get("no/such/key")
    with pytest.raises(ObjectNotFoundError, match="'no/such/key'"):
        await store.stat("no/such/key")
    dest = tmp_path / "out" / "file"
    with pytest.raises(ObjectNotFoundError, match="'no/such/key'"):
        await store.get_file("no/such/key", dest)
    assert not dest.exists()


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "", "a/", "nul\x00", ".pelagos-tmp-1"]
)
async def test_bad_key_is_refused(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidObjectArgumentError):
        await store.put(key, b"evil")
    with pytest.raises(InvalidObjectArgumentError):
        await store.get(key)
    with pytest.raises(InvalidObjectArgumentError):
        await store.delete(key)
    assert await store.list() == []
    assert not (tmp_path / "x").exists()


async def test_bad_prefix_is_refused(store: ObjectStore) -> None:
    for prefix in ["../", "/abs", "a//", "a/../b"]:
        with pytest.raises(InvalidObjectArgumentError):
            await store.list(prefix)
        with pytest.raises(InvalidObjectArgumentError):
            await store.delete_prefix(prefix)


async def test_big_object_via_bytes(store: ObjectStore, big_blob: bytes) -> None:
    await store.put("big/bytes", big_blob)
    assert await store.stat("big/bytes") == ObjectInfo(key="big/bytes", size=BIG_SIZE)
    got = await store.get("big/bytes")
    assert len(got) == BIG_SIZE
    assert sha256(got) == sha256(big_blob)
    # a range across a 16 MiB part boundary
    start = 16 * 1024 * 1024 - 100
    assert await store.get_range("big/bytes", start, 200) == big_blob[start : start + 200]


async def test_big_object_via_files(
    store: ObjectStore, big_file: Path, big_blob: bytes, tmp_path: Path
) -> None:
    await store.put_file("big/file", big_file)
    assert (await store.stat("big/file")).size == BIG_SIZE
    dest = tmp_path / "down" / "loaded.bin"
    await store.get_file("big/file", dest)
    assert file_sha256(dest) == sha256(big_blob)
    assert [p.name for p in dest.parent.iterdir()] == ["loaded.bin"]  # no temporary file left


async def test_get_file_replaces_existing_file(store: ObjectStore, tmp_path: Path) -> None:
    await store.put("f", b"new content")
    dest = tmp_path / "existing"
    dest.write_bytes(b"old content that is longer")
    await store.get_file("f", dest)
    assert dest.read_bytes() == b"new content"


async def test_put_file_of_missing_local_file(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectStoreError, match="does not exist"):
        await store.put_file("k", tmp_path / "absent")
    assert not await store.exists("k")


async def test_readers_never_see_partial_overwrites(store: ObjectStore) -> None:
    """Readers racing a writer that keeps replacing the object see one whole
    version or the other, never a mix or a truncated object."""
    versions = [bytes([v]) * (256 * 1024 + v * 4096) for v in range(4)]
    await store.put("hot", versions[0])
    seen: set[int] = set()

    async def write() -> None:
        for i in range(1, 25):
            await store.put("hot", versions[i % len(versions)])

    async def read() -> None:
        for _ in range(25):
            data = await store.get("hot")
            assert data in versions, f"partial object of {len(data)} bytes"
            seen.add(data[0])

    await asyncio.gather(write(), read(), read(), read())
    assert await store.get("hot") == versions[24 % len(versions)]
    assert seen  # the readers did read
