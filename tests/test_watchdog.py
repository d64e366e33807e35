"""When an aws process is ended: API calls by a clock, uploads only when they stall."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from awscli_uploader.errors import AwsCliError
from awscli_uploader.s3.awscli import AwsCli
from awscli_uploader.s3.watchdog import Limit, io_bytes, overdue, upload_limit

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "watchable", "max_seconds", "expected"),
    [
        (2 * 1024 * MIB, True, None, Limit(hard=None, stall=300)),
        (2 * 1024 * MIB, True, 3600, Limit(hard=3600, stall=300)),
        (2 * 1024 * MIB, False, None, Limit(hard=300 + 2048)),  # no /proc: by size
        (2 * 1024 * MIB, False, 600, Limit(hard=600)),
        (0, False, None, Limit(hard=300)),
    ],
)
def test_upload_limit(
    size: int, watchable: bool, max_seconds: float | None, expected: Limit
) -> None:
    limit = upload_limit(
        size, watchable=watchable, stall=300, max_seconds=max_seconds, base=300, min_rate=MIB
    )
    assert limit == expected


@pytest.mark.parametrize(
    ("limit", "running", "idle", "why"),
    [
        (Limit(stall=300), 86400, 10, None),  # a day-long upload that moves goes on
        (Limit(stall=300), 400, 300, "no progress for 300s"),
        (Limit(hard=3600, stall=300), 3600, 0, "still running after 3600s"),
        (Limit(hard=60), 59.9, 59.9, None),
        (Limit(hard=60), 60, 0, "still running after 60s"),
        (Limit(), 10**9, 10**9, None),
    ],
)
def test_overdue(limit: Limit, running: float, idle: float, why: str | None) -> None:
    assert overdue(limit, running=running, idle=idle) == why


def test_io_bytes_counts_reads_and_is_none_without_proc(tmp_path: Path) -> None:
    before = io_bytes(Path("/proc"), os.getpid())
    if before is None:
        pytest.skip("no /proc/PID/io here")
    (tmp_path / "f").write_bytes(b"x" * 100_000)
    (tmp_path / "f").read_bytes()
    after = io_bytes(Path("/proc"), os.getpid())
    assert after is not None and after >= before + 200_000
    assert io_bytes(tmp_path, os.getpid()) is None


def _fake_cli(tmp_path: Path, python: str) -> str:
    """A stand-in `aws` that runs `python` (reading a file in a loop is an upload that moves)."""
    path = tmp_path / "aws"
    path.write_text(f"#!{sys.executable}\nimport time\n{python}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


MOVING = (
    "end = time.time() + 4\nwhile time.time() < end:\n    open(__file__).read(); time.sleep(0.05)"
)
HUNG = "time.sleep(60)"
needs_proc = pytest.mark.skipif(io_bytes(Path("/proc"), os.getpid()) is None, reason="no /proc")


@needs_proc
def test_a_moving_upload_outlives_the_stall_window(tmp_path: Path) -> None:
    cli = AwsCli(executable=_fake_cli(tmp_path, MOVING), stall_seconds=1.5, api_timeout=0.5)
    assert cli.run(["s3", "cp"], upload_bytes=1).exit_code == 0


@needs_proc
@pytest.mark.parametrize("caller", ["as-is", "sigint-ignored", "sigint-blocked"])
def test_a_hung_upload_is_ended_after_the_stall_window(tmp_path: Path, caller: str) -> None:
    """Ended by its SIGINT, well within the 10 s grace before the SIGKILL, also when the
    caller ignores or blocks SIGINT (the daemon installs a handler; a library user may
    not): both would pass to the CLI across fork and exec."""
    cli = AwsCli(executable=_fake_cli(tmp_path, HUNG), stall_seconds=1.5)
    started = time.monotonic()
    before = signal.getsignal(signal.SIGINT)
    if caller == "sigint-ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if caller == "sigint-blocked":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        with pytest.raises(AwsCliError) as caught:
            cli.run(["s3", "cp"], upload_bytes=1)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, before)
    assert caught.value.timed_out
    assert "no progress for" in caught.value.summary()
    assert time.monotonic() - started < 10


@pytest.mark.slow
@needs_proc
def test_the_operators_cap_ends_even_a_moving_upload(tmp_path: Path) -> None:
    cli = AwsCli(executable=_fake_cli(tmp_path, MOVING), stall_seconds=60, max_upload_seconds=1)
    with pytest.raises(AwsCliError) as caught:
        cli.run(["s3", "cp"], upload_bytes=1)
    assert "still running after 1s" in caught.value.summary()


@pytest.mark.slow
def test_without_proc_an_upload_gets_a_size_based_limit(tmp_path: Path) -> None:
    cli = AwsCli(
        executable=_fake_cli(tmp_path, MOVING),
        proc=tmp_path / "no-proc",
        api_timeout=0.5,
        min_rate=MIB,
        stall_seconds=60,
    )
    with pytest.raises(AwsCliError) as caught:  # the stand-in would finish after 4 s
        cli.run(["s3", "cp"], upload_bytes=MIB)  # 0.5 s + 1 MiB at 1 MiB/s
    assert "still running after 1.5s" in caught.value.summary()
