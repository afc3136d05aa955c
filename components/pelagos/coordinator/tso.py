"""The timestamp oracle (TSO): hybrid timestamps, monotonic across restarts.

A timestamp is `physical_ms << 18 | logical`: wall-clock milliseconds and an
18-bit counter within the millisecond (DESIGN.md invariant 3).

Invariants:
- every timestamp handed out is greater than every one handed out before,
  by this oracle or by any earlier oracle on the same key, whatever the wall
  clock does (a clock behind the last issued millisecond keeps that
  millisecond and bumps the counter; a full counter moves to the next
  millisecond);
- an upper bound U on the physical part is persisted in the meta store
  BEFORE any timestamp with physical part >= the old bound is handed out, and
  every handed-out timestamp has physical part < U; a new oracle starts at
  physical U, strictly above everything issued before;
- the bound is written by compare-and-swap on the value this oracle last
  wrote, tagged with an owner token: an oracle whose write loses (another
  oracle took the key over) is fenced and refuses to issue anything more, so
  two oracles never issue overlapping timestamps;
- the bound is renewed in the background before it is reached, so
  allocation rarely waits for the meta store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import NoReturn

from pelagos.errors import InvalidArgumentError, ServiceUnavailableError, StorageError
from pelagos.storage.meta.protocol import MetaStore

_log = logging.getLogger(__name__)

LOGICAL_BITS = 18
LOGICAL_LIMIT = 1 << LOGICAL_BITS  # logical counters are 0 .. LOGICAL_LIMIT - 1
_LOGICAL_MASK = LOGICAL_LIMIT - 1


def compose_ts(physical_ms: int, logical: int) -> int:
    """The hybrid timestamp of `physical_ms` and `logical` (0 <= logical < 2**18)."""
    if physical_ms < 0 or not 0 <= logical < LOGICAL_LIMIT:
        raise InvalidArgumentError(
            f"a timestamp needs physical_ms >= 0 and 0 <= logical < {LOGICAL_LIMIT}, "
            f"got physical_ms={physical_ms}, logical={logical}"
        )
    return (physical_ms << LOGICAL_BITS) | logical


def parse_ts(ts: int) -> tuple[int, int]:
    """(physical_ms, logical) of a hybrid timestamp."""
    if ts < 0:
        raise InvalidArgumentError(f"a timestamp is never negative, got {ts}")
    return ts >> LOGICAL_BITS, ts & _LOGICAL_MASK


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _encode(upper_ms: int, owner: str) -> bytes:
    return f"{upper_ms} {owner}".encode()


def _decode(raw: bytes) -> tuple[int, str]:
    """(upper_ms, owner) of a stored bound; a bare number has no owner."""
    text = raw.decode(errors="replace").strip()
    number, _, owner = text.partition(" ")
    try:
        return int(number), owner
    except ValueError:
        raise ServiceUnavailableError(
            f"the stored timestamp bound {raw!r} is not a number; fix or remove that meta store key"
        ) from None


class TimestampOracle:
    """Issues hybrid timestamps; one active oracle per `key` (the coordinator's)."""

    def __init__(
        self,
        meta: MetaStore,
        key: str = "tso/upper",
        window_ms: int = 3000,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        renew_interval_s: float | None = None,
    ) -> None:
        if window_ms < 3:
            raise InvalidArgumentError(f"the TSO window must be at least 3 ms, got {window_ms}")
        self._meta = meta
        self._key = key
        self._window = window_ms
        self._clock = clock
        self._renew_interval = renew_interval_s if renew_interval_s is not None else window_ms / 3000
        self._owner = uuid.uuid4().hex
        self._lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._fenced: str | None = None
        self._stored: bytes | None = None  # what the key holds, as far as we know
        self._unsure = False  # a write may or may not have applied
        self._upper = 0  # persisted bound: issued physical parts are < this
        self._last_physical = 0
        self._last_logical = -1
        self._renewer: asyncio.Task[None] | None = None

    @property
    def last_issued(self) -> int | None:
        """The greatest timestamp issued so far by this oracle (None: none yet)."""
        if self._last_logical < 0:
            return None
        return compose_ts(self._last_physical, self._last_logical)

    @property
    def upper_bound_ms(self) -> int:
        """The persisted bound: every timestamp issued has a smaller physical part."""
        return self._upper

    async def start(self) -> None:
        """Load the persisted bound, claim a window above it, start renewing."""
        async with self._lock:
            if self._started:
                return
            self._check_usable()
            kv = await self._meta.get(self._key)
            self._stored = kv.value if kv is not None else None
            previous = _decode(self._stored)[0] if self._stored is not None else 0
            # everything issued before has a physical part < previous
            self._last_physical, self._last_logical = previous, -1
            await self._persist(max(self._clock(), previous) + self._window)
            self._started = True
        self._renewer = asyncio.create_task(self._renew_forever(), name=f"tso-renew-{self._key}")

    async def allocate(self, count: int = 1) -> int:
        """The first of `count` consecutive timestamps, all above any issued before."""
        if not 1 <= count <= LOGICAL_LIMIT:
            raise InvalidArgumentError(
                f"a timestamp allocation takes 1 to {LOGICAL_LIMIT} timestamps at once, got {count}"
            )
        if not self._started:
            await self.start()
        if not self._lock.locked():  # nothing to persist usually: no await, so nothing interleaves
            self._check_usable()
            physical, logical = self._next(count)
            if physical < self._upper:
                self._last_physical, self._last_logical = physical, logical + count - 1
                return compose_ts(physical, logical)
        async with self._lock:
            self._check_usable()
            physical, logical = self._next(count)
            if physical >= self._upper:
                await self._persist(physical + self._window)
            self._last_physical, self._last_logical = physical, logical + count - 1
            return compose_ts(physical, logical)

    def _next(self, count: int) -> tuple[int, int]:
        """(physical, logical) of the next `count` timestamps, before any bound is checked."""
        now = self._clock()
        if now > self._last_physical:
            physical, logical = now, 0
        else:  # same millisecond, or the clock went back: keep counting
            physical, logical = self._last_physical, self._last_logical + 1
        if logical + count > LOGICAL_LIMIT:
            physical, logical = physical + 1, 0
        return physical, logical

    async def close(self) -> None:
        """Stop renewing. The persisted bound stays: a successor starts above it."""
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    # --- internals --------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._fenced is not None:
            raise ServiceUnavailableError(self._fenced)
        if self._closed:
            raise ServiceUnavailableError("the timestamp oracle was closed; start a new one")

    async def _persist(self, upper: int) -> None:
        """Store `upper` as the bound by CAS on what we last stored; fence on a lost race."""
        if self._unsure:
            kv = await self._meta.get(self._key)
            current = kv.value if kv is not None else None
            if current != self._stored:
                if current is None or _decode(current)[1] != self._owner:
                    self._fence(current)
                # our write applied after all
                self._stored, self._upper = current, _decode(current)[0]
            self._unsure = False
            if upper <= self._upper:
                return
        value = _encode(upper, self._owner)
        try:
            won = await self._meta.compare_and_swap(self._key, self._stored, value)
        except StorageError:
            self._unsure = True
            raise
        if not won:
            kv = await self._meta.get(self._key)
            self._fence(kv.value if kv is not None else None)
        self._stored, self._upper = value, upper

    def _fence(self, seen: bytes | None) -> NoReturn:
        self._fenced = (
            f"another timestamp oracle took over meta store key {self._key!r} (it now holds {seen!r}); "
            f"this one stopped issuing timestamps: only the active coordinator may run the TSO"
        )
        _log.error("%s", self._fenced)
        raise ServiceUnavailableError(self._fenced)

    async def _renew_forever(self) -> None:
        """Extend the bound while at least a third of the window is used up."""
        while True:
            await asyncio.sleep(self._renew_interval)
            try:
                async with self._lock:
                    if self._fenced is not None or self._closed:
                        return
                    base = max(self._clock(), self._last_physical)
                    if self._upper - base < self._window * 2 // 3:
                        await self._persist(base + self._window)
            except ServiceUnavailableError:
                if self._fenced is not None:
                    return
            except StorageError as exc:
                _log.warning("could not renew the timestamp bound (%s); retrying", exc)
