"""The query node: serves channels (sealed + growing) and answers shard reads."""

from __future__ import annotations

import logging
import time

import pyarrow as pa

from pelagos.errors import CollectionNotLoadedError
from pelagos.interfaces.roles import ChannelView, ShardQuery, ShardSearch, ShardSearchResult
from pelagos.querynode import metrics
from pelagos.querynode.executor import search_channel
from pelagos.querynode.filter_cache import FilterCache
from pelagos.querynode.index_loader import IndexLoader
from pelagos.querynode.merged_search import SearchMerger
from pelagos.querynode.query import query_channel
from pelagos.querynode.served_channel import DEFAULT_FILTER_CACHE_BYTES, ServedChannel
from pelagos.storage.log.protocol import LogBroker
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger("pelagos.querynode")


class QueryNode:
    """Implements QueryNodeAPI."""

    name = "querynode"

    def __init__(
        self,
        *,
        broker: LogBroker,
        objects: ObjectStore,
        filter_cache_bytes: int = DEFAULT_FILTER_CACHE_BYTES,
    ) -> None:
        self._broker = broker
        self._objects = objects
        self._filters = FilterCache(filter_cache_bytes)
        self._merger = SearchMerger()
        self._indexes = IndexLoader(objects)
        self._attach_indexes = self._indexes.attach
        self._channels: dict[str, ServedChannel] = {}

    async def serve_channel(self, view: ChannelView) -> None:
        if view.channel in self._channels:
            await self._channels[view.channel].sync(view)
            return
        ch = ServedChannel(
            view,
            broker=self._broker,
            objects=self._objects,
            attach_indexes=self._attach_indexes,
            filters=self._filters,
        )
        self._channels[view.channel] = ch
        await ch.start()

    async def release_channel(self, channel: str) -> None:
        ch = self._channels.pop(channel, None)
        if ch is not None:
            await ch.stop()

    async def sync_channel(self, view: ChannelView) -> None:
        ch = self._channels.get(view.channel)
        if ch is not None:
            await ch.sync(view)

    async def channel_ready(self, channel: str) -> bool:
        ch = self._channels.get(channel)
        return ch is not None and ch.ready.is_set()

    def _channel(self, channel: str) -> ServedChannel:
        ch = self._channels.get(channel)
        if ch is None:
            raise CollectionNotLoadedError(
                f"channel {channel} is not served by this query node; load the collection"
            )
        return ch

    async def search(self, request: ShardSearch) -> ShardSearchResult:
        return await self._merger.search(request, self._search)

    async def _search(self, request: ShardSearch) -> ShardSearchResult:
        ch = self._channel(request.channel)
        started = time.perf_counter()
        if not ch.ready.is_set():
            await ch.ready.wait()
        if ch.consumed_ts < request.guarantee_ts:
            await ch.wait_serviceable(request.guarantee_ts)
        waited = time.perf_counter()
        metrics.WAIT_LATENCY.observe(waited - started)
        result = await search_channel(ch, request)
        metrics.SEARCH_LATENCY.observe(time.perf_counter() - waited)
        return result

    async def query(self, request: ShardQuery) -> pa.Table:
        ch = self._channel(request.channel)
        started = time.perf_counter()
        await ch.ready.wait()
        await ch.wait_serviceable(request.guarantee_ts)
        waited = time.perf_counter()
        metrics.WAIT_LATENCY.observe(waited - started)
        result = await query_channel(ch, request)
        metrics.QUERY_LATENCY.observe(time.perf_counter() - waited)
        return result

    async def stop(self) -> None:
        for ch in list(self._channels):
            await self.release_channel(ch)
