"""Remembered child ports: configured wins, remembered reused when free, else a free one."""

from __future__ import annotations

import socket
from pathlib import Path

from pelagos.runtime.ports import PortBook, can_bind
from pelagos.runtime.servers.base import free_port


def test_ports_are_remembered_and_reused(tmp_path: Path) -> None:
    book = PortBook(tmp_path, "127.0.0.1")
    nats = book.port("nats")
    etcd = book.port("etcd_client")
    assert nats != etcd
    book.save()
    again = PortBook(tmp_path, "127.0.0.1")
    assert again.port("nats") == nats
    assert again.port("etcd_client") == etcd


def test_configured_port_wins(tmp_path: Path) -> None:
    book = PortBook(tmp_path, "127.0.0.1")
    book.port("nats")
    book.save()
    wanted = free_port()
    again = PortBook(tmp_path, "127.0.0.1")
    assert again.port("nats", configured=wanted) == wanted
    again.save()
    assert PortBook(tmp_path, "127.0.0.1").as_dict()["nats"] == wanted


def test_a_taken_remembered_port_is_replaced(tmp_path: Path) -> None:
    book = PortBook(tmp_path, "127.0.0.1")
    remembered = book.port("nats")
    book.save()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", remembered))
        holder.listen()
        assert not can_bind("127.0.0.1", remembered)
        again = PortBook(tmp_path, "127.0.0.1")
        assert again.port("nats") != remembered
