"""The benchmark's smallest configuration, so that it can't silently rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CLI_PATHS, REPO

pytestmark = pytest.mark.slow

SMALLEST = ("--cases", "small", "--files", "20", "--sample", "3", "--repeat", "1", "--cli", "v1")


def test_bench_smallest_configuration_verifies(tmp_path: Path) -> None:
    if CLI_PATHS["v1"] is None:
        pytest.skip("AWS CLI v1 is not installed")
    places = ("--workdir", str(tmp_path), "--results", str(tmp_path / "results"))
    done = subprocess.run(
        [sys.executable, "bench/run.py", *SMALLEST, "--no-rclone", *places],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK, 3 runs verified: 43 objects byte-equal" in done.stdout
    for contender in ("uploader --once", "aws s3 mv --recursive", "per file: head-object + cp"):
        assert contender in done.stdout
    assert len(list((tmp_path / "results").glob("*-v1.json"))) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # the work directory is gone
