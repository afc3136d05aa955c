"""Sealed segment files: object-key layout, column files, manifests, stats, deletes, pk index.

Pure logic: everything here turns Arrow data into bytes and back; callers do
the uploads and downloads. See each module's docstring for its invariants.
"""

from pelagos.segments.columns import read_columns, read_columns_file, write_column, write_columns
from pelagos.segments.deltas import DeleteLog, alive_mask, visible_mask
from pelagos.segments.manifest import MANIFEST_FORMAT, ColumnFile, FieldEntry, SegmentManifest
from pelagos.segments.pk_index import PrimaryKeyIndex, in_pk_range
from pelagos.segments.segment import SealedSegmentData
from pelagos.segments.stats import ColumnStats, column_stats

__all__ = [
    "MANIFEST_FORMAT",
    "ColumnFile",
    "ColumnStats",
    "DeleteLog",
    "FieldEntry",
    "PrimaryKeyIndex",
    "SealedSegmentData",
    "SegmentManifest",
    "alive_mask",
    "column_stats",
    "in_pk_range",
    "read_columns",
    "read_columns_file",
    "visible_mask",
    "write_column",
    "write_columns",
]
