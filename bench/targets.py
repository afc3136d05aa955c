"""The servers the protocol runs against, each a child process on a fresh data directory.

- `pelagos`: `pelagos standalone --data-dir <tmp> --port <free> --metrics-port
  <free>` (the console script beside this interpreter); ready once the
  Milvus port accepts connections. Its peak RSS is the standalone process
  (every role); nats-server and etcd are its children, counted in
  `*_with_children_bytes`.
- `lite`: milvus-lite's own gRPC server, `python -m milvus_lite server
  --data-dir <tmp> --host 127.0.0.1 --port <free>`, in its own process as
  Pelagos is, so client and server do not share a GIL and its RSS is its own.
- `canned`: `python -m bench.canned_server --port <free>`, Pelagos's transport
  serving prebuilt responses and doing no work: what the client and the
  transport cost, the ceiling any server is measured against.
- `lite-file`: `MilvusClient("<cache>/lite.db")`, the local-file URI users
  write: pymilvus starts milvus-lite's server in a thread of this very
  process (same GIL as the client), so no server RSS is reported.

Invariants:
- a server that is not accepting connections within `start_timeout_s`
  is stopped and reported as not measured, with the tail of its log;
- `stop()` always runs (context manager) and leaves no child behind
  (ManagedProcess signals the whole process group).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pelagos.runtime.servers.base import ManagedProcess, free_port, port_is_open

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent  # where `python -m bench.canned_server` imports from


@dataclass(frozen=True)
class Endpoint:
    uri: str
    pid: int | None
    log_path: Path | None


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextmanager
def _managed(
    name: str, argv: list[str], port: int, log_path: Path, timeout_s: float, cwd: Path | None = None
) -> Iterator[Endpoint]:
    proc = ManagedProcess(name, argv, log_path=log_path, ready=lambda: port_is_open(HOST, port), cwd=cwd)
    try:
        proc.start(timeout=timeout_s)
        yield Endpoint(uri=f"http://{HOST}:{port}", pid=proc.pid, log_path=log_path)
    finally:
        proc.stop()


@contextmanager
def pelagos_standalone(workdir: Path, timeout_s: float = 60.0) -> Iterator[Endpoint]:
    port, metrics = free_port(HOST), free_port(HOST)
    data_dir = workdir / "pelagos-data"
    argv = [
        _bin("pelagos"),
        "standalone",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--metrics-port",
        str(metrics),
    ]
    with _managed("pelagos standalone", argv, port, workdir / "pelagos.log", timeout_s) as endpoint:
        yield endpoint


@contextmanager
def milvus_lite_server(workdir: Path, timeout_s: float = 60.0) -> Iterator[Endpoint]:
    port = free_port(HOST)
    argv = [
        sys.executable,
        "-m",
        "milvus_lite",
        "server",
        "--data-dir",
        str(workdir / "lite-data"),
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    with _managed("milvus-lite server", argv, port, workdir / "milvus-lite.log", timeout_s) as endpoint:
        yield endpoint


@contextmanager
def canned_server(workdir: Path, timeout_s: float = 60.0) -> Iterator[Endpoint]:
    port = free_port(HOST)
    argv = [sys.executable, "-m", "bench.canned_server", "--host", HOST, "--port", str(port)]
    with _managed("canned server", argv, port, workdir / "canned.log", timeout_s, cwd=ROOT) as endpoint:
        yield endpoint


@contextmanager
def milvus_lite_file(cache_root: Path) -> Iterator[Endpoint]:
    path = cache_root / "lite.db"
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    try:
        yield Endpoint(uri=str(path), pid=None, log_path=None)
    finally:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(str(path))
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pelagos-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
