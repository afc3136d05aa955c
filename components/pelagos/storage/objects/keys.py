"""Object key rules shared by every object store, so S3 and local disk accept
exactly the same keys.

A key is a '/'-separated path relative to the store's root. Invariants:
- a valid key is non-empty, does not start or end with '/', has no empty,
  '.' or '..' segment, no control character, no segment longer than 255
  UTF-8 bytes (a file name on local disk) and at most 1024 UTF-8 bytes in
  all (the S3 limit);
- no segment starts with TEMP_MARKER: the local store names its temporary
  files so, and listings never show them;
- a prefix (for list / delete_prefix) is "" or a valid key, optionally
  followed by one '/'; it matches by string prefix, as in S3 ("a/b" matches
  "a/b", "a/bc" and "a/b/c").
"""

from __future__ import annotations

import re

from pelagos.errors import ObjectStoreError

TEMP_MARKER = ".pelagos-tmp-"
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidObjectArgumentError(ObjectStoreError):
    """A key, prefix or byte range given to an object store is malformed."""


def validate_key(key: str) -> str:
    """Return `key` unchanged when valid, else raise InvalidObjectArgumentError."""
    if not isinstance(key, str) or not key:
        raise InvalidObjectArgumentError(f"object key must be a non-empty string, got {key!r}")
    if key.startswith("/"):
        raise InvalidObjectArgumentError(
            f"object key {key!r} is absolute; keys are relative paths like 'collection/1/segment/2'"
        )
    if key.endswith("/"):
        raise InvalidObjectArgumentError(f"object key {key!r} ends with '/'; a key names an object")
    if _CONTROL.search(key):
        raise InvalidObjectArgumentError(f"object key {key!r} contains a control character")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidObjectArgumentError(
            f"object key {key[:64]!r}... is longer than {MAX_KEY_BYTES} bytes (UTF-8)"
        )
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidObjectArgumentError(
                f"object key {key!r} has an empty, '.' or '..' segment; "
                f"keys may not climb out of the store or repeat '/'"
            )
        if segment.startswith(TEMP_MARKER):
            raise InvalidObjectArgumentError(
                f"object key {key!r} has a segment starting with {TEMP_MARKER!r}, "
                f"which is reserved for temporary files"
            )
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidObjectArgumentError(
                f"object key {key!r} has a segment longer than {MAX_SEGMENT_BYTES} bytes (UTF-8)"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` unchanged when valid ("" or a key with an optional
    trailing '/'), else raise InvalidObjectArgumentError."""
    if not isinstance(prefix, str):
        raise InvalidObjectArgumentError(f"object prefix must be a string, got {prefix!r}")
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def validate_range(offset: int, length: int) -> None:
    """Raise InvalidObjectArgumentError unless offset and length are >= 0."""
    if offset < 0 or length < 0:
        raise InvalidObjectArgumentError(
            f"byte range needs offset >= 0 and length >= 0, got offset={offset}, length={length}"
        )
