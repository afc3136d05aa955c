"""Attaching built indexes to the sealed segments a query node serves.

Index files are downloaded to a scratch file and read from it off the event
loop (streamed: no copy of the index in memory as bytes), once per build; a
segment keeps being searched exactly until its index is attached. An index
that keeps the raw vectors in row order (HNSW, FLAT with L2 or IP) then
serves them for the segment too, whose own copy is released.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pelagos.index import load_index_file
from pelagos.index.protocol import VectorIndex
from pelagos.index.user_params import spec_from_params
from pelagos.interfaces.roles import ChannelView
from pelagos.querynode.segment_view import SegmentView
from pelagos.schema import DataType
from pelagos.storage.objects.protocol import ObjectStore


class IndexLoader:
    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._cache: dict[int, VectorIndex] = {}

    async def attach(self, seg: SegmentView, view: ChannelView) -> None:
        wanted = {i.field_name: i for i in view.indexes if i.segment_id == seg.segment_id}
        for name in list(seg.indexes):
            if name not in wanted:
                del seg.indexes[name]
        for name, info in wanted.items():
            index = self._cache.get(info.build_id)
            if index is None:
                f = seg.schema.field(name)
                if f is None or f.dim is None:
                    continue
                spec = spec_from_params(info.params, f.dim, f.dtype == DataType.BINARY_VECTOR)
                with tempfile.TemporaryDirectory(prefix="pelagos-index-") as scratch:
                    path = Path(scratch) / "index"
                    await self._objects.get_file(info.key, path)
                    index = await asyncio.to_thread(load_index_file, spec, path)
                self._cache[info.build_id] = index
            seg.indexes[name] = index
            raw = getattr(index, "raw_vectors", None)
            vectors = raw() if raw is not None else None
            if vectors is not None:  # the index keeps the rows as they are: hold them once
                seg.serve_vectors_from(name, vectors)

    def forget(self, build_ids: set[int]) -> None:
        for b in build_ids:
            self._cache.pop(b, None)
