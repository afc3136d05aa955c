"""HeaderDecoder against the hpack library's encoder: same fields, same dynamic table, same errors."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pelagos.adapters.grpc_h2.headers import HeaderDecoder

names = st.sampled_from([":path", "content-type", "grpc-timeout", "dbname", "x-custom", "user-agent"])
values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=300)
header_lists = st.lists(st.tuples(names, values), max_size=12)


@settings(max_examples=200, deadline=None)
@given(blocks=st.lists(st.tuples(header_lists, st.booleans(), st.booleans()), min_size=1, max_size=8))
def test_decodes_what_hpack_encodes_across_blocks(
    blocks: list[tuple[list[tuple[str, str]], bool, bool]],
) -> None:
    encoder = hpack.Encoder()
    reference = hpack.Decoder()
    decoder = HeaderDecoder()
    for headers, huffman, never_index in blocks:
        fields = [hpack.NeverIndexedHeaderTuple(n, v) if never_index else (n, v) for n, v in headers]
        block = encoder.encode(fields, huffman=huffman)
        assert decoder.decode(block) == [(str(n), str(v)) for n, v in reference.decode(block)]


def test_table_size_update_at_the_start_shrinks_the_table() -> None:
    encoder = hpack.Encoder()
    decoder = HeaderDecoder()
    decoder.decode(encoder.encode([("x-a", "1" * 100)]))
    encoder.header_table_size = 0  # the next block starts with a size update to 0
    assert decoder.decode(encoder.encode([("x-b", "2")])) == [("x-b", "2")]
    with pytest.raises(hpack.HPACKDecodingError, match="not in the table"):
        decoder.decode(b"\xbe")  # index 62: the first dynamic entry, evicted by the update


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"\x80", "index 0"),
        (b"\xff\x80", "truncated"),  # a multi-byte integer that never ends
        (b"\x00\x05ab", "truncated"),  # name literal longer than the block
        (b"\xbf\x10", "not in the table"),  # index 63 with an empty dynamic table
        (b"\x3f\xe2\x1f", "above the advertised"),  # size update to 4096 + 1
        (b"\x82\x20", "after the first field"),
    ],
)
def test_malformed_blocks_are_decoding_errors(block: bytes, message: str) -> None:
    with pytest.raises(hpack.HPACKDecodingError, match=message):
        HeaderDecoder().decode(block)


def test_a_header_list_over_the_limit_is_refused() -> None:
    block = hpack.Encoder().encode([("x-big", "v" * 5000)])
    with pytest.raises(hpack.HPACKDecodingError, match="header list over"):
        HeaderDecoder(max_list_size=4096).decode(block)


def test_invalid_utf8_is_refused() -> None:
    block = b"\x00\x03x-a\x02\xff\xfe"
    with pytest.raises(hpack.HPACKDecodingError, match="UTF-8"):
        HeaderDecoder().decode(block)


def test_a_remembered_run_of_indexed_fields_follows_the_dynamic_table() -> None:
    encoder = hpack.Encoder()
    decoder = HeaderDecoder()
    decoder.decode(encoder.encode([("x-a", "1")]))  # x-a: 1 is dynamic entry 62
    assert decoder.decode(b"\x82\xbe") == [(":method", "GET"), ("x-a", "1")]
    assert decoder.decode(b"\x82\xbe") == [(":method", "GET"), ("x-a", "1")]  # the remembered run
    decoder.decode(encoder.encode([("x-b", "2")]))  # x-b: 2 is now 62, x-a: 1 is 63
    assert decoder.decode(b"\x82\xbe\xbf") == [(":method", "GET"), ("x-b", "2"), ("x-a", "1")]
    assert decoder.decode(b"\x82\xbe") == [(":method", "GET"), ("x-b", "2")]
    decoded = decoder.decode(b"\x82\xbe" + encoder.encode([("x-c", "3")]))  # a run, then literals
    assert decoded == [(":method", "GET"), ("x-b", "2"), ("x-c", "3")]


def test_a_remembered_run_counts_against_the_header_list_limit() -> None:
    encoder = hpack.Encoder()
    decoder = HeaderDecoder(max_list_size=200)
    decoder.decode(encoder.encode([("x-a", "v" * 100)]))
    assert decoder.decode(b"\xbe") == [("x-a", "v" * 100)]
    with pytest.raises(hpack.HPACKDecodingError, match="header list over"):
        decoder.decode(b"\xbe\xbe")
    with pytest.raises(hpack.HPACKDecodingError, match="header list over"):
        decoder.decode(b"\xbe" + encoder.encode([("x-b", "w" * 100)]))
