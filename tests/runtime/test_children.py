"""The nets against orphaned children: the watchdog and the stale-child record."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pelagos.runtime.children import ChildRecord, Watchdog, is_alive, process_cmdline, same_command, wait_gone


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def sleeper(procs: list[subprocess.Popen[bytes]], tag: str) -> subprocess.Popen[bytes]:
    """A child in its own session, as ManagedProcess starts servers."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", tag], start_new_session=True
    )
    procs.append(proc)
    return proc


def test_same_command_allows_an_exec_of_a_launcher_script() -> None:
    real = ["/x/etcdbin/etcd", "--data-dir", "/d/etcd", "--port", "1"]
    wrapper = ["/venv/python3", "/venv/bin/etcd", "--data-dir", "/d/etcd", "--port", "1"]
    assert same_command(real, real)
    assert same_command(real, wrapper)
    assert same_command(wrapper, real)
    assert not same_command(["/x/etcdbin/etcd", "--data-dir", "/other", "--port", "1"], wrapper)
    assert not same_command(None, real)
    assert not same_command(["sleep"], ["sleep", "x"])


def test_watchdog_kills_listed_children_when_its_pipe_closes(sleepers: list[subprocess.Popen[bytes]]) -> None:
    listed = sleeper(sleepers, "listed")
    forgotten = sleeper(sleepers, "forgotten")
    dog = Watchdog()
    dog.start()
    dog.watch(listed.pid)
    dog.watch(forgotten.pid)
    dog.forget(forgotten.pid)
    dog.close()  # what the kernel does when the launcher dies
    assert listed.wait(timeout=10) == -9
    assert forgotten.poll() is None


def test_kill_stale_kills_only_matching_commands(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    stale = sleeper(sleepers, "stale")
    innocent = sleeper(sleepers, "innocent")
    while process_cmdline(stale.pid) is None or process_cmdline(innocent.pid) is None:
        pass
    record = ChildRecord(tmp_path)
    stale_argv = process_cmdline(stale.pid)
    assert stale_argv is not None
    record.add("stale", stale.pid, stale_argv)
    # a reused pid: the record names the innocent process's pid with another command
    record.add("reused", innocent.pid, ["/usr/bin/something-else", "--flag"])
    killed = record.kill_stale(timeout=10)
    assert killed == [("stale", stale.pid)]
    assert stale.wait(timeout=10) == -9
    assert innocent.poll() is None
    assert record.recorded() == {}
    assert not is_alive(stale.pid)
    assert wait_gone(stale.pid, 0.1)
