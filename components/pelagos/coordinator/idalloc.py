"""Unique int64 IDs (collections, partitions, segments, auto_id keys), in batches.

Invariants:
- IDs are > 0 and < 2**63; every ID is handed out at most once, by this
  allocator or any other on the same key, across restarts;
- the upper bound U (exclusive) of the IDs reserved so far is persisted in
  the meta store BEFORE any ID below it is handed out; a new allocator starts
  at U;
- reservations are made by compare-and-swap on U in batches of `batch` IDs
  (or more for a big request), so most allocations touch no store at all;
  an allocator that loses the race re-reads U and reserves above it, so
  several allocators may share one key without overlap;
- the IDs one allocator hands out increase in the order it hands them out.
"""

from __future__ import annotations

import asyncio

from pelagos.errors import InvalidArgumentError, MetaStoreError
from pelagos.storage.meta.protocol import MetaStore

MAX_ID = (1 << 63) - 1
_MAX_ATTEMPTS = 64


def _decode(raw: bytes, key: str) -> int:
    try:
        value = int(raw.decode().strip())
    except (UnicodeDecodeError, ValueError):
        raise MetaStoreError(
            f"the stored ID bound {raw!r} under {key!r} is not a number; fix or remove that meta store key"
        ) from None
    if value < 1:
        raise MetaStoreError(
            f"the stored ID bound under {key!r} is {value}, below 1; fix that meta store key"
        )
    return value


class IdAllocator:
    """Hands out consecutive unique int64 IDs, reserving them from the meta store in batches."""

    def __init__(self, meta: MetaStore, key: str = "id/upper", batch: int = 100_000) -> None:
        if batch < 1:
            raise InvalidArgumentError(f"the ID batch size must be at least 1, got {batch}")
        self._meta = meta
        self._key = key
        self._batch = batch
        self._lock = asyncio.Lock()
        self._next = 0  # first ID not handed out yet
        self._upper = 0  # first ID not reserved: [next, upper) is ours
        self._stored: bytes | None = None  # the bound as last seen in the store
        self._loaded = False

    @property
    def reserved(self) -> tuple[int, int]:
        """[first, end) of the IDs reserved and not yet handed out."""
        return self._next, self._upper

    async def allocate(self, count: int = 1) -> int:
        """The first of `count` consecutive unique IDs."""
        if count < 1:
            raise InvalidArgumentError(f"allocate at least one ID, got {count}")
        async with self._lock:
            if self._next + count > self._upper:
                await self._reserve(count)
            first = self._next
            self._next += count
            return first

    async def close(self) -> None:
        """Nothing to release: unused reserved IDs are simply never handed out."""

    async def _reserve(self, count: int) -> None:
        """Reserve at least `count` IDs: extend our range if nobody moved the bound, else start above it."""
        if not self._loaded:
            await self._load()
        for _ in range(_MAX_ATTEMPTS):
            base = _decode(self._stored, self._key) if self._stored is not None else 1
            extend = base == self._upper  # nobody reserved since us: our leftover stays usable
            start = self._next if extend else base
            new_upper = start + max(self._batch, count)
            if new_upper - 1 > MAX_ID:
                raise MetaStoreError(
                    f"the int64 ID space under {self._key!r} is exhausted (bound {base}); "
                    f"IDs cannot be allocated any more"
                )
            value = str(new_upper).encode()
            if await self._meta.compare_and_swap(self._key, self._stored, value):
                self._stored = value
                self._next, self._upper = start, new_upper
                return
            await self._load()
        raise MetaStoreError(
            f"could not reserve IDs under {self._key!r}: lost the race {_MAX_ATTEMPTS} times in a row; "
            f"too many allocators share that key"
        )

    async def _load(self) -> None:
        kv = await self._meta.get(self._key)
        self._stored = kv.value if kv is not None else None
        self._loaded = True
