"""One channel served by a query node: sealed segments + growing data from the log.

Start-up loads the channel's sealed segments and delete logs as the
coordinator recorded them, then tails the log from the checkpoint, so rows
are searchable as soon as they are consumed. After each flush the
coordinator sends the new sealed state (`sync`): new segments are loaded
first, then swapped in at once with the growing rows they replace, so a
row is never missing nor counted twice.

Invariants:
- growing data holds exactly the consumed messages with position >
  `sealed_position`;
- deletes kill rows with a strictly smaller ts (segments/deltas.py); delete
  logs of sealed flushes apply to sealed segments, growing deletes to all;
- a read waits until the channel is serviceable for its guarantee ts: the
  consumed ts reached it, or everything the broker held when the read
  arrived has been consumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pelagos.errors import DeadlineExceededError
from pelagos.interfaces.messages import MessageKind, decode
from pelagos.interfaces.roles import ChannelView, SegmentInfo
from pelagos.interfaces.types import IndexInfo
from pelagos.observability.memory import release_free_memory
from pelagos.querynode import metrics
from pelagos.querynode.filter_cache import FilterCache
from pelagos.querynode.search_context import SetupCache
from pelagos.querynode.segment_view import SegmentView
from pelagos.schema.arrow import arrow_schema
from pelagos.segments import DeleteLog, SealedSegmentData, SegmentManifest, alive_mask
from pelagos.storage.log.cancellation import raise_if_cancelled
from pelagos.storage.log.protocol import LogBroker, LogSubscription
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger("pelagos.querynode")

#: how long stop() waits for the cancelled channel task before it logs and leaves it
STOP_WAIT_S = 10.0

CONSISTENCY_TIMEOUT_S = 30.0
DEFAULT_FILTER_CACHE_BYTES = 256 << 20


@dataclass(slots=True)
class _GrowingBatch:
    position: int
    partition_id: int
    rows: pa.Table


class ServedChannel:
    def __init__(
        self,
        view: ChannelView,
        *,
        broker: LogBroker,
        objects: ObjectStore,
        attach_indexes: Callable[[SegmentView, ChannelView], Awaitable[None]] | None = None,
        filters: FilterCache | None = None,
    ) -> None:
        self.channel = view.channel
        self.collection = view.collection
        self.schema = view.collection.schema
        self._pk_type_cache: pa.DataType | None = None
        self._broker = broker
        self._objects = objects
        self._attach_indexes = attach_indexes
        self._view = view
        self.sealed: dict[int, SegmentView] = {}
        self._sealed_deletes = DeleteLog.empty(self._pk_type())
        self._base_alive: dict[int, np.ndarray] = {}
        self.sealed_position = view.checkpoint.position
        self.consumed_position = view.checkpoint.position
        self.consumed_ts = view.checkpoint.ts
        self._growing: list[_GrowingBatch] = []
        self._growing_deletes: list[tuple[int, DeleteLog]] = []
        self._version = 0
        self._growing_cache: tuple[int, SegmentView | None] = (-1, None)
        self._deletes_cache: tuple[int, DeleteLog] = (-1, DeleteLog.empty(self._pk_type()))
        self._alive_cache: dict[int, tuple[int, np.ndarray | None]] = {}
        self._progress = asyncio.Condition()
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        #: prepared search shapes for the current view (schema and declared indexes)
        self.setups = SetupCache()
        #: filter results per segment (shared by the query node's channels)
        self.filters = filters if filters is not None else FilterCache(DEFAULT_FILTER_CACHE_BYTES)

    def _pk_type(self) -> pa.DataType:
        if self._pk_type_cache is None:
            self._pk_type_cache = (
                arrow_schema(self.schema, with_system=False).field(self.schema.primary_field.name).type
            )
        return self._pk_type_cache

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"querynode-{self.channel}")

    async def stop(self) -> None:
        """Stop consuming. A release must not hang on the channel's task: once it does not end
        within STOP_WAIT_S of its cancellation, it is logged with where it waits and left behind.
        The hang this guards against was a cancel lost inside nats-py (storage/log/cancellation.py);
        the consuming loops now re-check for one on every turn."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if not done:
            where = io.StringIO()
            task.print_stack(file=where)
            log.error(
                "query node channel %s: its task did not stop within %.0f s of being cancelled; "
                "leaving it behind. It waits in:\n%s",
                self.channel,
                STOP_WAIT_S,
                where.getvalue(),
            )
            return
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sync(self._view)
                self.ready.set()
                sub = await self._broker.subscribe(self.channel, self.consumed_position + 1)
                try:
                    await self._consume(sub)
                finally:
                    with contextlib.suppress(Exception):
                        await sub.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                raise_if_cancelled()  # a failure after a lost cancel ends the task, never resumes it
                log.exception("query node channel %s failed; resuming", self.channel)
                await asyncio.sleep(1.0)

    async def _consume(self, sub: LogSubscription) -> None:
        while True:
            raise_if_cancelled()
            batch = await sub.next_batch(1024, timeout=1.0)
            if not batch:
                continue
            for m in batch:
                msg = decode(m.payload)
                if m.position > self.sealed_position:
                    if msg.kind in (MessageKind.INSERT, MessageKind.UPSERT) and msg.rows is not None:
                        if msg.kind == MessageKind.UPSERT:
                            self._add_delete(m.position, msg.rows, msg.ts)
                        self._growing.append(_GrowingBatch(m.position, msg.partition_id, msg.rows))
                    elif msg.kind == MessageKind.DELETE and msg.rows is not None:
                        self._add_delete(m.position, msg.rows, msg.ts)
                self.consumed_position = m.position
                self.consumed_ts = max(self.consumed_ts, msg.ts)
            self._version += 1
            metrics.CONSUMED.labels(self.channel).inc(len(batch))
            metrics.GROWING_ROWS.labels(self.channel).set(sum(b.rows.num_rows for b in self._growing))
            metrics.CONSUME_LAG.labels(self.channel).set(
                max(0.0, time.time() - (self.consumed_ts >> 18) / 1000)
            )
            async with self._progress:
                self._progress.notify_all()

    def _add_delete(self, position: int, rows: pa.Table, ts: int) -> None:
        pks = rows.column(self.schema.primary_field.name)
        self._growing_deletes.append((position, DeleteLog.of(pks, np.full(len(pks), ts, dtype=np.uint64))))

    # --- sealed state -----------------------------------------------------------------------
    async def _load_segment(self, info: SegmentInfo, view: ChannelView) -> SegmentView:
        manifest = SegmentManifest.decode(await self._objects.get(info.manifest_key))
        data = await SealedSegmentData.load(manifest, self._objects.get)
        seg = SegmentView(
            segment_id=info.segment_id,
            partition_ids=np.full(data.table.num_rows, info.partition_id, dtype=np.int64),
            table=data.table,
            schema=self.schema,
            stats=dict(manifest.stats),
        )
        return seg

    async def sync(self, view: ChannelView) -> None:
        """Adopt a new sealed state of the channel (after a flush, an index build, ...)."""
        async with self._sync_lock:
            if view.checkpoint.position < self.sealed_position:
                return  # an older view than the one applied: its segments may be missing
            self._view = view
            self.collection = view.collection
            self.setups = SetupCache()
            wanted = {s.segment_id: s for s in view.segments}
            new_ids = [sid for sid in wanted if sid not in self.sealed]
            loaded = await asyncio.gather(*(self._load_segment(wanted[sid], view) for sid in new_ids))
            deltas = await asyncio.gather(*(self._objects.get(d.key) for d in view.deltas))
            sealed_deletes = (
                DeleteLog.concat([DeleteLog.from_bytes(b) for b in deltas])
                if deltas
                else DeleteLog.empty(self._pk_type())
            )
            segments = {sid: seg for sid, seg in self.sealed.items() if sid in wanted}
            segments.update(zip(new_ids, loaded, strict=True))
            if self._attach_indexes is not None:
                for seg in segments.values():
                    await self._attach_indexes(seg, view)
            base_alive = {
                sid: alive_mask(seg.pks, seg.row_ts, sealed_deletes.pks, sealed_deletes.ts)
                for sid, seg in segments.items()
            }
            # swap in at once: no await from here on
            position = max(self.sealed_position, view.checkpoint.position)
            self.sealed = segments
            self._sealed_deletes = sealed_deletes
            self._base_alive = base_alive
            self._alive_cache.clear()
            self.sealed_position = position
            self._growing = [b for b in self._growing if b.position > position]
            self._growing_deletes = [d for d in self._growing_deletes if d[0] > position]
            metrics.SEALED_SEGMENTS.labels(self.channel).set(len(segments))
            if self.consumed_position < position:
                self.consumed_position = position
                self.consumed_ts = max(self.consumed_ts, view.checkpoint.ts)
            self._version += 1
            del loaded, base_alive, segments
        await asyncio.to_thread(release_free_memory)  # replaced segments and growing rows are gone

    @property
    def index_specs(self) -> Sequence[IndexInfo]:
        """The indexes declared on the collection, as of the last applied view (do not modify)."""
        return self._view.index_specs

    # --- reading ------------------------------------------------------------------------------
    async def wait_serviceable(self, guarantee_ts: int) -> None:
        if self.consumed_ts >= guarantee_ts:
            return
        target = await self._broker.last_position(self.channel)
        deadline = time.monotonic() + CONSISTENCY_TIMEOUT_S
        async with self._progress:
            while self.consumed_ts < guarantee_ts and self.consumed_position < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceededError(
                        f"channel {self.channel} did not reach the requested consistency within "
                        f"{CONSISTENCY_TIMEOUT_S:.0f}s (consumed {self.consumed_position} of {target})"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), timeout=remaining)

    def growing_view(self) -> SegmentView | None:
        version, cached = self._growing_cache
        if version == self._version:
            return cached
        batches = self._growing
        view: SegmentView | None = None
        if batches:
            target = arrow_schema(self.schema)
            tables = [
                b.rows if b.rows.schema == target else b.rows.select(target.names).cast(target)
                for b in batches
            ]
            table = pa.concat_tables(tables).combine_chunks()
            parts = np.concatenate(
                [np.full(b.rows.num_rows, b.partition_id, dtype=np.int64) for b in batches]
            )
            view = SegmentView(segment_id=0, partition_ids=parts, table=table, schema=self.schema)
        self._growing_cache = (self._version, view)
        return view

    def _growing_delete_log(self) -> DeleteLog:
        version, cached = self._deletes_cache
        if version == self._version:
            return cached
        logs = [d for _, d in self._growing_deletes]
        merged = DeleteLog.concat(logs) if logs else DeleteLog.empty(self._pk_type())
        self._deletes_cache = (self._version, merged)
        return merged

    def alive(self, seg: SegmentView) -> np.ndarray | None:
        """A bool per row of `seg`, or None when every row is alive."""
        cached = self._alive_cache.get(seg.segment_id)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        gd = self._growing_delete_log()
        base = self._base_alive.get(seg.segment_id)
        if base is None:
            base = np.ones(seg.num_rows, dtype=bool)
        mask = base
        if len(gd):
            mask = base & alive_mask(seg.pks, seg.row_ts, gd.pks, gd.ts)
        result = None if mask.all() else mask
        if seg.segment_id != 0:
            self._alive_cache[seg.segment_id] = (self._version, result)
        return result

    def segments(self, ignore_growing: bool) -> list[SegmentView]:
        out = list(self.sealed.values())
        if not ignore_growing:
            g = self.growing_view()
            if g is not None:
                out.append(g)
        return out
