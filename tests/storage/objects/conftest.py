"""Fixtures of the object store contract suite: every contract test runs on
S3 (a real `weed mini`) and on local disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pelagos.storage.objects.protocol import ObjectStore

BIG_SIZE = 50 * 1024 * 1024


@pytest.fixture(params=["s3", "local"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """The store under test: `s3_store` or `local_store`."""
    found: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return found


@pytest.fixture(scope="module")
def big_blob() -> bytes:
    """50 MB of incompressible bytes (more than three 16 MiB parts)."""
    return np.random.default_rng(20240601).integers(0, 256, BIG_SIZE, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def big_file(big_blob: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "blob.bin"
    path.write_bytes(big_blob)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
