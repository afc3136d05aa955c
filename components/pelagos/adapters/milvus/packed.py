"""Bulk moves between numpy and protobuf packed fixed-width repeated fields.

A proto3 `repeated float|double` field is encoded "packed": one tag, one
length, then the little-endian values back to back, which is exactly a numpy
buffer. Going through the wire form moves a million floats with two memcpys
instead of a million Python floats:

- reading: serialize the one-field message (FloatArray, DoubleArray) and view
  the payload with `np.frombuffer`;
- writing: `MergeFromString(tag + length + array.tobytes())` appends to the
  repeated field of any message, parent messages included (merging appends
  repeated fields).

Only for fixed-width element types (float32, float64); varint types (int32,
int64, bool) go through `.extend(array.tolist())`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_LEN_DELIMITED = 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def read_fixed(message: Any, dtype: type[np.floating[Any]]) -> np.ndarray:
    """The values of a message whose only field is `repeated <fixed> data = 1` (FloatArray, DoubleArray)."""
    raw = message.SerializeToString()
    width = np.dtype(dtype).itemsize
    values: list[np.ndarray] = []
    pos = 0
    while pos < len(raw):  # usually one packed run; tolerate several (merged messages)
        tag, pos = _read_varint(raw, pos)
        if tag & 7 != _LEN_DELIMITED:
            raise ValueError(f"unexpected wire type {tag & 7} for a packed fixed-width field")
        length, pos = _read_varint(raw, pos)
        values.append(
            np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=length // width, offset=pos)
        )
        pos += length
    if not values:
        return np.empty(0, dtype=dtype)
    joined = values[0] if len(values) == 1 else np.concatenate(values)
    return joined.astype(dtype, copy=False)


def append_fixed(message: Any, field_number: int, values: np.ndarray, dtype: type[np.floating[Any]]) -> None:
    """Append `values` to the packed fixed-width repeated field `field_number` of `message`."""
    if values.size == 0:
        return
    payload = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    header = _varint((field_number << 3) | _LEN_DELIMITED) + _varint(len(payload))
    message.MergeFromString(header + payload)
