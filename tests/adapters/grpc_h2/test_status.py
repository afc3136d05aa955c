"""gRPC message framing, timeouts and status text of the grpc_h2 server (pure functions)."""

from __future__ import annotations

import gzip
import zlib

import grpc
import pytest

from pelagos.adapters.grpc_h2 import status as gs


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30S", 30.0),
        ("100m", 0.1),
        ("5M", 300.0),
        ("2H", 7200.0),
        ("250u", 250e-6),
        ("99999999n", 0.099999999),
    ],
)
def test_timeouts(text: str, seconds: float) -> None:
    assert gs.parse_timeout(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "S", "10", "10x", "123456789S", "-1S", "1.5S"])
def test_malformed_timeouts_are_no_timeout(text: str | None) -> None:
    assert gs.parse_timeout(text) is None


def test_status_codes_from_grpc_enums_and_ints() -> None:
    assert gs.code_of(grpc.StatusCode.UNIMPLEMENTED) == 12
    assert gs.code_of(5) == 5


def test_message_text_is_percent_encoded() -> None:
    assert gs.encode_message_text("plain text: ok") == "plain text: ok"
    assert gs.encode_message_text("50% of ä\n") == "50%25 of %C3%A4%0A"


def test_unframe_plain_and_compressed() -> None:
    payload = b"hello" * 100
    assert gs.unframe_message(gs.frame_message(payload), None, 1 << 20) == payload
    for codec, packed in (("gzip", gzip.compress(payload)), ("deflate", zlib.compress(payload))):
        body = b"\x01" + len(packed).to_bytes(4, "big") + packed
        assert gs.unframe_message(body, codec, 1 << 20) == payload


@pytest.mark.parametrize(
    ("body", "encoding", "code"),
    [
        (b"\x00\x00", None, gs.INTERNAL),  # no complete prefix
        (b"\x00\x00\x00\x00\x09abc", None, gs.INTERNAL),  # length says 9, 3 follow
        (b"\x01\x00\x00\x00\x03abc", "snappy", gs.UNIMPLEMENTED),
        (b"\x01\x00\x00\x00\x03abc", "gzip", gs.INTERNAL),  # not gzip data
    ],
)
def test_bad_messages(body: bytes, encoding: str | None, code: int) -> None:
    with pytest.raises(gs.MessageError) as err:
        gs.unframe_message(body, encoding, 1 << 20)
    assert err.value.code == code


def test_decompression_is_bounded() -> None:
    packed = gzip.compress(b"\x00" * 100_000)
    body = b"\x01" + len(packed).to_bytes(4, "big") + packed
    with pytest.raises(gs.MessageError) as err:
        gs.unframe_message(body, "gzip", 1000)
    assert err.value.code == gs.RESOURCE_EXHAUSTED
