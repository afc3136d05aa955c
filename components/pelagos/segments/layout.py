"""Where segment files live in the object store: one function per kind of object.

Keys are '/'-separated and relative to the object store's root (bucket plus
optional prefix, see storage/objects/protocol.py):

```
collections/{collection_id}/                                        collection_prefix
  segments/{partition_id}/{segment_id}/                             segment_prefix
    manifest.json                                                   manifest_key
    columns/{column}.arrow                                          column_key
    deltas/{log_id}.arrow                                           delta_key
  indexes/{segment_id}/{index_id}/{build_id}/                       index_prefix
    {file}                                                          index_key (file "index" by default)
```

`{column}` is the field ID in decimal when the column has one (user fields,
ID > 0), else `n-` followed by the percent-encoded column name (system and
unnamed-ID columns such as `_ts` and `$meta` -> `n-_ts`, `n-%24meta`). The two
spellings cannot collide: an ID is all digits, a name always starts with `n-`.

Invariants:
- keys are pure functions of their arguments: the same arguments always give
  the same key, on every machine and version (stored metadata refers to them);
- different arguments give different keys, and no key of one kind is a prefix
  of a key of another kind except through the documented prefixes;
- objects are immutable (DESIGN.md, invariant 5): a rewrite gets a new key --
  compaction writes a new segment ID, an index rebuild a new build ID, every
  flush of deletes a new log ID. Nothing here overwrites.
- IDs are non-negative integers (Milvus int64 IDs); anything else is refused
  with InvalidArgumentError, so a bad ID can never produce a strange path.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from pelagos.errors import InvalidArgumentError

MANIFEST_FILE = "manifest.json"
COLUMN_SUFFIX = ".arrow"
DEFAULT_INDEX_FILE = "index"

_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _id(what: str, value: int) -> str:
    # bool is an int subclass; a True segment ID is always a bug.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgumentError(f"{what} must be a non-negative integer, got {value!r}")
    return str(value)


def column_name_part(field_id_or_name: int | str) -> str:
    """The `{column}` part of a column key (see the module docstring)."""
    if isinstance(field_id_or_name, str):
        if not field_id_or_name:
            raise InvalidArgumentError("a column name must not be empty")
        return "n-" + quote(field_id_or_name, safe="_.-")
    if field_id_or_name == 0:
        raise InvalidArgumentError("field ID 0 means 'unassigned': pass the column name instead")
    return _id("field ID", field_id_or_name)


def collection_prefix(collection_id: int) -> str:
    """Every object of one collection (drop collection deletes this prefix)."""
    return f"collections/{_id('collection ID', collection_id)}/"


def partition_prefix(collection_id: int, partition_id: int) -> str:
    """Every segment of one partition (drop partition deletes this prefix)."""
    return f"{collection_prefix(collection_id)}segments/{_id('partition ID', partition_id)}/"


def segment_prefix(collection_id: int, partition_id: int, segment_id: int) -> str:
    """Every object of one segment: manifest, columns, delete logs (not its indexes)."""
    return f"{partition_prefix(collection_id, partition_id)}{_id('segment ID', segment_id)}/"


def manifest_key(collection_id: int, partition_id: int, segment_id: int) -> str:
    """The segment's manifest; written last, after every column file it names."""
    return segment_prefix(collection_id, partition_id, segment_id) + MANIFEST_FILE


def column_key(collection_id: int, partition_id: int, segment_id: int, field_id_or_name: int | str) -> str:
    """One column file (Arrow IPC) of a sealed segment."""
    part = column_name_part(field_id_or_name)
    return f"{segment_prefix(collection_id, partition_id, segment_id)}columns/{part}{COLUMN_SUFFIX}"


def delta_key(collection_id: int, partition_id: int, segment_id: int, log_id: int) -> str:
    """One delete log of a segment; each flush of deletes gets a new log ID."""
    prefix = segment_prefix(collection_id, partition_id, segment_id)
    return f"{prefix}deltas/{_id('delete log ID', log_id)}{COLUMN_SUFFIX}"


def index_prefix(collection_id: int, segment_id: int, index_id: int, build_id: int) -> str:
    """Every file of one index build of one segment."""
    return (
        f"{collection_prefix(collection_id)}indexes/{_id('segment ID', segment_id)}/"
        f"{_id('index ID', index_id)}/{_id('build ID', build_id)}/"
    )


def index_key(
    collection_id: int, segment_id: int, index_id: int, build_id: int, file: str = DEFAULT_INDEX_FILE
) -> str:
    """One file of an index build (most indexes are the single file `index`)."""
    if not _SAFE_FILE.match(file):
        raise InvalidArgumentError(f"index file name {file!r} must match {_SAFE_FILE.pattern}")
    return index_prefix(collection_id, segment_id, index_id, build_id) + file
