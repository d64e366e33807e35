"""The benchmark's smallest configurations, so that no case can silently rot."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import IN_CI, REPO, cli_path

pytestmark = pytest.mark.slow

SMALLEST = ("--cases", "small", "--files", "20", "--sample", "3", "--repeat", "1", "--cli", "v1")
WRITER = "awsup-bench-writer"  # .ci/run creates it; the notlinkable case owns files by it
S5CMD = 's5cmd run: one mv "DIR/*" line per bucket'


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if cli_path("v1") is None:
        pytest.skip("AWS CLI v1 is not installed")
    places = ("--workdir", str(tmp_path), "--results", str(tmp_path / "results"))
    return subprocess.run(
        [sys.executable, "bench/run.py", *args, "--repeat", "1", "--cli", "v1", *places],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_bench_smallest_configuration_verifies(tmp_path: Path) -> None:
    done = bench(tmp_path, *SMALLEST, "--no-rclone")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK, 4 runs verified: 63 objects byte-equal" in done.stdout
    for contender in (
        "uploader --once",
        "aws s3 mv --recursive",
        "per file: head-object + cp",
        S5CMD,
    ):
        assert contender in done.stdout
    assert len(list((tmp_path / "results").glob("*-v1.json"))) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # the work directory is gone


@pytest.mark.parametrize(
    ("case", "sizes", "rows"),
    [
        (
            "history",
            ("--history", "200"),
            (
                "uploader --once, empty bucket",
                "uploader --once, images/ holding 200 objects",
                "LIST requests in 1 listing processes",  # the check before the upload is gone
                "peak RSS of its largest aws process at 200 held",
                S5CMD,
            ),
        ),
        (
            "backlog",
            ("--backlog", "300", "--files", "30"),
            ("uploader --once, 30 files", "uploader --once, 300 files", "peak RSS of the uploader"),
        ),
        (
            "idle",
            ("--idle", "50"),
            (
                "aws processes in the scan",
                "scan time (last-scan record)",  # read from the state directory, not the log
                "peak RSS of the uploader process",
                "1 idle runs: nothing uploaded, every file kept",
                "find ROOT -type f (the floor)",  # issue 21: bench/idle.py
                "daemon scan after the first (median)",
                "daemon CPU per idle hour at -i 60",
            ),
        ),
        (
            "manybuckets",
            ("--buckets", "3", "--per-bucket", "4"),
            ("uploader --once", "aws s3 mv --recursive, per bucket in turn", S5CMD),
        ),
    ],
)
def test_bench_small_configurations_verify(
    tmp_path: Path, case: str, sizes: tuple[str, ...], rows: tuple[str, ...]
) -> None:
    done = bench(tmp_path, "--cases", case, *sizes)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK" in done.stdout
    for row in rows:
        assert row in done.stdout, row
    if case == "manybuckets" and (shutil.which("rclone") or IN_CI):  # .ci/run installs it
        assert "rclone move --min-age 2s, per bucket" in done.stdout


def test_bench_notlinkable_case_verifies(tmp_path: Path) -> None:
    """Needs root (to chown files to another user) and the writer user of .ci/run."""
    missing = "not root" if os.geteuid() != 0 else None
    try:
        pwd.getpwnam(WRITER)
    except KeyError:
        missing = missing or (f"no user {WRITER} (.ci/run creates it)" if IN_CI else None)
    if missing:
        if IN_CI:
            pytest.fail(f"the notlinkable benchmark can't run: {missing}")
        pytest.skip(f"the notlinkable benchmark can't run: {missing}")
    done = bench(tmp_path, "--cases", "notlinkable", "--notlinkable", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK, 2 runs verified: 40 objects" in done.stdout
    assert f"uploader --once, files of {WRITER}, 0644" in done.stdout
    assert f"belong to {WRITER} (mode 0644) and could not be linked" in done.stdout
