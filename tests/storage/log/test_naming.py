"""Channel name encoding: reversible, injective, and legal for JetStream."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pelagos.errors import LogBrokerError
from pelagos.storage.log.naming import (
    MAX_STREAM_NAME_LENGTH,
    channel_of_stream,
    decode_channel,
    encode_channel,
    stream_name,
    subject_name,
    validate_prefix,
)

_LEGAL = re.compile(r"[A-Za-z0-9_-]+")


@given(st.text(min_size=1, max_size=60))
def test_encoding_round_trips_and_is_legal(channel: str) -> None:
    encoded = encode_channel(channel)
    assert _LEGAL.fullmatch(encoded)
    assert decode_channel(encoded) == channel


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_distinct_channels_get_distinct_streams(a: str, b: str) -> None:
    if a != b:
        assert encode_channel(a) != encode_channel(b)


def test_readable_names_stay_readable() -> None:
    assert encode_channel("by-dev-dml-0") == "by-dev-dml-0"
    assert encode_channel("a.b_c d") == "a_2Eb_5Fc_20d"
    assert stream_name("pelagos", "a.b") == "pelagos_a_2Eb"
    assert subject_name("pelagos", "a.b") == "pelagos.log.a_2Eb"


def test_stream_belongs_to_its_prefix_only() -> None:
    stream = stream_name("pelagos", "x_1")
    assert channel_of_stream("pelagos", stream) == "x_1"
    assert channel_of_stream("pelagos-test", stream) is None
    assert channel_of_stream("pelagos", "pelagos-test_x") is None
    assert channel_of_stream("pelagos", "pelagos_bad_zz") is None


@pytest.mark.parametrize("bad", ["", "a_b", "a.b", "a b", "ü"])
def test_bad_prefix_is_refused(bad: str) -> None:
    with pytest.raises(LogBrokerError, match="prefix"):
        validate_prefix(bad)


def test_empty_and_too_long_channel_names_are_refused() -> None:
    with pytest.raises(LogBrokerError, match="empty"):
        encode_channel("")
    with pytest.raises(LogBrokerError, match="too long"):
        stream_name("pelagos", "x" * MAX_STREAM_NAME_LENGTH)


@pytest.mark.parametrize("text", ["_", "_4", "_GG", "a.b", "é", "_FF"])
def test_decode_refuses_what_encode_cannot_produce(text: str) -> None:
    with pytest.raises(LogBrokerError):
        decode_channel(text)
