"""The object store on local disk (standalone mode): one file per object.

Key "a/b/c" is the file `root/a/b/c`; keys follow the rules of keys.py, so
no key can reach outside `root`.

Invariants:
- a put is atomic and durable: data goes to a temporary file in the target
  directory (named with keys.TEMP_MARKER, which no key may use), is
  fsynced, renamed over the target with os.replace, and the directory is
  fsynced; readers see the old object or the whole new one;
- new directories are fsynced into their parents; directories left empty by
  a delete are removed, so only objects occupy the tree;
- a key cannot be both an object and a directory of other objects ("a" and
  "a/b"): S3 allows it, local disk cannot, and such a put is refused with
  an ObjectStoreError naming both keys;
- get / get_range / stat of a missing key raise ObjectNotFoundError;
  delete of a missing key does nothing;
- list is recursive, sorted by key, by string prefix as in S3, and never
  shows temporary files (a crash can leave some behind; they are inert);
- put_file and get_file share the file's storage with the object (a hard
  link) where both are on one file system, and copy it otherwise: an object
  file is never written after its put (a put replaces it whole), so a file
  handed to put_file or received from get_file may be read, renamed or
  deleted, never written into. A copy costs a fresh page-cache page per
  4 KiB, which on a VM that hands freed memory back to its host is ~30 us
  each: ~0.4 s for the 51 MB of a 100k x 128 segment, paid at flush, at the
  index build's download, its upload and the query node's download;
- blocking file I/O runs in worker threads (asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pelagos.errors import ObjectNotFoundError, ObjectStoreError
from pelagos.storage.objects.keys import TEMP_MARKER, validate_key, validate_prefix, validate_range
from pelagos.storage.objects.protocol import ObjectInfo

_COPY_CHUNK = 8 * 1024 * 1024
# A concurrent delete may prune a directory between our mkdir and our write.
_PUT_ATTEMPTS = 3


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(directory: Path) -> Path:
    return directory / f"{TEMP_MARKER}{uuid.uuid4().hex}"


# link(2) errors that mean "not here, copy instead": another file system, too many links, a file
# system without hard links (vfat) or a mount that forbids them
_NO_LINK = frozenset({errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP})


def _linked(source: Path, link: Path) -> bool:
    """Hard-link `source` as `link`; False where the file system cannot (the caller copies)."""
    try:
        os.link(source, link)
    except OSError as exc:
        if exc.errno in _NO_LINK:
            return False
        raise
    return True


def _missing_source(key: str, source: Path) -> ObjectStoreError:
    return ObjectStoreError(f"cannot upload {source} as {key!r}: the local file does not exist")


class LocalObjectStore:
    """Objects as files under `root` (created if missing)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).absolute()
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ObjectStoreError(
                f"cannot create the object store directory {self._root}: {exc.strerror}; "
                f"check the path and its permissions"
            ) from exc

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self._root)!r})"

    async def __aenter__(self) -> LocalObjectStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- protocol -------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        view = memoryview(data)

        def write(f: BinaryIO) -> None:
            f.write(view)

        await asyncio.to_thread(self._atomic_write, key, path, write)

    async def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        source = Path(path)

        def copy(f: BinaryIO) -> None:
            try:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, f, _COPY_CHUNK)
            except FileNotFoundError as exc:
                raise _missing_source(key, source) from exc

        def put() -> None:
            if not self._link_in(key, source, target):
                self._atomic_write(key, target, copy)

        await asyncio.to_thread(put)

    async def get(self, key: str) -> bytes:
        path = self._path(key)

        def read() -> bytes:
            with self._open_object(key, path) as f:
                return f.read()

        return await asyncio.to_thread(read)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        validate_range(offset, length)
        path = self._path(key)

        def read() -> bytes:
            with self._open_object(key, path) as f:
                if length == 0:
                    return b""
                f.seek(offset)
                return f.read(length)

        return await asyncio.to_thread(read)

    async def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        dest = Path(path)

        def copy() -> None:
            with self._open_object(key, source) as src:
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = _temp_name(dest.parent)
                    try:
                        if not _linked(source, tmp):
                            with open(tmp, "xb") as out:
                                shutil.copyfileobj(src, out, _COPY_CHUNK)
                        os.replace(tmp, dest)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            tmp.unlink()
                        raise
                except OSError as exc:
                    raise ObjectStoreError(
                        f"cannot download {key!r} to {dest}: {exc.strerror or exc}"
                    ) from exc

        await asyncio.to_thread(copy)

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)

        def stat() -> ObjectInfo:
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise self._not_found(key) from exc
            except OSError as exc:
                raise self._io_error("stat", key, exc) from exc
            if not path.is_file():
                raise self._not_found(key)
            return ObjectInfo(key=key, size=st.st_size)

        return await asyncio.to_thread(stat)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await asyncio.to_thread(path.is_file)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._delete, key, path)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)

        def delete_all() -> int:
            deleted = 0
            for info in self._list(prefix):
                if self._delete(info.key, self._root / info.key):
                    deleted += 1
            return deleted

        return await asyncio.to_thread(delete_all)

    async def close(self) -> None:
        return None

    # --- helpers (run in worker threads) --------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self._root.joinpath(*key.split("/"))

    def _not_found(self, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"object {key!r} does not exist in the local object store {self._root}")

    def _io_error(self, op: str, key: str, exc: OSError) -> ObjectStoreError:
        return ObjectStoreError(
            f"{op} of object {key!r} in the local object store {self._root} failed: {exc.strerror or exc}"
        )

    def _open_object(self, key: str, path: Path) -> BinaryIO:
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise self._not_found(key) from exc
        except OSError as exc:
            raise self._io_error("read", key, exc) from exc

    def _make_parents(self, key: str, directory: Path) -> None:
        """Create `directory` (under root) one level at a time, fsyncing each
        new directory into its parent."""
        missing: builtins.list[Path] = []
        current = directory
        while current != self._root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for new_dir in reversed(missing):
            try:
                new_dir.mkdir()
            except FileExistsError:
                if not new_dir.is_dir():
                    raise self._conflict(key, new_dir) from None
                continue
            except NotADirectoryError:
                raise self._conflict(key, new_dir.parent) from None
            _fsync_dir(new_dir.parent)

    def _conflict(self, key: str, path: Path) -> ObjectStoreError:
        other = path.relative_to(self._root).as_posix()
        return ObjectStoreError(
            f"cannot store {key!r}: {other!r} is an object, and on local disk a key cannot be both "
            f"an object and a directory of other objects; choose keys that do not nest under objects"
        )

    def _open_temp(self, key: str, path: Path) -> tuple[Path, int]:
        """Create the parents of `path` and an empty temporary file beside it."""
        for _ in range(_PUT_ATTEMPTS):
            try:
                self._make_parents(key, path.parent)
                tmp = _temp_name(path.parent)
                return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                continue  # a concurrent delete pruned the directory: create it again
            except NotADirectoryError:
                raise self._conflict(key, self._first_file_ancestor(path)) from None
            except OSError as exc:
                raise self._io_error("write", key, exc) from exc
        raise ObjectStoreError(f"cannot store {key!r}: its directory keeps disappearing under {self._root}")

    def _link_temp(self, key: str, source: Path, path: Path) -> Path | None:
        """A temporary hard link to `source` beside `path`; None where it cannot be linked."""
        for _ in range(_PUT_ATTEMPTS):
            self._make_parents(key, path.parent)
            tmp = _temp_name(path.parent)
            try:
                return tmp if _linked(source, tmp) else None
            except FileNotFoundError:
                if not source.exists():
                    raise _missing_source(key, source) from None
                continue  # a concurrent delete pruned the directory: create it again
        raise ObjectStoreError(f"cannot store {key!r}: its directory keeps disappearing under {self._root}")

    def _link_in(self, key: str, source: Path, path: Path) -> bool:
        """Store `source` as `path` by a hard link, durably; False when it cannot be linked."""
        tmp = self._link_temp(key, source, path)
        if tmp is None:
            return False

        def sync() -> None:  # the caller wrote it without syncing: the object must be durable
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        self._commit(key, tmp, path, sync)
        return True

    def _atomic_write(self, key: str, path: Path, fill: Callable[[BinaryIO], None]) -> None:
        tmp, fd = self._open_temp(key, path)

        def write() -> None:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())

        self._commit(key, tmp, path, write)

    def _commit(self, key: str, tmp: Path, path: Path, prepare: Callable[[], None]) -> None:
        """Run `prepare` (it leaves `tmp` durable), rename `tmp` over `path` and sync the directory;
        on any failure `tmp` is removed and the error said in the store's terms."""
        try:
            prepare()
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, IsADirectoryError) or (
                isinstance(exc, OSError) and exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)
            ):
                raise ObjectStoreError(
                    f"cannot store {key!r}: it is a directory of other objects on local disk, and a key "
                    f"cannot be both an object and a directory of other objects"
                ) from exc
            if isinstance(exc, OSError):
                raise self._io_error("write", key, exc) from exc
            raise

    def _first_file_ancestor(self, path: Path) -> Path:
        current = path.parent
        while current != self._root:
            if current.exists() and not current.is_dir():
                return current
            current = current.parent
        return path.parent

    def _delete(self, key: str, path: Path) -> bool:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        except OSError as exc:
            raise self._io_error("delete", key, exc) from exc
        self._prune(path.parent)
        return True

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from `directory` up to (not including) root."""
        current = directory
        while current != self._root and self._root in current.parents:
            try:
                current.rmdir()
            except OSError:
                return  # not empty (or gone): stop
            current = current.parent

    def _list(self, prefix: str) -> builtins.list[ObjectInfo]:
        # walk only the directory the prefix ends in, and in it only the
        # entries whose names start with the prefix's last (partial) segment
        cut = prefix.rfind("/")
        base = self._root.joinpath(*prefix[:cut].split("/")) if cut > 0 else self._root
        partial = prefix[cut + 1 :]
        found: builtins.list[ObjectInfo] = []
        stack: builtins.list[tuple[Path, str]] = [(base, partial)]
        while stack:
            directory, name_prefix = stack.pop()
            try:
                entries = builtins.list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise ObjectStoreError(
                    f"listing {directory} in the local object store failed: {exc.strerror or exc}"
                ) from exc
            for entry in entries:
                if entry.name.startswith(TEMP_MARKER) or not entry.name.startswith(name_prefix):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), ""))
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:
                    continue  # deleted while we listed
                found.append(ObjectInfo(key=Path(entry.path).relative_to(self._root).as_posix(), size=size))
        found.sort(key=lambda info: info.key)
        return found
