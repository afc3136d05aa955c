"""One channel on a data node: log -> buffered rows -> sealed segments.

The node consumes the channel from its checkpoint, buffers inserted rows per
partition and deletes per channel, and flushes the whole channel at once:
every buffered partition becomes a sealed segment, the deletes one delete
log (Milvus's L0 segment), and the coordinator commits segments, delete log
and the new checkpoint in one meta transaction.

Invariants:
- the checkpoint is the position of the last message whose effects are all
  persisted, so a restart replays exactly what was not persisted: no row is
  lost and none is written twice;
- files are uploaded before the commit that names them; a segment's column
  files are written to scratch files and uploaded from there, and the
  buffered rows are dropped before the commit, so the query node loading the
  new segment does not find them still held;
- a channel flushes on a FLUSH message, when its buffer reaches the size
  limit, or when buffered data has waited for `seal_idle_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pelagos.datanode import metrics
from pelagos.datanode.locality import in_locality_order
from pelagos.datanode.sealing import LOCALITY_MIN_BYTES, SEAL_IDLE_SECONDS, SEGMENT_MAX_BYTES
from pelagos.interfaces.messages import MessageKind, decode
from pelagos.interfaces.roles import ChannelCheckpoint, DeltaInfo, FlushCommit, SegmentInfo
from pelagos.interfaces.types import CollectionInfo
from pelagos.observability.memory import release_free_memory
from pelagos.schema import ROW_TIMESTAMP_COLUMN
from pelagos.segments import DeleteLog, SealedSegmentData
from pelagos.segments.builder import SegmentBuilder
from pelagos.segments.layout import delta_key
from pelagos.storage.log.cancellation import raise_if_cancelled
from pelagos.storage.log.protocol import LogBroker, LogSubscription
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger("pelagos.datanode")

#: a checkpoint-only commit (ticks, nothing buffered) at most this often
IDLE_CHECKPOINT_SECONDS = 5.0


@dataclass(slots=True)
class DataNodeSettings:
    segment_max_bytes: int = SEGMENT_MAX_BYTES
    #: also seal at this many buffered rows (None: by size only)
    segment_max_rows: int | None = None
    seal_idle_seconds: float = SEAL_IDLE_SECONDS
    batch_size: int = 512
    #: write a sealed segment in locality order once its vectors reach this size (None: never)
    locality_min_bytes: int | None = LOCALITY_MIN_BYTES


@dataclass
class _Buffer:
    partitions: dict[int, SegmentBuilder] = field(default_factory=dict)
    deletes: list[DeleteLog] = field(default_factory=list)
    nbytes: int = 0
    rows: int = 0
    first_at: float | None = None

    def empty(self) -> bool:
        return not self.partitions and not self.deletes


class ChannelWriter:
    def __init__(
        self,
        collection: CollectionInfo,
        channel: str,
        *,
        broker: LogBroker,
        objects: ObjectStore,
        checkpoint: ChannelCheckpoint,
        commit: Callable[[FlushCommit], Awaitable[None]],
        allocate_ids: Callable[[int], Awaitable[int]],
        settings: DataNodeSettings,
    ) -> None:
        self.collection = collection
        self.channel = channel
        self._broker = broker
        self._objects = objects
        self._checkpoint = checkpoint
        self._commit = commit
        self._allocate_ids = allocate_ids
        self._settings = settings
        self._buffer = _Buffer()
        self._position = checkpoint.position
        self._ts = checkpoint.ts
        self._last_commit = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        return self._position

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"datanode-{self.channel}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                sub = await self._broker.subscribe(self.channel, self._checkpoint.position + 1)
                try:
                    await self._consume(sub)
                finally:
                    with contextlib.suppress(Exception):
                        await sub.close()
            except asyncio.CancelledError:
                raise
            except Exception:
                raise_if_cancelled()  # a failure after a lost cancel ends the task, never restarts it
                log.exception("data node channel %s failed; restarting from the checkpoint", self.channel)
                self._buffer = _Buffer()
                self._position = self._checkpoint.position
                await asyncio.sleep(1.0)

    async def _consume(self, sub: LogSubscription) -> None:
        while True:
            raise_if_cancelled()
            batch = await sub.next_batch(self._settings.batch_size, timeout=0.5)
            if batch:
                metrics.CONSUMED.labels(self.channel).inc(len(batch))
            flush_now = False
            for m in batch:
                msg = decode(m.payload)
                self._position = m.position
                self._ts = max(self._ts, msg.ts)
                if msg.kind in (MessageKind.INSERT, MessageKind.UPSERT) and msg.rows is not None:
                    if msg.kind == MessageKind.UPSERT:
                        self._add_deletes(msg.rows, msg.ts)
                    self._builder(msg.partition_id).append(msg.rows)
                    self._buffer.nbytes += msg.rows.nbytes
                    self._buffer.rows += msg.rows.num_rows
                    if self._buffer.first_at is None:
                        self._buffer.first_at = time.monotonic()
                elif msg.kind == MessageKind.DELETE and msg.rows is not None:
                    self._add_deletes(msg.rows, msg.ts)
                elif msg.kind == MessageKind.FLUSH:
                    flush_now = True
            metrics.BUFFERED_BYTES.labels(self.channel).set(self._buffer.nbytes)
            if flush_now or self._due():
                await self.flush()

    def _builder(self, partition_id: int) -> SegmentBuilder:
        """The buffer's builder of a partition (no long-lived frame may hold one: it owns a segment's
        vectors, which must go when the buffer is flushed)."""
        builder = self._buffer.partitions.get(partition_id)
        if builder is None:
            builder = self._buffer.partitions[partition_id] = SegmentBuilder(
                self._settings.segment_max_bytes, self._settings.segment_max_rows
            )
        return builder

    def _add_deletes(self, rows: pa.Table, ts: int) -> None:
        pk = self.collection.schema.primary_field.name
        pks = rows.column(pk)
        self._buffer.deletes.append(DeleteLog.of(pks, np.full(len(pks), ts, dtype=np.uint64)))
        self._buffer.nbytes += rows.nbytes
        if self._buffer.first_at is None:
            self._buffer.first_at = time.monotonic()

    def _due(self) -> bool:
        b = self._buffer
        if b.nbytes >= self._settings.segment_max_bytes:
            return True
        if self._settings.segment_max_rows is not None and b.rows >= self._settings.segment_max_rows:
            return True
        if b.first_at is not None and time.monotonic() - b.first_at >= self._settings.seal_idle_seconds:
            return True
        return (
            b.empty()
            and self._position > self._checkpoint.position
            and time.monotonic() - self._last_commit >= IDLE_CHECKPOINT_SECONDS
        )

    async def _ordered(self, builder: SegmentBuilder) -> pa.Table:
        """The builder's rows, in locality order when it pays (datanode/locality.py). The order only
        speeds searches up: if making it fails, the segment keeps its insertion order."""
        table = builder.table()
        started = time.monotonic()
        try:
            ordered = await asyncio.to_thread(
                in_locality_order, table, self.collection.schema, self._settings.locality_min_bytes
            )
        except Exception:
            log.exception(
                "channel %s: no locality order; the segment keeps its insertion order", self.channel
            )
            return table
        if ordered is not table:
            builder.release()  # the ordered copy is the segment now
            metrics.LOCALITY_ORDERED_ROWS.inc(ordered.num_rows)
            log.info(
                "channel %s: %d rows put in locality order in %.2fs",
                self.channel,
                ordered.num_rows,
                time.monotonic() - started,
            )
        return ordered

    async def flush(self) -> None:
        """Persist everything buffered and commit the checkpoint."""
        started = time.monotonic()
        c = self.collection
        schema = c.schema
        buffer, self._buffer = self._buffer, _Buffer()
        segments: list[SegmentInfo] = []
        deltas: list[DeltaInfo] = []
        uploads: list[Awaitable[None]] = []
        scratch = tempfile.TemporaryDirectory(prefix="pelagos-segment-")
        for partition_id, builder in buffer.partitions.items():
            table = await self._ordered(builder)
            segment_id = await self._allocate_ids(1)
            directory = Path(scratch.name) / str(segment_id)
            directory.mkdir()
            manifest, paths = await asyncio.to_thread(
                SealedSegmentData.write_files,
                table,
                schema,
                directory,
                collection_id=c.collection_id,
                partition_id=partition_id,
                segment_id=segment_id,
                channel=self.channel,
                schema_version=c.schema_version,
            )
            for key, path in paths.items():
                uploads.append(self._objects.put_file(key, path))
            uploads.append(self._objects.put(manifest.key, manifest.encode()))
            max_ts = int(pa.compute.max(table.column(ROW_TIMESTAMP_COLUMN)).as_py() or 0)
            segments.append(
                SegmentInfo(
                    segment_id=segment_id,
                    collection_id=c.collection_id,
                    partition_id=partition_id,
                    channel=self.channel,
                    row_count=table.num_rows,
                    manifest_key=manifest.key,
                    start_position=self._checkpoint.position + 1,
                    end_position=self._position,
                    max_ts=max_ts,
                    size_bytes=sum(f.size for f in manifest.files),
                )
            )
            del table, builder  # no name may keep a builder's arrays alive past the uploads
        if buffer.deletes:
            dl = DeleteLog.concat(buffer.deletes)
            log_id = await self._allocate_ids(1)
            key = delta_key(c.collection_id, 0, 0, log_id)
            uploads.append(self._objects.put(key, await asyncio.to_thread(dl.to_bytes)))
            deltas.append(
                DeltaInfo(
                    log_id=log_id,
                    collection_id=c.collection_id,
                    channel=self.channel,
                    key=key,
                    row_count=len(dl),
                    end_position=self._position,
                    max_ts=int(dl.ts.max()) if len(dl) else self._ts,
                )
            )
        try:
            await asyncio.gather(*uploads)
        finally:
            scratch.cleanup()
        buffer.partitions.clear()  # the rows are in the object store: free them before the query side
        del buffer  # loads them
        await asyncio.to_thread(release_free_memory)
        checkpoint = ChannelCheckpoint(channel=self.channel, position=self._position, ts=self._ts)
        await self._commit(
            FlushCommit(
                channel=self.channel,
                collection_id=c.collection_id,
                segments=segments,
                deltas=deltas,
                checkpoint=checkpoint,
            )
        )
        self._checkpoint = checkpoint
        self._last_commit = time.monotonic()
        metrics.FLUSH_LATENCY.observe(time.monotonic() - started)
        metrics.FLUSHED_SEGMENTS.inc(len(segments))
        metrics.FLUSHED_ROWS.inc(sum(s.row_count for s in segments))
        metrics.BUFFERED_BYTES.labels(self.channel).set(0)
        if segments or deltas:
            log.info(
                "channel %s flushed %d segment(s), %d rows, %d deletes up to position %d",
                self.channel,
                len(segments),
                sum(s.row_count for s in segments),
                sum(d.row_count for d in deltas),
                self._position,
            )
