"""Attaching built indexes to the sealed segments a query node serves.

Index files are fetched and deserialized off the event loop, once per
build; a segment keeps being searched exactly until its index is attached.
"""

from __future__ import annotations

import asyncio

from pelagos.index import load_index
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
                data = await self._objects.get(info.key)
                index = await asyncio.to_thread(load_index, spec, data)
                self._cache[info.build_id] = index
            seg.indexes[name] = index

    def forget(self, build_ids: set[int]) -> None:
        for b in build_ids:
            self._cache.pop(b, None)
