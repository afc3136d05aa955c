"""Index coordination: index definitions, and one build task per sealed segment.

An index is defined per (collection, field). Every sealed segment of the
collection gets one build of it on an index node; query nodes use a
segment's built index as soon as it is recorded and search the segment
exactly until then. Scalar index types (INVERTED, STL_SORT, ...) are
recorded so clients can describe them; scalar filters are evaluated
vectorised over columns, so they need no build.

Invariants:
- an index is validated (IndexSpec.parse) before it is recorded;
- at most one index per field; creating the same index again is a no-op,
  a different one on the same field is an error (as in Milvus);
- state is Finished when every sealed segment has a build, so a client that
  waits for Finished after a flush searches indexed segments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pelagos.coordinator.catalog import Catalog
from pelagos.errors import IndexNotFoundError, InvalidArgumentError, PelagosError
from pelagos.index.user_params import spec_from_params
from pelagos.interfaces.roles import IndexBuildTask, IndexNodeAPI, SegmentIndexInfo, SegmentInfo
from pelagos.interfaces.types import CollectionInfo, IndexInfo, IndexState
from pelagos.schema import DataType

log = logging.getLogger("pelagos.coordinator.indexes")

SCALAR_INDEX_TYPES = {"INVERTED", "STL_SORT", "TRIE", "BITMAP", "AUTOINDEX", ""}


class IndexCoordinator:
    def __init__(
        self,
        catalog: Catalog,
        allocate_ids: Callable[[int], Awaitable[int]],
        on_built: Callable[[int], Awaitable[None]],
    ) -> None:
        self._catalog = catalog
        self._allocate_ids = allocate_ids
        self._on_built = on_built
        self.indexnodes: list[IndexNodeAPI] = []
        self._indexes: dict[int, list[IndexInfo]] = {}
        self._built: dict[int, dict[tuple[int, int], SegmentIndexInfo]] = {}
        self._running: dict[tuple[int, int, int], asyncio.Task[None]] = {}
        self._failed: dict[tuple[int, int], str] = {}

    async def load(self, collection_ids: list[int]) -> None:
        for cid in collection_ids:
            self._indexes[cid] = await self._catalog.indexes(cid)
            self._built[cid] = {
                (b.segment_id, b.index_id): b for b in await self._catalog.segment_indexes(cid)
            }

    # --- definitions --------------------------------------------------------------------
    def indexes(self, collection_id: int) -> list[IndexInfo]:
        return list(self._indexes.get(collection_id, []))

    def metric(self, collection_id: int, field_name: str) -> str | None:
        for i in self._indexes.get(collection_id, []):
            if i.field_name == field_name and "metric_type" in i.params:
                return i.params["metric_type"].upper()
        return None

    async def create(
        self, c: CollectionInfo, field_name: str, index_name: str, params: dict[str, str]
    ) -> None:
        f = c.schema.field(field_name)
        if f is None or f.is_dynamic:
            raise InvalidArgumentError(f"cannot create index on non-exist field: {field_name}")
        name = index_name or field_name
        params = {k: str(v) for k, v in params.items()}
        if f.dtype.is_vector:
            assert f.dim is not None
            spec = spec_from_params(params, f.dim, f.dtype == DataType.BINARY_VECTOR)
            stored = {
                "index_type": spec.requested_type or str(spec.index_type),
                "metric_type": str(spec.metric),
            }
            stored |= {k: str(v) for k, v in spec.build_params().items()}
        else:
            kind = params.get("index_type", "").upper()
            if kind not in SCALAR_INDEX_TYPES:
                raise InvalidArgumentError(
                    f"index type {kind} is not supported on scalar field {field_name}; "
                    f"use one of {sorted(t for t in SCALAR_INDEX_TYPES if t)}"
                )
            stored = {"index_type": kind or "INVERTED"}
        existing = self._indexes.setdefault(c.collection_id, [])
        for i in existing:
            if i.field_name == field_name or i.index_name == name:
                if i.field_name == field_name and i.index_name == name and i.params == stored:
                    return
                if i.field_name == field_name:
                    raise InvalidArgumentError(
                        f"at most one distinct index is allowed per field: field {field_name} already has "
                        f"index {i.index_name} with params {i.params}"
                    )
                raise InvalidArgumentError(f"index name {name} is already used on field {i.field_name}")
        info = IndexInfo(
            collection=c.name,
            field_name=field_name,
            index_name=name,
            index_id=await self._allocate_ids(1),
            params=stored,
            state=IndexState.FINISHED,
        )
        await self._catalog.save_index(c.collection_id, info)
        existing.append(info)
        await self.schedule(c, await self._catalog.segments(c.collection_id))

    def _select(self, c: CollectionInfo, field_name: str, index_name: str) -> list[IndexInfo]:
        out = [
            i
            for i in self._indexes.get(c.collection_id, [])
            if (not field_name or i.field_name == field_name)
            and (not index_name or i.index_name == index_name)
        ]
        if not out:
            raise IndexNotFoundError(
                f"index not found[collection={c.name}]" + (f"[index={index_name}]" if index_name else "")
            )
        return out

    def describe(
        self, c: CollectionInfo, field_name: str, index_name: str, segments: list[SegmentInfo]
    ) -> list[IndexInfo]:
        out = []
        built = self._built.get(c.collection_id, {})
        total = sum(s.row_count for s in segments)
        for i in self._select(c, field_name, index_name):
            f = c.schema.field(i.field_name)
            if f is None or not f.dtype.is_vector:
                out.append(IndexInfo(**{**i.__dict__, "total_rows": total, "indexed_rows": total}))
                continue
            indexed = sum(s.row_count for s in segments if (s.segment_id, i.index_id) in built)
            failed = [r for (sid, iid), r in self._failed.items() if iid == i.index_id]
            state = IndexState.FINISHED if indexed == total else IndexState.IN_PROGRESS
            if failed and state != IndexState.FINISHED:
                state = IndexState.FAILED
            out.append(
                IndexInfo(
                    collection=c.name,
                    field_name=i.field_name,
                    index_name=i.index_name,
                    index_id=i.index_id,
                    params=dict(i.params),
                    state=state,
                    total_rows=total,
                    indexed_rows=indexed,
                    pending_index_rows=total - indexed,
                    fail_reason=failed[0] if failed and state == IndexState.FAILED else "",
                )
            )
        return out

    async def drop(self, c: CollectionInfo, field_name: str, index_name: str) -> None:
        try:
            chosen = self._select(c, field_name, index_name)
        except IndexNotFoundError:
            return
        for i in chosen:
            await self._catalog.delete_index(c.collection_id, i.index_id)
            self._indexes[c.collection_id] = [
                x for x in self._indexes[c.collection_id] if x.index_id != i.index_id
            ]
            built = self._built.get(c.collection_id, {})
            for key in [k for k in built if k[1] == i.index_id]:
                del built[key]
        await self._on_built(c.collection_id)

    def forget(self, collection_id: int) -> None:
        self._indexes.pop(collection_id, None)
        self._built.pop(collection_id, None)
        for key, task in list(self._running.items()):
            if key[0] == collection_id:
                task.cancel()

    def truncated(self, collection_id: int) -> None:
        """The collection's segments are gone: so are their builds."""
        self._built[collection_id] = {}
        for key, task in list(self._running.items()):
            if key[0] == collection_id:
                task.cancel()

    def built(self, collection_id: int) -> list[SegmentIndexInfo]:
        return list(self._built.get(collection_id, {}).values())

    # --- builds -------------------------------------------------------------------------------
    async def schedule(self, c: CollectionInfo, segments: list[SegmentInfo]) -> None:
        if not self.indexnodes:
            return
        built = self._built.setdefault(c.collection_id, {})
        for i in self._indexes.get(c.collection_id, []):
            f = c.schema.field(i.field_name)
            if f is None or not f.dtype.is_vector or f.dim is None:
                continue
            for s in segments:
                key = (c.collection_id, s.segment_id, i.index_id)
                if (s.segment_id, i.index_id) in built or key in self._running:
                    continue
                task = IndexBuildTask(
                    collection_id=c.collection_id,
                    segment=s,
                    index_id=i.index_id,
                    build_id=await self._allocate_ids(1),
                    field_name=i.field_name,
                    params=dict(i.params),
                    dim=f.dim,
                    is_binary=f.dtype == DataType.BINARY_VECTOR,
                )
                node = self.indexnodes[s.segment_id % len(self.indexnodes)]
                self._running[key] = asyncio.create_task(
                    self._run(node, task, key), name=f"index-build-{key}"
                )

    async def _run(self, node: IndexNodeAPI, task: IndexBuildTask, key: tuple[int, int, int]) -> None:
        try:
            result = await node.build(task)
            if task.collection_id not in self._built or not any(
                i.index_id == task.index_id for i in self._indexes.get(task.collection_id, [])
            ):
                return  # dropped meanwhile
            await self._catalog.save_segment_index(result)
            self._built[task.collection_id][(result.segment_id, result.index_id)] = result
            self._failed.pop((task.segment.segment_id, task.index_id), None)
            await self._on_built(task.collection_id)
        except asyncio.CancelledError:
            raise
        except PelagosError as exc:
            self._failed[(task.segment.segment_id, task.index_id)] = str(exc)
            log.error("index build of segment %d failed: %s", task.segment.segment_id, exc)
        except Exception as exc:
            self._failed[(task.segment.segment_id, task.index_id)] = f"{type(exc).__name__}: {exc}"
            log.exception("index build of segment %d failed", task.segment.segment_id)
        finally:
            self._running.pop(key, None)
