"""Crashes: SIGKILL of the daemon or of its aws child, then a restart; nothing lost or left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, fault_proxy
from helpers import Moto, run_cli, start_daemon, tree, write

COUNT = 8


@pytest.fixture
def slow_proxy(moto: Moto) -> Iterator[FaultProxy]:
    """Every PUT waits half a second, so a kill lands mid-batch."""
    with fault_proxy(moto.url) as proxy:
        proxy.add("hook", method="PUT", hook=lambda method, path: time.sleep(0.5))
        yield proxy


def _backlog(root: Path, moto: Moto) -> dict[str, bytes]:
    moto.create_bucket("crash-bucket")
    files = {f"part/{i}.bin": os.urandom(2000 + i) for i in range(COUNT)}
    for key, data in files.items():
        write(root / "crash-bucket" / key, data)
    return files


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


def _check_and_drain(root: Path, moto: Moto, files: dict[str, bytes], aws_cli: str) -> None:
    for key, data in files.items():
        local = root / "crash-bucket" / key
        if local.exists():
            assert local.read_bytes() == data
        else:
            assert moto.get("crash-bucket", key) == data
    again = run_cli(
        "--once", "-d", str(root), "-s", "0", "--endpoint-url", moto.url, "--aws-cli", aws_cli
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert tree(root) == []
    for key, data in files.items():
        assert moto.get("crash-bucket", key) == data
    staging = root / ".awscli-uploader" / "staging"
    assert not staging.exists() or list(staging.rglob("*")) == []


def _reap(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_daemon_mid_batch(
    tmp_path: Path, root: Path, moto: Moto, slow_proxy: FaultProxy, aws_cli: str
) -> None:
    files = _backlog(root, moto)
    daemon = _start(root, slow_proxy.url, aws_cli, tmp_path / "daemon.log")
    try:
        _wait_for_put(slow_proxy)
        orphans = _children(daemon.pid)
        daemon.kill()
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    _reap(orphans)  # an orphaned aws child may finish or not: either way nothing is lost
    assert (root / ".awscli-uploader" / "staging").exists()  # the kill left its links behind
    _check_and_drain(root, moto, files, aws_cli)


def test_sigkill_of_the_aws_child(
    tmp_path: Path, root: Path, moto: Moto, slow_proxy: FaultProxy, aws_cli: str
) -> None:
    files = _backlog(root, moto)
    log = tmp_path / "daemon.log"
    daemon = _start(root, slow_proxy.url, aws_cli, log)
    try:
        _wait_for_put(slow_proxy)
        for child in _children(daemon.pid):
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
    _check_and_drain(root, moto, files, aws_cli)


def test_sigterm_mid_batch_finishes_cleanly(
    tmp_path: Path, root: Path, moto: Moto, slow_proxy: FaultProxy, aws_cli: str
) -> None:
    files = _backlog(root, moto)
    daemon = _start(root, slow_proxy.url, aws_cli, tmp_path / "daemon.log")
    try:
        _wait_for_put(slow_proxy)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(120) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert not (root / ".awscli-uploader" / "staging").exists() or not list(
        (root / ".awscli-uploader" / "staging").iterdir()
    )
    _check_and_drain(root, moto, files, aws_cli)
