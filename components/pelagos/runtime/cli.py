"""The `pelagos` command.

    pelagos standalone [--data-dir DIR] [--host H] [--port 19530] [--metrics-port 9091] [--config FILE]
    pelagos config show [--config FILE] [--show-secrets]
    pelagos run <role>          (cluster mode: not yet available)
    pelagos version

Exit codes: 0 after a clean stop (SIGINT/SIGTERM), 1 when start-up fails
(one line on stderr for a PelagosError, a traceback only for a bug), 2 for a
usage error.

Invariants:
- flags override PELAGOS_* environment variables, which override the
  config file (--config, else PELAGOS_CONFIG), which overrides defaults;
- a flag that is not given changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# OpenMP threads that spin at barriers make faiss many times slower on a busy
# machine; this must be set before anything loads faiss (see index/faiss_api.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pelagos.errors import PelagosError
from pelagos.runtime.config import Config, load_config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

ROLES = ("proxy", "coordinator", "datanode", "querynode", "indexnode")

# flag dest -> (config key, flag as the user writes it)
_FLAG_KEYS: dict[str, tuple[str, str]] = {
    "data_dir": ("data_dir", "--data-dir"),
    "host": ("server.host", "--host"),
    "port": ("server.port", "--port"),
    "metrics_port": ("server.metrics_port", "--metrics-port"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pelagos", description="Pelagos, a vector database.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    standalone = sub.add_parser("standalone", help="run every role in this process (starts nats and etcd)")
    standalone.add_argument("--config", type=Path, help="TOML or YAML config file (default: $PELAGOS_CONFIG)")
    standalone.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    standalone.add_argument("--host", help="address to bind (default 127.0.0.1)")
    standalone.add_argument("--port", type=int, help="Milvus gRPC port (default 19530)")
    standalone.add_argument("--metrics-port", type=int, help="/metrics and /healthz port (default 9091)")

    config = sub.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = config_sub.add_parser("show", help="print the effective configuration as TOML")
    show.add_argument("--config", type=Path, help="TOML or YAML config file (default: $PELAGOS_CONFIG)")
    show.add_argument("--show-secrets", action="store_true", help="print secret keys instead of ***")

    run = sub.add_parser("run", help="run one role of a cluster (not yet available)")
    run.add_argument("role", choices=ROLES)
    run.add_argument("--config", type=Path, help="TOML or YAML config file")

    sub.add_parser("version", help="print the version")
    return parser


def _load(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for dest, (key, flag) in _FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            overrides[key] = value
            sources[key] = f"flag {flag}"
    return load_config(args.config, overrides=overrides, override_sources=sources)


def _standalone(args: argparse.Namespace) -> int:
    # Until the launcher's own handlers are installed, SIGINT interrupts as usual,
    # even when inherited as ignored (a background job of a script): otherwise a
    # SIGINT sent during the imports below would be lost and the launcher would run on.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from pelagos.observability.logging import setup_logging
    from pelagos.observability.memory import reuse_freed_buffers
    from pelagos.runtime.standalone import Standalone

    reuse_freed_buffers()

    config = _load(args)
    setup_logging(config.logging.level)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(Standalone(config).run())
    return EXIT_OK


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed: the Milvus server's per-call cost is ~20% lower on it."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "version":
            from pelagos.runtime.version import pelagos_version

            print(f"pelagos {pelagos_version()}")
            return EXIT_OK
        if args.command == "config":
            print(_load(args).dump(show_secrets=args.show_secrets), end="")
            return EXIT_OK
        if args.command == "run":
            print(
                f"pelagos run {args.role}: the cluster mode is not yet available; "
                f"use `pelagos standalone` to run every role in one process",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return _standalone(args)
    except PelagosError as exc:
        logging.getLogger("pelagos.runtime.cli").debug("failed", exc_info=exc)
        print(f"pelagos: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
