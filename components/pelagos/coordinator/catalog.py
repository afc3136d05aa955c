"""The typed catalog: the coordinator's view of the meta store.

Keys (relative to the meta store root):
  db/{name}                                  database
  coll/{collection_id}                       collection (schema, partitions, channels, ...)
  alias/{db}/{alias}                         alias -> collection id
  seg/{collection_id}/{segment_id}           sealed segment
  delta/{collection_id}/{log_id}             delete log of a channel flush
  cp/{channel}                               channel checkpoint
  idx/{collection_id}/{index_id}             index definition
  segidx/{collection_id}/{segment_id}/{index_id}  built index of a segment
  load/{collection_id}                       load request (partitions, replicas)

Values are JSON. The meta store is the single source of truth (DESIGN.md,
invariant 5): a flush commit writes its segments, deltas and the channel
checkpoint in one transaction, so a reader never sees half a flush.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from pelagos.interfaces.roles import ChannelCheckpoint, DeltaInfo, FlushCommit, SegmentIndexInfo, SegmentInfo
from pelagos.interfaces.types import (
    CollectionInfo,
    ConsistencyLevel,
    DatabaseInfo,
    IndexInfo,
    IndexState,
    PartitionInfo,
)
from pelagos.schema.codec import schema_from_dict, schema_to_dict
from pelagos.storage.meta.protocol import MetaStore

T = TypeVar("T")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def collection_to_dict(c: CollectionInfo) -> dict[str, Any]:
    return {
        "db": c.db,
        "name": c.name,
        "collection_id": c.collection_id,
        "schema": schema_to_dict(c.schema),
        "shards_num": c.shards_num,
        "channels": c.channels,
        "consistency_level": int(c.consistency_level),
        "properties": c.properties,
        "partitions": [dataclasses.asdict(p) for p in c.partitions],
        "created_ts": c.created_ts,
        "updated_ts": c.updated_ts,
        "schema_version": c.schema_version,
    }


def collection_from_dict(d: dict[str, Any]) -> CollectionInfo:
    return CollectionInfo(
        db=d["db"],
        name=d["name"],
        collection_id=int(d["collection_id"]),
        schema=schema_from_dict(d["schema"]),
        shards_num=int(d["shards_num"]),
        channels=list(d["channels"]),
        consistency_level=ConsistencyLevel(d["consistency_level"]),
        properties=dict(d.get("properties") or {}),
        aliases=[],
        partitions=[PartitionInfo(**p) for p in d.get("partitions", [])],
        created_ts=int(d["created_ts"]),
        updated_ts=int(d["updated_ts"]),
        schema_version=int(d.get("schema_version", 0)),
    )


def index_to_dict(i: IndexInfo) -> dict[str, Any]:
    d = dataclasses.asdict(i)
    d["state"] = int(i.state)
    return d


def index_from_dict(d: dict[str, Any]) -> IndexInfo:
    d = dict(d)
    d["state"] = IndexState(d["state"])
    return IndexInfo(**d)


class Catalog:
    """Reads and writes the catalog keys; holds no state of its own."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta

    # --- generic -----------------------------------------------------------------
    async def _load_prefix(self, prefix: str) -> list[dict[str, Any]]:
        return [json.loads(kv.value) for kv in await self.meta.range(prefix)]

    # --- databases -----------------------------------------------------------------
    async def save_database(self, db: DatabaseInfo) -> None:
        await self.meta.put(f"db/{db.name}", _dumps(dataclasses.asdict(db)))

    async def delete_database(self, name: str) -> None:
        await self.meta.delete(f"db/{name}")

    async def databases(self) -> list[DatabaseInfo]:
        return [DatabaseInfo(**d) for d in await self._load_prefix("db/")]

    # --- collections --------------------------------------------------------------
    async def save_collection(self, c: CollectionInfo) -> None:
        await self.meta.put(f"coll/{c.collection_id}", _dumps(collection_to_dict(c)))

    async def delete_collection(self, collection_id: int) -> None:
        for prefix in (
            f"coll/{collection_id}",
            f"seg/{collection_id}/",
            f"delta/{collection_id}/",
            f"idx/{collection_id}/",
            f"segidx/{collection_id}/",
            f"load/{collection_id}",
        ):
            await self.meta.delete_prefix(prefix)

    async def truncate_collection(self, collection_id: int, channels: list[str]) -> None:
        """Forget every segment, delete log, built index and checkpoint of a collection."""
        for prefix in (f"seg/{collection_id}/", f"delta/{collection_id}/", f"segidx/{collection_id}/"):
            await self.meta.delete_prefix(prefix)
        for ch in channels:
            await self.meta.delete(f"cp/{ch}")

    async def collections(self) -> list[CollectionInfo]:
        out = []
        for kv in await self.meta.range("coll/"):
            out.append(collection_from_dict(json.loads(kv.value)))
        return out

    # --- aliases --------------------------------------------------------------------
    async def save_alias(self, db: str, alias: str, collection_id: int) -> None:
        await self.meta.put(f"alias/{db}/{alias}", _dumps({"collection_id": collection_id}))

    async def delete_alias(self, db: str, alias: str) -> None:
        await self.meta.delete(f"alias/{db}/{alias}")

    async def aliases(self) -> list[tuple[str, str, int]]:
        out = []
        for kv in await self.meta.range("alias/"):
            _, db, alias = kv.key.split("/", 2)
            out.append((db, alias, int(json.loads(kv.value)["collection_id"])))
        return out

    # --- segments, deltas, checkpoints ---------------------------------------------
    async def commit_flush(self, commit: FlushCommit) -> None:
        puts: dict[str, bytes] = {}
        for s in commit.segments:
            puts[f"seg/{s.collection_id}/{s.segment_id}"] = _dumps(dataclasses.asdict(s))
        for d in commit.deltas:
            puts[f"delta/{d.collection_id}/{d.log_id}"] = _dumps(dataclasses.asdict(d))
        puts[f"cp/{commit.channel}"] = _dumps(dataclasses.asdict(commit.checkpoint))
        await self.meta.transaction(puts=puts)

    async def segments(self, collection_id: int) -> list[SegmentInfo]:
        return [SegmentInfo(**d) for d in await self._load_prefix(f"seg/{collection_id}/")]

    async def deltas(self, collection_id: int) -> list[DeltaInfo]:
        return [DeltaInfo(**d) for d in await self._load_prefix(f"delta/{collection_id}/")]

    async def checkpoint(self, channel: str) -> ChannelCheckpoint:
        kv = await self.meta.get(f"cp/{channel}")
        if kv is None:
            return ChannelCheckpoint(channel=channel, position=0, ts=0)
        return ChannelCheckpoint(**json.loads(kv.value))

    async def delete_checkpoint(self, channel: str) -> None:
        await self.meta.delete(f"cp/{channel}")

    # --- indexes ----------------------------------------------------------------------
    async def save_index(self, collection_id: int, info: IndexInfo) -> None:
        await self.meta.put(f"idx/{collection_id}/{info.index_id}", _dumps(index_to_dict(info)))

    async def delete_index(self, collection_id: int, index_id: int) -> None:
        await self.meta.delete(f"idx/{collection_id}/{index_id}")
        for kv in await self.meta.range(f"segidx/{collection_id}/"):
            if kv.key.endswith(f"/{index_id}"):
                await self.meta.delete(kv.key)

    async def indexes(self, collection_id: int) -> list[IndexInfo]:
        return [index_from_dict(d) for d in await self._load_prefix(f"idx/{collection_id}/")]

    async def save_segment_index(self, s: SegmentIndexInfo) -> None:
        await self.meta.put(
            f"segidx/{s.collection_id}/{s.segment_id}/{s.index_id}", _dumps(dataclasses.asdict(s))
        )

    async def segment_indexes(self, collection_id: int) -> list[SegmentIndexInfo]:
        return [SegmentIndexInfo(**d) for d in await self._load_prefix(f"segidx/{collection_id}/")]

    # --- loads ------------------------------------------------------------------------
    async def save_load(self, collection_id: int, partitions: list[int], replicas: int) -> None:
        await self.meta.put(f"load/{collection_id}", _dumps({"partitions": partitions, "replicas": replicas}))

    async def delete_load(self, collection_id: int) -> None:
        await self.meta.delete(f"load/{collection_id}")

    async def loads(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for kv in await self.meta.range("load/"):
            out[int(kv.key.split("/", 1)[1])] = json.loads(kv.value)
        return out
