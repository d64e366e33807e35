"""Every way a run ends leaves nothing behind: no incomplete multipart upload in S3, no
orphan aws process; each file is either whole in S3 or still local, and drains later.

A throttling proxy between the real AWS CLI and moto keeps a 12 MiB file (two parts at
the CLI's 8 MiB default) in flight long enough for a cap, a SIGTERM or a SIGKILL to land.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import (
    REGION,
    Moto,
    assert_drained,
    has_if_none_match,
    make_uploader,
    put_files,
    required_cli,
    run_once,
    start_daemon,
    tree,
)

from awscli_uploader.local.state import StateDir
from awscli_uploader.s3.awscli import AwsCli
from awscli_uploader.scan.bucket import MAX_PUTS

MIB = 1024 * 1024
RATE = 512 * 1024  # bytes/s: the 12 MiB file would take 24 s


def _incomplete(moto: Moto, bucket: str) -> list[str]:
    found = moto.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted(u["Key"] for u in found)


def _big(root: Path, moto: Moto, bucket: str) -> dict[tuple[str, str], bytes]:
    moto.create_bucket(bucket)
    return put_files(root, {(bucket, "run/big.bin"): os.urandom(12 * MIB)})


def _kill_and_outlive(daemon: subprocess.Popen[bytes], children: list[int]) -> None:
    """SIGKILL of the daemon alone; its aws children must be gone within 15 s."""
    daemon.kill()
    daemon.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(c) for c in children):
        assert time.monotonic() < deadline, "an aws child outlived its daemon"
        time.sleep(0.1)


def _wait_for_part(proxy: FaultProxy, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while True:
        with proxy.lock:
            if any(r.startswith("PUT") and "uploadId=" in r for r in proxy.requests):
                return
        assert time.monotonic() < end, "no part upload started"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _sigterm(daemon: subprocess.Popen[bytes], log: Path) -> float:
    """SIGTERM to the daemon: the seconds until it exited, which must be with 0."""
    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, log.read_text()
    return time.monotonic() - started


def _start(root: Path, url: str, aws_cli: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    common = ["-d", str(root), "-i", "1", "-s", "0", "--endpoint-url", url, "--aws-cli", aws_cli]
    return start_daemon(*common, *args, log=log)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "grace"),
    [("v1", 0.0), ("v1", 10.0), ("v2", 10.0)],
    ids=["v1-sigkill-at-once", "v1-sigint-first", "v2-sigint-first"],
)
def test_a_capped_upload_leaves_no_multipart_upload(
    root: Path,
    moto: Moto,
    proxy: FaultProxy,
    version: str,
    grace: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """--max-upload-seconds ends the call: SIGINT first (the CLI aborts its own uploads, so
    the daemon finds none left to abort: the CLI's own behaviour, so with both CLIs); with
    no grace at all the CLI can't, and the daemon's own abort must (one)."""
    aws_cli = required_cli(version)
    files = _big(root, moto, "cap-bucket")
    proxy.rate = RATE
    uploader = make_uploader(root, moto, aws_cli, endpoint=proxy.url)
    uploader.cli = AwsCli(
        executable=aws_cli,
        region=REGION,
        endpoint_url=proxy.url,
        max_upload_seconds=8,  # the CLI has started its multipart upload, even on a busy host
        cancel_grace=grace,
    )
    with caplog.at_level(logging.INFO):
        stats = uploader.scan_once()
    assert stats.failed == 1
    with proxy.lock:
        created = [r for r in proxy.requests if r.startswith("POST") and r.endswith("?uploads")]
    assert created, "the cap came before the CLI created its multipart upload"
    aborted = [r for r in caplog.records if "incomplete multipart uploads" in r.getMessage()]
    assert len(aborted) == (1 if grace == 0 else 0), [r.getMessage() for r in aborted]
    assert (root / "cap-bucket" / "run" / "big.bin").read_bytes() == files[
        "cap-bucket", "run/big.bin"
    ]
    assert _incomplete(moto, "cap-bucket") == []
    assert StateDir(root).left_uploads() == []
    proxy.rate = None
    uploader.cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=proxy.url)
    assert uploader.scan_once().uploaded == 1
    assert_drained(root, moto, files)


@pytest.mark.slow
def test_sigterm_mid_multipart_stops_within_the_grace(
    tmp_path: Path, root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    files = _big(root, moto, "term-bucket")
    proxy.rate = RATE
    log = tmp_path / "daemon.log"
    daemon = _start(root, proxy.url, one_cli, log, "--stop-grace", "1")
    try:
        _wait_for_part(proxy)
        took = _sigterm(daemon, log)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    print(f"stopped {took:.1f}s after SIGTERM (grace 1 s; the upload needed about 20 s more)")
    assert took < 15, log.read_text()
    assert "cancelling the uploads under way" in log.read_text()
    assert (root / "term-bucket" / "run" / "big.bin").exists()
    assert _incomplete(moto, "term-bucket") == []
    proxy.rate = None
    done = run_once(root, proxy.url, one_cli, "-s", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_drained(root, moto, files)


@pytest.mark.slow
def test_the_aws_child_dies_with_its_daemon(
    tmp_path: Path, root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    """SIGKILL of the daemon alone (an OOM kill): its aws child gets SIGKILL from the kernel
    (PR_SET_PDEATHSIG) and is gone; no orphan writes on. Nobody could abort the multipart
    upload: the journal in the state directory tells the next start which uploads were its
    own, and that start aborts them."""
    files = _big(root, moto, "orphan-bucket")
    proxy.rate = RATE / 4  # about 100 s: an orphan would still be at it after the deadline
    daemon = _start(root, proxy.url, one_cli, tmp_path / "daemon.log")
    try:
        _wait_for_part(proxy)
        children = _children(daemon.pid)
        assert children, "no aws child"
        _kill_and_outlive(daemon, children)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert _incomplete(moto, "orphan-bucket") == ["run/big.bin"]  # left behind, billed
    assert [e.keys for e in StateDir(root).left_uploads()] == [["run/big.bin"]]
    proxy.rate = None
    done = run_once(root, proxy.url, one_cli, "-s", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "aborted 1 incomplete multipart uploads (run/big.bin)" in done.stdout
    assert _incomplete(moto, "orphan-bucket") == []
    assert StateDir(root).left_uploads() == []
    assert_drained(root, moto, files)


def _keep_puts(root: Path, moto: Moto, proxy: FaultProxy) -> dict[tuple[str, str], bytes]:
    """MAX_PUTS small files and one more (it waits for a place) for --if-exists keep, whose
    put-objects the proxy holds unanswered: each aws process waits for S3's answer until it
    is ended."""
    moto.create_bucket("keep-bucket")
    proxy.add("hang", method="PUT", path=r"^/keep-bucket/run/")
    return put_files(
        root, {("keep-bucket", f"run/{n}.json"): os.urandom(300) for n in range(MAX_PUTS + 1)}
    )


def _put_objects(proxy: FaultProxy) -> int:
    with proxy.lock:
        return sum(1 for r in proxy.requests if r.startswith("PUT /keep-bucket/run/"))


def _wait_for_puts(proxy: FaultProxy, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while _put_objects(proxy) < MAX_PUTS:
        assert time.monotonic() < end, f"{_put_objects(proxy)} put-objects started"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_cancels_every_put_object_of_keep(
    tmp_path: Path, root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    """Under --if-exists keep MAX_PUTS put-objects run at once, each an aws process of its
    own: a SIGTERM starts no more, gives those under way the grace, then cancels every one;
    the run exits 0, no aws process is left, the files stay and drain later."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    files = _keep_puts(root, moto, proxy)
    log = tmp_path / "daemon.log"
    daemon = _start(root, proxy.url, one_cli, log, "--if-exists", "keep", "--stop-grace", "1")
    try:
        _wait_for_puts(proxy)
        children = _children(daemon.pid)
        took = _sigterm(daemon, log)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert len(children) == MAX_PUTS, log.read_text()
    assert not any(_alive(c) for c in children)
    assert took < 15, log.read_text()
    assert _put_objects(proxy) == MAX_PUTS  # none started after the SIGTERM
    assert tree(root) == sorted(f"{b}/{k}" for b, k in files)
    assert moto.keys("keep-bucket") == []
    proxy.clear()
    done = run_once(root, proxy.url, one_cli, "-s", "0", "--if-exists", "keep")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_drained(root, moto, files)


@pytest.mark.slow
def test_every_put_object_child_dies_with_its_daemon(
    tmp_path: Path, root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    """SIGKILL of the daemon while MAX_PUTS put-objects run, each forked by a thread of the
    pool: the kernel ends every one (PR_SET_PDEATHSIG)."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    _keep_puts(root, moto, proxy)
    daemon = _start(root, proxy.url, one_cli, tmp_path / "daemon.log", "--if-exists", "keep")
    try:
        _wait_for_puts(proxy)
        children = _children(daemon.pid)
        assert len(children) == MAX_PUTS
        _kill_and_outlive(daemon, children)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert moto.keys("keep-bucket") == []
