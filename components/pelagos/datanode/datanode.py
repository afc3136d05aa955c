"""The data node: owns the channels the coordinator gives it and turns their
log into sealed segments in object storage (see channel_writer.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pelagos.datanode.channel_writer import ChannelWriter, DataNodeSettings
from pelagos.interfaces.roles import ChannelCheckpoint, FlushCommit
from pelagos.interfaces.types import CollectionInfo
from pelagos.storage.log.protocol import LogBroker
from pelagos.storage.objects.protocol import ObjectStore

log = logging.getLogger("pelagos.datanode")


class DataNode:
    """Implements DataNodeAPI."""

    name = "datanode"

    def __init__(
        self,
        *,
        broker: LogBroker,
        objects: ObjectStore,
        checkpoint: Callable[[str], Awaitable[ChannelCheckpoint]],
        commit: Callable[[FlushCommit], Awaitable[None]],
        allocate_ids: Callable[[int], Awaitable[int]],
        settings: DataNodeSettings | None = None,
    ) -> None:
        self._broker = broker
        self._objects = objects
        self._checkpoint = checkpoint
        self._commit = commit
        self._allocate_ids = allocate_ids
        self.settings = settings or DataNodeSettings()
        self._channels: dict[str, ChannelWriter] = {}

    async def watch_channel(self, collection: CollectionInfo, channel: str) -> None:
        if channel in self._channels:
            self._channels[channel].collection = collection
            return
        writer = ChannelWriter(
            collection,
            channel,
            broker=self._broker,
            objects=self._objects,
            checkpoint=await self._checkpoint(channel),
            commit=self._commit,
            allocate_ids=self._allocate_ids,
            settings=self.settings,
        )
        self._channels[channel] = writer
        await writer.start()

    async def release_channel(self, channel: str) -> None:
        writer = self._channels.pop(channel, None)
        if writer is not None:
            await writer.stop()

    async def stop(self) -> None:
        for ch in list(self._channels):
            await self.release_channel(ch)

    @property
    def channels(self) -> list[str]:
        return sorted(self._channels)
