"""Key rules shared by every object store (pure logic, no server)."""

from __future__ import annotations

import pytest

from pelagos.storage.objects.keys import InvalidObjectArgumentError, validate_key, validate_prefix


@pytest.mark.parametrize(
    "key",
    ["a", "a/b", "coll/1/seg/2/insert_log/100/7", "ünï/日本", "with space", "a.b/..c/c..", "x" * 255],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/a",
        "a/",
        "a//b",
        ".",
        "..",
        "../a",
        "a/..",
        "a/./b",
        "tab\there",
        "nl\n",
        "x" * 256,
        "/".join(["abcdefgh"] * 120),
        ".pelagos-tmp-abc",
        "a/.pelagos-tmp-x/b",
    ],
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(InvalidObjectArgumentError):
        validate_key(key)


def test_prefixes() -> None:
    for prefix in ["", "a", "a/", "a/b", "a/b/"]:
        assert validate_prefix(prefix) == prefix
    for prefix in ["/", "//", "a//", "../", "/a"]:
        with pytest.raises(InvalidObjectArgumentError):
            validate_prefix(prefix)
