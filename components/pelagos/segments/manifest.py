"""The manifest of a sealed segment: what it holds and which files hold it.

One JSON object per segment at layout.manifest_key, written after every
column file it names (so a manifest that exists names files that exist).
The segment's delete logs are not listed here: they arrive after sealing and
are recorded in the meta store (etcd), the single source of truth about
which objects make up a collection.

Encoding (`encode`/`decode`): UTF-8 JSON with sorted keys and no
insignificant whitespace, so the same manifest always gives the same bytes.
`format` is the layout number of the document; a reader refuses a format
newer than `MANIFEST_FORMAT` with SegmentFormatError (it would misread it)
and ignores keys it does not know within a format it does (a writer may add
optional keys without bumping the number).

Invariants:
- every field of the segment has exactly one `FieldEntry`, in column order,
  and appears in exactly one `ColumnFile`;
- `row_count` is the row count of every column file;
- `min_ts`/`max_ts` bound the `_ts` column (both 0 when the segment is
  empty); `pk_min`/`pk_max` bound the primary keys (None when empty);
- `created_at` is wall-clock Unix time in milliseconds (informational only;
  ordering uses hybrid timestamps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pelagos.errors import SegmentFormatError
from pelagos.segments.layout import manifest_key
from pelagos.segments.stats import ColumnStats

#: The manifest layout number this code writes and the newest it reads.
MANIFEST_FORMAT = 1

PkValue = int | str


@dataclass(frozen=True, slots=True)
class FieldEntry:
    """One column: its name, field ID (0 for system columns such as `_ts`) and statistics."""

    name: str
    field_id: int
    stats: ColumnStats

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "field_id": self.field_id, "stats": self.stats.to_json()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FieldEntry:
        return cls(
            name=str(doc["name"]), field_id=int(doc["field_id"]), stats=ColumnStats.from_json(doc["stats"])
        )


@dataclass(frozen=True, slots=True)
class ColumnFile:
    """One column file: its object key, size in bytes, the columns in it, its compression."""

    key: str
    size: int
    fields: tuple[str, ...]
    compression: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "fields": list(self.fields),
            "compression": self.compression,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ColumnFile:
        comp = doc["compression"]
        return cls(
            key=str(doc["key"]),
            size=int(doc["size"]),
            fields=tuple(str(f) for f in doc["fields"]),
            compression=None if comp is None else str(comp),
        )


@dataclass(frozen=True, slots=True)
class SegmentManifest:
    collection_id: int
    partition_id: int
    segment_id: int
    channel: str
    row_count: int
    min_ts: int
    max_ts: int
    pk_field: str
    pk_min: PkValue | None
    pk_max: PkValue | None
    fields: tuple[FieldEntry, ...]
    files: tuple[ColumnFile, ...]
    schema_version: int
    created_at: int

    # --- lookups --------------------------------------------------------------

    @property
    def key(self) -> str:
        """Where this manifest is stored (layout.manifest_key)."""
        return manifest_key(self.collection_id, self.partition_id, self.segment_id)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def stats(self) -> dict[str, ColumnStats]:
        return {f.name: f.stats for f in self.fields}

    @property
    def total_size(self) -> int:
        """Bytes of all column files together."""
        return sum(f.size for f in self.files)

    def field(self, name: str) -> FieldEntry:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"segment {self.segment_id} has no field {name!r}; it has {self.field_names}")

    def file_of(self, name: str) -> ColumnFile:
        """The column file that holds field `name`."""
        for f in self.files:
            if name in f.fields:
                return f
        raise KeyError(f"segment {self.segment_id} has no column file for field {name!r}")

    # --- encoding -------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "collection_id": self.collection_id,
            "partition_id": self.partition_id,
            "segment_id": self.segment_id,
            "channel": self.channel,
            "row_count": self.row_count,
            "min_ts": self.min_ts,
            "max_ts": self.max_ts,
            "pk_field": self.pk_field,
            "pk_min": self.pk_min,
            "pk_max": self.pk_max,
            "fields": [f.to_json() for f in self.fields],
            "files": [f.to_json() for f in self.files],
            "schema_version": self.schema_version,
            "created_at": self.created_at,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, doc: Any) -> SegmentManifest:
        if not isinstance(doc, dict):
            raise SegmentFormatError(f"a segment manifest is a JSON object, not {type(doc).__name__}")
        fmt = doc.get("format")
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise SegmentFormatError(f"segment manifest without a valid 'format' number (got {fmt!r})")
        if fmt > MANIFEST_FORMAT:
            raise SegmentFormatError(
                f"segment manifest format {fmt} is newer than this Pelagos understands ({MANIFEST_FORMAT}); "
                "upgrade Pelagos to read segments written by a newer version"
            )
        if fmt < 1:
            raise SegmentFormatError(f"segment manifest format {fmt} does not exist (formats start at 1)")
        try:
            return cls(
                collection_id=int(doc["collection_id"]),
                partition_id=int(doc["partition_id"]),
                segment_id=int(doc["segment_id"]),
                channel=str(doc["channel"]),
                row_count=int(doc["row_count"]),
                min_ts=int(doc["min_ts"]),
                max_ts=int(doc["max_ts"]),
                pk_field=str(doc["pk_field"]),
                pk_min=_pk(doc["pk_min"]),
                pk_max=_pk(doc["pk_max"]),
                fields=tuple(FieldEntry.from_json(f) for f in doc["fields"]),
                files=tuple(ColumnFile.from_json(f) for f in doc["files"]),
                schema_version=int(doc["schema_version"]),
                created_at=int(doc["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SegmentFormatError(f"segment manifest is missing or has a bad value: {e!r}") from e

    @classmethod
    def decode(cls, data: bytes | str) -> SegmentManifest:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SegmentFormatError(f"segment manifest is not JSON (truncated or corrupt?): {e}") from e
        return cls.from_json(doc)


def _pk(v: Any) -> PkValue | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise ValueError(f"primary key bound {v!r} is neither int nor string")
