"""Helpers of the Milvus adapter tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
SERVER_INFO = {"build_tags": "v2.6.0-pelagos-test", "deploy_mode": "STANDALONE", "git_commit": "abc"}


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking pymilvus call off the event loop the server runs on."""
    return await asyncio.to_thread(fn, *args, **kwargs)
