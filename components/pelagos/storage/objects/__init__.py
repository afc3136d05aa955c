"""Object storage: the ObjectStore protocol and its two implementations,
S3ObjectStore (S3, MinIO, SeaweedFS through the minio client) and
LocalObjectStore (files under a directory, for standalone).

Both accept exactly the keys of keys.py and raise the same errors.
"""

from pelagos.storage.objects.keys import InvalidObjectArgumentError, validate_key, validate_prefix
from pelagos.storage.objects.local import LocalObjectStore
from pelagos.storage.objects.protocol import ObjectInfo, ObjectStore
from pelagos.storage.objects.s3 import S3ObjectStore

__all__ = [
    "InvalidObjectArgumentError",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "S3ObjectStore",
    "validate_key",
    "validate_prefix",
]
