"""The index node: builds the vector index of one sealed segment.

It downloads only the segment's vector column to a scratch file and
memory-maps it, builds the faiss index in a worker thread (faiss releases the
GIL) chunk by chunk, handing each chunk's pages back once added, writes the
index to a scratch file (streamed: it never exists twice in memory) and
uploads that under a key of its own build ID (objects are immutable), and
reports where it put it. The coordinator records the result. At 1M x 128 the
build holds the index and ~32 MiB of vectors, not 0.5 GB more.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
import time
from pathlib import Path

from pelagos.errors import SegmentFormatError
from pelagos.index import create_index, save_index
from pelagos.index.user_params import spec_from_params
from pelagos.indexnode import metrics
from pelagos.interfaces.roles import IndexBuildTask, SegmentIndexInfo
from pelagos.observability.memory import release_free_memory
from pelagos.schema import DataType
from pelagos.schema.arrow import vectors_of
from pelagos.segments import SegmentManifest
from pelagos.segments.columns import MappedColumns
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
            dtype = DataType.BINARY_VECTOR if task.is_binary else DataType.FLOAT_VECTOR
            column = manifest.file_of(task.field_name)
            key = index_key(task.collection_id, task.segment.segment_id, task.index_id, task.build_id)
            with tempfile.TemporaryDirectory(prefix="pelagos-index-") as scratch:
                source, target = Path(scratch) / "vectors", Path(scratch) / "index"
                await self._objects.get_file(column.key, source)

                def build() -> None:  # the index lives only here: freed before the upload
                    with MappedColumns(source, [task.field_name]) as mapped:
                        if mapped.table.num_rows != manifest.row_count:
                            raise SegmentFormatError(
                                f"object {column.key} has {mapped.table.num_rows} rows, "
                                f"its segment manifest says {manifest.row_count}"
                            )
                        vectors = vectors_of(mapped.table.column(task.field_name), dtype, task.dim)
                        index = create_index(spec)
                        release = functools.partial(mapped.release, vectors)
                        index.build(vectors, release)
                        del vectors, release  # no view of the mapping may outlive it
                    save_index(index, target)
                    del index
                    release_free_memory()

                try:
                    await asyncio.to_thread(build)
                except Exception:
                    metrics.BUILDS.labels("error").inc()
                    raise
                await self._objects.put_file(key, target)
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
