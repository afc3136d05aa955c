"""The index node: builds the vector index of one sealed segment.

It reads only the segment's vector column from object storage, builds the
faiss index in a worker thread (faiss releases the GIL), uploads the
serialized index under a key of its own build ID (objects are immutable),
and reports where it put it. The coordinator records the result.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pelagos.index import create_index
from pelagos.index.user_params import spec_from_params
from pelagos.indexnode import metrics
from pelagos.interfaces.roles import IndexBuildTask, SegmentIndexInfo
from pelagos.schema import DataType
from pelagos.schema.arrow import vectors_of
from pelagos.segments import SealedSegmentData, SegmentManifest
from pelagos.segments.layout import index_key
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger("pelagos.indexnode")


class IndexNode:
    """Implements IndexNodeAPI."""

    name = "indexnode"

    def __init__(self, *, objects: ObjectStore, max_concurrent_builds: int = 1) -> None:
        self._objects = objects
        self._slots = asyncio.Semaphore(max_concurrent_builds)

    async def build(self, task: IndexBuildTask) -> SegmentIndexInfo:
        async with self._slots:
            started = time.monotonic()
            spec = spec_from_params(task.params, task.dim, task.is_binary)
            manifest = SegmentManifest.decode(await self._objects.get(task.segment.manifest_key))
            data = await SealedSegmentData.load(manifest, self._objects.get, [task.field_name])
            dtype = DataType.BINARY_VECTOR if task.is_binary else DataType.FLOAT_VECTOR
            vectors = vectors_of(data.table.column(task.field_name), dtype, task.dim)

            def build() -> bytes:
                index = create_index(spec)
                index.build(vectors)
                return index.serialize()

            try:
                blob = await asyncio.to_thread(build)
            except Exception:
                metrics.BUILDS.labels("error").inc()
                raise
            key = index_key(task.collection_id, task.segment.segment_id, task.index_id, task.build_id)
            await self._objects.put(key, blob)
            metrics.BUILDS.labels("ok").inc()
            metrics.BUILD_LATENCY.observe(time.monotonic() - started)
            metrics.BUILT_ROWS.inc(task.segment.row_count)
            log.info(
                "built %s on segment %d (%d rows) in %.2fs",
                spec,
                task.segment.segment_id,
                task.segment.row_count,
                time.monotonic() - started,
            )
            return SegmentIndexInfo(
                collection_id=task.collection_id,
                segment_id=task.segment.segment_id,
                index_id=task.index_id,
                build_id=task.build_id,
                field_name=task.field_name,
                key=key,
                params=dict(task.params),
            )
