"""The --once progress line: only on a terminal, never in daemon mode or through a pipe."""

from __future__ import annotations

import io
import logging
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, Moto, tree, write

from awscli_uploader.model import Candidate
from awscli_uploader.ops.progress import CLEAR_LINE, Progress, format_line, show_progress
from awscli_uploader.scan.record import Stats

MIB = 2**20


@pytest.mark.parametrize(
    ("done", "total", "elapsed", "parts"),
    [
        ((0, 0), (4, 8 * MIB), 0.0, ["[----------------]", "  0%", "0/4 files", "0 B/8.0 MiB",
                                     "-/s", "00:00 ETA --:--"]),
        ((2, 4 * MIB), (4, 8 * MIB), 2.0, ["[########--------]", " 50%", "2/4 files",
                                           "4.0 MiB/8.0 MiB", "2.0 MiB/s", "00:02 ETA 00:02"]),
        ((4, 8 * MIB), (4, 8 * MIB), 3725.0, ["[################]", "100%", "4/4 files",
                                              "1:02:05 ETA 00:00"]),
        ((1, 0), (2, 0), 1.0, [" 50%", "1/2 files", "0 B/0 B"]),  # empty files: by count
    ],
)  # fmt: skip
def test_format_line(
    done: tuple[int, int], total: tuple[int, int], elapsed: float, parts: list[str]
) -> None:
    line = format_line(
        done_files=done[0],
        total_files=total[0],
        done_bytes=done[1],
        total_bytes=total[1],
        elapsed=elapsed,
    )
    for part in parts:
        assert part in line
    assert len(line) < 80


@pytest.mark.parametrize(
    ("once", "tty", "log_format", "shown"),
    [
        (True, True, "text", True),
        (False, True, "text", False),  # daemon mode
        (True, False, "text", False),  # a pipe or a file
        (True, True, "json", False),  # a log shipper reads this
    ],
)
def test_show_progress(once: bool, tty: bool, log_format: str, shown: bool) -> None:
    assert show_progress(once=once, tty=tty, log_format=log_format) is shown


def _candidate(name: str, size: int) -> Candidate:
    return Candidate(Path(name), "b", name, size, 0)


def _logger(name: str, stream: io.StringIO) -> logging.Logger:
    logger = logging.getLogger(f"progress-test.{name}")
    logger.handlers = [logging.StreamHandler(stream)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_log_lines_go_above_the_progress_line() -> None:
    stream = io.StringIO()
    logger = _logger("above", stream)
    original = list(logger.handlers)
    progress = Progress(stream, logger, tick=60)
    files = [_candidate("a", 10), _candidate("b", 30)]
    progress.batch({"b": files})
    assert stream.getvalue().startswith(CLEAR_LINE + "[")
    progress.bucket_started("b", files)
    logger.info("hello")
    progress.bucket_done("b", files)
    progress.scanned(Stats())
    assert logger.handlers == original
    written = stream.getvalue()
    assert CLEAR_LINE + "[" in written
    assert written.endswith("\n")
    assert CLEAR_LINE + "hello\n" + CLEAR_LINE + "[" in written
    assert "2/2 files" in written.rsplit(CLEAR_LINE, 1)[1]


def test_nothing_to_upload_draws_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(stream, _logger("nothing", stream), tick=60)
    progress.batch({})
    progress.scanned(Stats())
    assert stream.getvalue() == ""


def _read(leader: int, until: bytes | None, timeout: float = 120) -> bytes:
    """What the terminal shows until `until` appears, or (None) until the child closes it."""
    output = b""
    deadline = time.monotonic() + timeout
    while until is None or until not in output:
        left = deadline - time.monotonic()
        assert left > 0, output.decode("utf-8", "replace")
        if not select.select([leader], [], [], min(left, 1.0))[0]:
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    return output


def _spawn_on_a_terminal(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "awscli_uploader", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(follower)
    return proc, leader


def _run_in_pty(*args: str) -> tuple[int, str]:
    proc, leader = _spawn_on_a_terminal(*args)
    try:
        output = _read(leader, None)
    finally:
        os.close(leader)
    return proc.wait(10), output.decode("utf-8", "replace")


@pytest.mark.slow
def test_progress_line_on_a_terminal(root: Path, moto: Moto) -> None:
    moto.create_bucket("bucket-one")
    moto.create_bucket("bucket-two")
    write(root / "bucket-one" / "a.bin", os.urandom(300_000))
    write(root / "bucket-two" / "b.bin", os.urandom(100_000))
    code, output = _run_in_pty("--once", "-d", str(root), "--endpoint-url", moto.url)
    assert code == 0, output
    assert tree(root) == []
    assert "0/2 files" in output
    assert "1/2 files" in output  # after the first bucket
    assert "[################] 100% 2/2 files 390.6 KiB/390.6 KiB" in output
    assert "s3://bucket-one" in output
    # every log line starts at the beginning of a cleared line, not after a half-drawn bar
    logged = [line for line in output.split("\r\n") if "] INFO " in line]
    assert len(logged) >= 3
    for line in logged:
        before = line[: line.index("[20")]
        assert before == "" or before.endswith(CLEAR_LINE), repr(line)


@pytest.mark.slow
def test_no_progress_line_in_daemon_mode_on_a_terminal(
    tmp_path: Path, root: Path, moto: Moto
) -> None:
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "a.bin", b"a")
    proc, leader = _spawn_on_a_terminal("-d", str(root), "-i", "0.5", "--endpoint-url", moto.url)
    try:
        output = _read(leader, b"uploaded 1 ")
    finally:
        proc.terminate()
        proc.wait(30)
        os.close(leader)
    assert b"files" not in output
    assert b"\x1b[K" not in output
