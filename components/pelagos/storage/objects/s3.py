"""The object store on S3 (AWS S3, MinIO, SeaweedFS) through the `minio` client.

Object key "k" is S3 object `prefix + k` in `bucket`; keys follow the rules of
keys.py, the same as the local store.

Invariants:
- the blocking minio client runs in this store's own small thread pool,
  never on the event loop; `close()` shuts the pool and the connections;
- the bucket is checked (and created when `create_bucket`) once, before the
  first operation, or by `ensure_bucket()`; a missing bucket without
  `create_bucket` is BucketNotFoundError saying what to do;
- objects larger than `part_size` go up as multipart uploads (S3 completes
  them atomically); downloads to a file stream into a temporary file beside
  the target and are renamed over it only once complete;
- every failure leaves as a Pelagos error: NoSuchKey -> ObjectNotFoundError
  naming the key, NoSuchBucket -> BucketNotFoundError, connection refused,
  reset or timed out -> StoreUnavailableError naming the endpoint, anything
  else -> ObjectStoreError; no minio or urllib3 exception escapes;
- the HTTP pool connects with a short timeout and retries little, so a down
  store fails in well under a second on a refused connection.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import http.client
import io
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError

from pelagos.errors import (
    BucketNotFoundError,
    ObjectNotFoundError,
    ObjectStoreError,
    StoreUnavailableError,
)
from pelagos.storage.objects.keys import (
    TEMP_MARKER,
    InvalidObjectArgumentError,
    validate_key,
    validate_prefix,
    validate_range,
)
from pelagos.storage.objects.protocol import ObjectInfo

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MiB
_MIN_PART_SIZE = 5 * MiB
_STREAM_CHUNK = 1 * MiB
_UNAVAILABLE_STATUS = (502, 503, 504)
_KEY_CODES = ("NoSuchKey", "NoSuchObject")
_AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken")

T = TypeVar("T")


class S3ObjectStore:
    """An ObjectStore on one S3 bucket, optionally under a key prefix."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        prefix: str = "",
        secure: bool = False,
        region: str | None = None,
        create_bucket: bool = True,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float = 3.0,
        read_timeout: float = 120.0,
        max_workers: int = 8,
    ) -> None:
        if part_size < _MIN_PART_SIZE:
            raise InvalidObjectArgumentError(
                f"part_size must be at least 5 MiB (S3's minimum), got {part_size}"
            )
        if prefix:
            validate_prefix(prefix)
            prefix = prefix if prefix.endswith("/") else prefix + "/"
        self._endpoint = endpoint
        self._bucket = bucket
        self._prefix = prefix
        self._create_bucket = create_bucket
        self._part_size = part_size
        self._http = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_workers * 4,  # multipart uploads open up to 3 connections each
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=3,
                connect=1,
                read=1,
                status=2,
                backoff_factor=0.1,
                status_forcelist=(500, *_UNAVAILABLE_STATUS),
                raise_on_status=False,
            ),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=self._http,
            )
        except ValueError as exc:
            raise ObjectStoreError(f"invalid S3 endpoint {endpoint!r}: {exc}") from exc
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s3-store")
        self._bucket_checked = False
        self._bucket_lock: asyncio.Lock | None = None
        self._closed = False

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        """The key prefix inside the bucket ("" or ending with '/')."""
        return self._prefix

    def __repr__(self) -> str:
        return f"S3ObjectStore({self._endpoint!r}, bucket={self._bucket!r}, prefix={self._prefix!r})"

    async def __aenter__(self) -> S3ObjectStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- bucket ---------------------------------------------------------------

    async def ensure_bucket(self) -> None:
        """Check the bucket exists; create it when `create_bucket`, else raise
        BucketNotFoundError."""
        await self._run(self._ensure_bucket_sync)
        self._bucket_checked = True

    def _ensure_bucket_sync(self) -> None:
        try:
            if self._client.bucket_exists(self._bucket):
                return
            if not self._create_bucket:
                raise BucketNotFoundError(self._bucket_missing())
            try:
                self._client.make_bucket(self._bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        except ObjectStoreError:
            raise
        except Exception as exc:
            self._raise_translated(exc, None, "checking the bucket")

    async def _bucket_ready(self) -> None:
        if self._bucket_checked:
            return
        if self._bucket_lock is None:
            self._bucket_lock = asyncio.Lock()
        async with self._bucket_lock:
            if not self._bucket_checked:
                await self.ensure_bucket()

    # --- protocol -------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        name = self._name(key)

        def put() -> None:
            self._client.put_object(
                self._bucket,
                name,
                io.BytesIO(data),
                len(data),
                part_size=self._part_size,
            )

        await self._call(put, key, "put")

    async def put_file(self, key: str, path: Path) -> None:
        name = self._name(key)
        source = Path(path)

        def put_file() -> None:
            if not source.is_file():
                raise ObjectStoreError(f"cannot upload {source} as {key!r}: the local file does not exist")
            self._client.fput_object(self._bucket, name, str(source), part_size=self._part_size)

        await self._call(put_file, key, "put_file")

    async def get(self, key: str) -> bytes:
        name = self._name(key)

        def get() -> bytes:
            with self._response(name) as response:
                return bytes(response.read())

        return await self._call(get, key, "get")

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        validate_range(offset, length)
        if length == 0:
            await self.stat(key)  # a missing key is still an error
            return b""
        name = self._name(key)

        def get_range() -> bytes:
            try:
                with self._response(name, offset, length) as response:
                    return bytes(response.read())
            except S3Error as exc:
                if exc.code == "InvalidRange":  # the object exists; offset is at or past its end
                    return b""
                raise

        return await self._call(get_range, key, "get_range")

    async def get_file(self, key: str, path: Path) -> None:
        name = self._name(key)
        dest = Path(path)

        def get_file() -> None:
            with self._response(name) as response:
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dest.parent / f"{TEMP_MARKER}{uuid.uuid4().hex}"
                    try:
                        with open(tmp, "xb") as out:
                            for chunk in response.stream(_STREAM_CHUNK):
                                out.write(chunk)
                        os.replace(tmp, dest)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            tmp.unlink()
                        raise
                except (ConnectionError, TimeoutError):
                    raise
                except OSError as exc:
                    raise ObjectStoreError(
                        f"cannot download {key!r} to {dest}: {exc.strerror or exc}"
                    ) from exc

        await self._call(get_file, key, "get_file")

    async def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)

        def stat() -> ObjectInfo:
            obj = self._client.stat_object(self._bucket, name)
            return ObjectInfo(key=key, size=int(obj.size or 0))

        return await self._call(stat, key, "stat")

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except BucketNotFoundError:
            raise
        except ObjectNotFoundError:
            return False
        return True

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        return await self._call(functools.partial(self._list_sync, prefix), None, "list")

    async def delete(self, key: str) -> None:
        name = self._name(key)
        await self._call(functools.partial(self._client.remove_object, self._bucket, name), key, "delete")

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)

        def delete_prefix() -> int:
            infos = self._list_sync(prefix)
            if not infos:
                return 0
            errors = builtins.list(
                self._client.remove_objects(
                    self._bucket, (DeleteObject(self._prefix + info.key) for info in infos)
                )
            )
            if errors:
                first = errors[0]
                raise ObjectStoreError(
                    f"deleting {len(infos)} objects under {prefix!r} in {self._where()} failed for "
                    f"{len(errors)} of them; first: {first.name!r}: {first.code} {first.message}"
                )
            return len(infos)

        return await self._call(delete_prefix, None, "delete_prefix")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        self._http.clear()

    # --- helpers --------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def _where(self) -> str:
        where = f"bucket {self._bucket!r} at {self._endpoint}"
        return f"{where} under prefix {self._prefix!r}" if self._prefix else where

    def _bucket_missing(self) -> str:
        return (
            f"bucket {self._bucket!r} does not exist at {self._endpoint}; create the bucket, "
            f"or enable bucket creation (create_bucket=True)"
        )

    def _list_sync(self, prefix: str) -> builtins.list[ObjectInfo]:
        cut = len(self._prefix)
        found = [
            ObjectInfo(key=obj.object_name[cut:], size=int(obj.size or 0))
            for obj in self._client.list_objects(self._bucket, prefix=self._prefix + prefix, recursive=True)
            if not obj.is_dir and obj.object_name is not None
        ]
        found.sort(key=lambda info: info.key)
        return found

    @contextlib.contextmanager
    def _response(self, name: str, offset: int = 0, length: int = 0) -> Iterator[Any]:
        response = self._client.get_object(self._bucket, name, offset=offset, length=length)
        try:
            yield response
        finally:
            response.close()
            response.release_conn()

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise ObjectStoreError(f"the object store {self!r} is closed")
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._pool, fn)
        except RuntimeError as exc:  # the pool was shut down by a concurrent close()
            raise ObjectStoreError(f"the object store {self!r} is closed") from exc
        return await future

    async def _call(self, fn: Callable[[], T], key: str | None, op: str) -> T:
        """Run `fn` in the pool with the bucket checked and errors translated."""
        await self._bucket_ready()

        def guarded() -> T:
            try:
                return fn()
            except ObjectStoreError:
                raise
            except Exception as exc:
                self._raise_translated(exc, key, op)

        return await self._run(guarded)

    def _raise_translated(self, exc: Exception, key: str | None, op: str) -> NoReturn:
        what = f"{op} of {key!r}" if key is not None else op
        if isinstance(exc, S3Error):
            if exc.code in _KEY_CODES and key is not None:
                raise ObjectNotFoundError(f"object {key!r} does not exist in {self._where()}") from exc
            if exc.code == "NoSuchBucket":
                raise BucketNotFoundError(self._bucket_missing()) from exc
            if exc.code in _AUTH_CODES:
                raise ObjectStoreError(
                    f"{what} was refused by {self._where()} ({exc.code}: {exc.message}); "
                    f"check the access key and secret key and the identity's permissions"
                ) from exc
            if exc.code in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
                raise StoreUnavailableError(
                    f"{what} failed: the object store at {self._endpoint} is overloaded or unavailable "
                    f"({exc.code}: {exc.message}); retry later"
                ) from exc
            raise ObjectStoreError(f"{what} failed in {self._where()}: {exc.code}: {exc.message}") from exc
        if isinstance(exc, ServerError):
            if exc.status_code in _UNAVAILABLE_STATUS:
                raise StoreUnavailableError(
                    f"{what} failed: the object store at {self._endpoint} answered HTTP {exc.status_code}; "
                    f"check that it is running and healthy"
                ) from exc
            raise ObjectStoreError(f"{what} failed in {self._where()}: {exc}") from exc
        if isinstance(exc, InvalidResponseError):
            raise ObjectStoreError(
                f"{what} failed: {self._endpoint} does not answer like an S3 server ({exc}); "
                f"check the endpoint and the secure (TLS) setting"
            ) from exc
        if isinstance(
            exc, urllib3.exceptions.HTTPError | http.client.HTTPException | ConnectionError | TimeoutError
        ):
            raise StoreUnavailableError(
                f"{what} failed: the object store at {self._endpoint} cannot be reached "
                f"({_root_cause(exc)}); check that it is running and that the endpoint is right"
            ) from exc
        if isinstance(exc, ValueError):
            raise ObjectStoreError(f"{what} on {self._where()} was refused by the S3 client: {exc}") from exc
        raise ObjectStoreError(f"{what} failed in {self._where()}: {type(exc).__name__}: {exc}") from exc


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a urllib3 error, for messages."""
    reason: BaseException = exc
    seen = 0
    while seen < 5:
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            break
        reason = inner
        seen += 1
    text = str(reason)
    # urllib3 puts the connection object's repr first: keep what follows
    marker = ">: "
    if marker in text:
        text = text.split(marker, 1)[1]
    return text
