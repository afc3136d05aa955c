"""What only the S3 store has: buckets, prefixes, a server that can be down."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from pelagos.errors import BucketNotFoundError, ObjectStoreError, StoreUnavailableError
from pelagos.runtime.servers.base import free_port
from pelagos.runtime.servers.weed import WeedServer
from pelagos.storage.objects.s3 import S3ObjectStore
from tests.fixtures.weed import s3_store_on, unique_prefix


def fresh_bucket() -> str:
    return f"pelagos-{uuid.uuid4().hex[:16]}"


async def test_missing_bucket_without_creation(weed_server: WeedServer) -> None:
    bucket = fresh_bucket()
    async with s3_store_on(weed_server, bucket=bucket, create_bucket=False) as store:
        with pytest.raises(BucketNotFoundError, match=f"{bucket}.*create the bucket"):
            await store.ensure_bucket()
        with pytest.raises(BucketNotFoundError, match=bucket):
            await store.put("k", b"v")
        with pytest.raises(BucketNotFoundError, match=bucket):
            await store.exists("k")  # a missing bucket is not a missing object


async def test_ensure_bucket_creates_it(weed_server: WeedServer) -> None:
    bucket = fresh_bucket()
    async with s3_store_on(weed_server, bucket=bucket) as creator:
        await creator.ensure_bucket()
        await creator.ensure_bucket()  # idempotent
    async with s3_store_on(weed_server, bucket=bucket, create_bucket=False) as user:
        await user.ensure_bucket()
        assert await user.list() == []


async def test_bucket_is_created_on_first_use(weed_server: WeedServer) -> None:
    bucket = fresh_bucket()
    async with s3_store_on(weed_server, bucket=bucket) as store:
        assert await store.list() == []  # no explicit ensure_bucket()
    async with s3_store_on(weed_server, bucket=bucket, create_bucket=False) as user:
        await user.ensure_bucket()


async def test_prefixes_isolate_stores_on_one_bucket(weed_server: WeedServer) -> None:
    one = s3_store_on(weed_server, prefix=unique_prefix("one"))
    two = s3_store_on(weed_server, prefix=unique_prefix("two").rstrip("/"))  # '/' is added
    try:
        await one.put("k", b"one")
        await two.put("k", b"two")
        assert await one.get("k") == b"one"
        assert await two.get("k") == b"two"
        assert [info.key for info in await one.list()] == ["k"]
        assert await one.delete_prefix("") == 1
        assert await two.get("k") == b"two"
        assert two.prefix.endswith("/")
    finally:
        await one.delete_prefix("")
        await two.delete_prefix("")
        await one.close()
        await two.close()


async def test_down_store_is_unavailable() -> None:
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with S3ObjectStore(endpoint, "key", "secretsecret", "bucket") as store:
        with pytest.raises(StoreUnavailableError, match=endpoint):
            await store.get("k")
        with pytest.raises(StoreUnavailableError, match=endpoint):
            await store.ensure_bucket()
        with pytest.raises(StoreUnavailableError, match="running"):
            await store.put("k", b"v")


async def test_wrong_credentials_are_named(weed_server: WeedServer) -> None:
    async with S3ObjectStore(
        weed_server.s3_endpoint, weed_server.access_key, "not-the-secret", "pelagos-test"
    ) as store:
        with pytest.raises(ObjectStoreError, match="secret key") as info:
            await store.list()
        assert not isinstance(info.value, StoreUnavailableError)


async def test_closed_store_refuses(weed_server: WeedServer) -> None:
    store = s3_store_on(weed_server, prefix=unique_prefix())
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(ObjectStoreError, match="closed"):
        await store.get("k")


async def test_store_recovers_after_server_restart(weed_factory: Callable[[], WeedServer]) -> None:
    server = weed_factory()
    async with s3_store_on(server, prefix="p/") as store:
        await store.put("k", b"kept")
        server.kill()
        with pytest.raises(StoreUnavailableError, match=server.s3_endpoint):
            await store.get("k")
        server.start()
        assert await store.get("k") == b"kept"  # same endpoint, same data, same client


def test_part_size_below_s3_minimum_is_refused() -> None:
    with pytest.raises(ObjectStoreError, match="5 MiB"):
        S3ObjectStore("127.0.0.1:1", "a", "b", "bucket", part_size=1024)
