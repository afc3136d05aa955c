"""Segment manifests: stable, versioned JSON; bad documents refused with a clear error."""

from __future__ import annotations

import json
import math

import pytest

from pelagos.errors import SegmentFormatError
from pelagos.segments.manifest import MANIFEST_FORMAT, ColumnFile, FieldEntry, SegmentManifest
from pelagos.segments.stats import ColumnStats


def sample(pk_min: int | str | None = -5, pk_max: int | str | None = 2**63 - 1) -> SegmentManifest:
    return SegmentManifest(
        collection_id=1,
        partition_id=2,
        segment_id=3,
        channel="by-dev-rootcoord-dml_0_1v0",
        row_count=4,
        min_ts=1 << 40,
        max_ts=(1 << 64) - 1,
        pk_field="id",
        pk_min=pk_min,
        pk_max=pk_max,
        fields=(
            FieldEntry("id", 100, ColumnStats(pk_min, pk_max, 0, 4)),
            FieldEntry("score", 101, ColumnStats(-math.inf, 2.5, 1, 4)),
            FieldEntry("title", 102, ColumnStats("", "中文", 0, 4)),
            FieldEntry("flag", 103, ColumnStats(False, True, 0, 4)),
            FieldEntry("vec", 104, ColumnStats(None, None, 0, 4)),
            FieldEntry("_ts", 0, ColumnStats(1 << 40, (1 << 64) - 1, 0, 4)),
        ),
        files=(
            ColumnFile("collections/1/segments/2/3/columns/100.arrow", 1234, ("id",), "zstd"),
            ColumnFile("collections/1/segments/2/3/columns/104.arrow", 99, ("vec", "score"), None),
        ),
        schema_version=7,
        created_at=1_700_000_000_000,
    )


@pytest.mark.parametrize("bounds", [(-5, 2**63 - 1), ("a", "zé"), (None, None)])
def test_round_trip(bounds: tuple[int | str | None, int | str | None]) -> None:
    m = sample(*bounds)
    back = SegmentManifest.decode(m.encode())
    assert back == m
    assert type(back.fields[3].stats.min) is bool


def test_encoding_is_stable_and_strict_json() -> None:
    m = sample()
    data = m.encode()
    assert data == sample().encode() == SegmentManifest.decode(data).encode()
    doc = json.loads(data)
    assert doc["format"] == MANIFEST_FORMAT
    assert list(doc) == sorted(doc)
    assert b"Infinity" not in data and b" " not in data.replace(b"\xe4\xb8\xad", b"")


def test_lookups() -> None:
    m = sample()
    assert m.key == "collections/1/segments/2/3/manifest.json"
    assert m.field_names == ["id", "score", "title", "flag", "vec", "_ts"]
    assert m.file_of("score").key.endswith("104.arrow")
    assert m.field("title").stats.max == "中文"
    assert m.stats["id"].min == -5 and m.total_size == 1333
    with pytest.raises(KeyError):
        m.field("nope")
    with pytest.raises(KeyError):
        m.file_of("title")


def test_unknown_keys_within_a_known_format_are_ignored() -> None:
    doc = sample().to_json()
    doc["added_later"] = {"x": 1}
    assert SegmentManifest.from_json(doc) == sample()


def test_newer_format_is_refused_with_a_clear_error() -> None:
    doc = sample().to_json()
    doc["format"] = MANIFEST_FORMAT + 1
    with pytest.raises(SegmentFormatError, match=r"newer than this Pelagos understands.*upgrade"):
        SegmentManifest.decode(json.dumps(doc))


@pytest.mark.parametrize("fmt", [None, "1", 0, -1, True, 1.0])
def test_missing_or_invalid_format_is_refused(fmt: object) -> None:
    doc = sample().to_json()
    if fmt is None:
        del doc["format"]
    else:
        doc["format"] = fmt
    with pytest.raises(SegmentFormatError, match="format"):
        SegmentManifest.from_json(doc)


@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe", b"[1, 2]", b'"manifest"'])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(SegmentFormatError):
        SegmentManifest.decode(data)


@pytest.mark.parametrize("key", ["row_count", "files", "fields", "pk_min", "channel"])
def test_missing_key_is_refused(key: str) -> None:
    doc = sample().to_json()
    del doc[key]
    with pytest.raises(SegmentFormatError, match=key):
        SegmentManifest.from_json(doc)


def test_bad_values_are_refused() -> None:
    doc = sample().to_json()
    doc["pk_min"] = 1.5
    with pytest.raises(SegmentFormatError):
        SegmentManifest.from_json(doc)
    doc = sample().to_json()
    doc["fields"][0]["stats"]["kind"] = "mystery"
    with pytest.raises(SegmentFormatError):
        SegmentManifest.from_json(doc)
