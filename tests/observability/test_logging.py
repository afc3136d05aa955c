"""One-line log format with the component name."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pelagos.observability.logging import QUIET_LOGGERS, setup_logging


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    names = ["", *QUIET_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_one_line_with_component_and_fields() -> None:
    stream = io.StringIO()
    handler = setup_logging("info", stream)
    try:
        logging.getLogger("pelagos.querynode.shard").info("loaded\nsegment", extra={"fields": {"rows": 10}})
        logging.getLogger("pelagos.runtime.x").info(
            "hello", extra={"component": "nats", "fields": {"a": "b c"}}
        )
        logging.getLogger("pelagos.proxy").debug("hidden at INFO")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("INFO  querynode  pelagos.querynode.shard: loaded\\nsegment rows=10")
    assert lines[0][:4].isdigit() and "T" in lines[0][:20] and "Z " in lines[0][:30]
    assert lines[1].endswith('nats       pelagos.runtime.x: hello a="b c"')


def test_setup_is_idempotent_and_keeps_tracebacks() -> None:
    first = io.StringIO()
    second = io.StringIO()
    setup_logging("DEBUG", first)
    handler = setup_logging("DEBUG", second)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("pelagos.datanode").exception("flush failed")
    finally:
        logging.getLogger().removeHandler(handler)
    assert first.getvalue() == ""
    text = second.getvalue()
    assert "ERROR datanode" in text and "flush failed" in text
    assert "Traceback" in text and "ValueError: boom" in text
