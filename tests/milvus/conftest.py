"""pymilvus clients on the session's `pelagos standalone`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymilvus import MilvusClient

from tests.fixtures.standalone import StandaloneProcess


@pytest.fixture
def client(standalone: StandaloneProcess) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=standalone.uri, timeout=30)
    try:
        yield c
    finally:
        c.close()
