"""Process logging: one line per record, with the component that wrote it.

Format:

    2025-01-31T12:00:00.123Z INFO  querynode  pelagos.querynode.shard: loaded segment 42 rows=1000

- the component is the `component` extra of the record when given
  (`log.info("...", extra={"component": "nats"})`), else the second part of
  a `pelagos.<component>...` logger name, else the logger's first part;
- `fields` in extra (`extra={"fields": {"rows": 1000}}`) are appended as
  key=value pairs, so lines stay greppable;
- newlines in the message are escaped so one record is one line; a
  traceback, when there is one, follows on its own lines;
- `setup_logging` is idempotent: it replaces the handler it installed before.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

_HANDLER_MARK = "_pelagos_handler"

QUIET_LOGGERS = ("aiohttp.access", "asyncio", "nats", "grpc", "urllib3", "kopf", "faiss")
"""Third-party loggers held at WARNING unless the level is DEBUG."""


def component_of(record: logging.LogRecord) -> str:
    explicit = getattr(record, "component", None)
    if explicit:
        return str(explicit)
    parts = record.name.split(".")
    if parts[0] == "pelagos" and len(parts) > 1:
        return parts[1]
    return parts[0]


class OneLineFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <component> <logger>: <message> k=v ...`."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        fields: Any = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            message += " " + " ".join(f"{k}={_field(v)}" for k, v in fields.items())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = f"{stamp} {record.levelname:<5} {component_of(record):<10} {record.name}: {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _field(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '="' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def setup_logging(level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at `level` and above to `stream` (stderr) in one-line format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)
    return handler
