"""Splitting large payloads and putting them back together, without a server."""

from __future__ import annotations

import pytest

from pelagos.errors import LogBrokerError
from pelagos.storage.log.chunking import (
    ChunkInfo,
    MissingHead,
    Reassembler,
    chunk_size_for,
    parse_chunk_header,
    split_payload,
)


def _payload(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def test_split_covers_the_payload_in_order() -> None:
    data = _payload(2500)
    chunks = split_payload(data, 1000)
    assert [len(c) for c, _ in chunks] == [1000, 1000, 500]
    assert b"".join(c for c, _ in chunks) == data
    infos = [info for _, info in chunks]
    assert [i.index for i in infos] == [0, 1, 2]
    assert {i.count for i in infos} == {3}
    assert {i.size for i in infos} == {2500}
    assert len({i.msg_id for i in infos}) == 1
    assert split_payload(data, 1000)[0][1].msg_id != infos[0].msg_id


def test_header_round_trips_and_rejects_garbage() -> None:
    info = ChunkInfo("abc", 2, 5, 12345)
    assert parse_chunk_header(info.header_value()) == info
    for bad in ["", "abc;1;2", "abc;x;2;3", "abc;2;2;3", ";0;1;1", "abc;0;1;-1"]:
        with pytest.raises(LogBrokerError, match="malformed"):
            parse_chunk_header(bad)


def test_chunk_size_leaves_room_for_the_header() -> None:
    assert 0 < chunk_size_for(64 * 1024) < 64 * 1024
    with pytest.raises(LogBrokerError, match="too small"):
        chunk_size_for(100)


def test_whole_messages_pass_through() -> None:
    r = Reassembler("ch")
    assert r.feed(1, None, b"a") == b"a"
    assert r.pending == 0


def test_interleaved_payloads_complete_at_their_last_chunk() -> None:
    a, b = _payload(2500), _payload(1500)[::-1]
    ca, cb = split_payload(a, 1000), split_payload(b, 1000)
    r = Reassembler("ch")
    stream = [ca[0], cb[0], ca[1], (b"x", None), cb[1], ca[2]]
    results = [r.feed(seq, info, data) for seq, (data, info) in enumerate(stream, start=1)]
    assert results == [None, None, None, b"x", b, a]
    assert r.pending == 0


def test_a_chunk_without_its_head_is_reported_then_restored() -> None:
    data = _payload(3000)
    chunks = split_payload(data, 1000)
    r = Reassembler("ch")
    head = r.feed(7, chunks[2][1], chunks[2][0])
    assert isinstance(head, MissingHead)
    assert head.seq == 7
    assert r.restore(head, {0: chunks[0][0], 1: chunks[1][0]}, first_seq=5) == data
    assert r.pending == 0


def test_restore_without_all_earlier_chunks_drops_the_payload() -> None:
    chunks = split_payload(_payload(3000), 1000)
    r = Reassembler("ch")
    head = r.feed(7, chunks[2][1], chunks[2][0])
    assert isinstance(head, MissingHead)
    assert r.restore(head, {1: chunks[1][0]}, first_seq=6) is None
    assert r.dropped == 1


def test_an_abandoned_payload_is_dropped_after_the_horizon() -> None:
    chunks = split_payload(_payload(3000), 1000)
    r = Reassembler("ch", horizon=10)
    assert r.feed(1, chunks[0][1], chunks[0][0]) is None
    assert r.pending == 1
    assert r.feed(5, None, b"x") == b"x"
    assert r.pending == 1
    assert r.feed(12, None, b"y") == b"y"
    assert r.pending == 0
    assert r.dropped == 1


def test_inconsistent_chunks_are_reported_as_corruption() -> None:
    chunks = split_payload(_payload(3000), 1000)
    r = Reassembler("ch")
    r.feed(1, chunks[0][1], chunks[0][0])
    forged = ChunkInfo(chunks[1][1].msg_id, 1, 4, 3000)
    with pytest.raises(LogBrokerError, match="corrupt"):
        r.feed(2, forged, chunks[1][0])
