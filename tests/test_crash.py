"""Crashes: SIGKILL of the daemon or of its aws child, then a restart; nothing lost or left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import (
    Files,
    Moto,
    assert_drained,
    assert_nothing_lost,
    put_files,
    run_once,
    start_daemon,
)

from awscli_uploader.local.state import STAGING, StateDir

COUNT = 8


@pytest.fixture
def slow_proxy(proxy: FaultProxy) -> FaultProxy:
    """Every PUT waits half a second, so a kill lands mid-batch."""
    proxy.add("hook", method="PUT", hook=lambda method, path: time.sleep(0.5))
    return proxy


def _backlog(root: Path, moto: Moto) -> Files:
    moto.create_bucket("crash-bucket")
    files = {("crash-bucket", f"part/{i}.bin"): os.urandom(2000 + i) for i in range(COUNT)}
    return put_files(root, files)


def _start(root: Path, url: str, aws_cli: str, log: Path) -> subprocess.Popen[bytes]:
    args = ["-d", str(root), "-i", "1", "-s", "0", "--endpoint-url", url, "--aws-cli", aws_cli]
    return start_daemon(*args, log=log)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _wait_for_put(proxy: FaultProxy, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not any(r.startswith("PUT") for r in proxy.requests):
        assert time.monotonic() < end, "the upload never started"
        time.sleep(0.05)


def _check_and_drain(root: Path, moto: Moto, files: Files, aws_cli: str) -> None:
    assert_nothing_lost(root, moto, files)
    again = run_once(root, moto.url, aws_cli, "-s", "0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert_drained(root, moto, files)


def _reap(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigkill_of_the_daemon_mid_batch(
    tmp_path: Path, root: Path, moto: Moto, slow_proxy: FaultProxy, one_cli: str
) -> None:
    files = _backlog(root, moto)
    daemon = _start(root, slow_proxy.url, one_cli, tmp_path / "daemon.log")
    try:
        _wait_for_put(slow_proxy)
        orphans = _children(daemon.pid)
        daemon.kill()
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    _reap(orphans)  # an orphaned aws child may finish or not: either way nothing is lost
    assert (StateDir(root).path / STAGING).exists()  # the kill left its links behind
    _check_and_drain(root, moto, files, one_cli)


@pytest.mark.slow
def test_sigkill_of_the_aws_child(
    tmp_path: Path, root: Path, moto: Moto, slow_proxy: FaultProxy, one_cli: str
) -> None:
    files = _backlog(root, moto)
    log = tmp_path / "daemon.log"
    daemon = _start(root, slow_proxy.url, one_cli, log)
    try:
        _wait_for_put(slow_proxy)
        children = _children(daemon.pid)
        assert children, "no aws child to kill"
        for child in children:
            os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "scan:" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert daemon.poll() is None  # the daemon itself carries on
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    _check_and_drain(root, moto, files, one_cli)


@pytest.mark.slow
def test_sigterm_mid_batch_finishes_cleanly(
    tmp_path: Path, root: Path, moto: Moto, slow_proxy: FaultProxy, one_cli: str
) -> None:
    files = _backlog(root, moto)
    daemon = _start(root, slow_proxy.url, one_cli, tmp_path / "daemon.log")
    try:
        _wait_for_put(slow_proxy)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(120) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    staging = StateDir(root).path / STAGING
    assert not staging.exists() or not list(staging.iterdir())
    _check_and_drain(root, moto, files, one_cli)
